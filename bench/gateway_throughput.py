"""Webhook gateway throughput and latency on loopback, next to a bare ASGI handler.

The gateway (orchestration/gateway/app.py: HMAC verification, event-id extraction, dedupe insert, JSON
answer) and a bare Starlette handler that only inserts the body into the same inbox table each run in
their own server process (uvicorn, one worker) against the same kind of database. The client (raw
asyncio keep-alive connections, every request built and signed before the clock starts, so the load
generator costs the two cores as little as possible) sends signed DocuSign Connect deliveries, each
with a new event id:

1. saturation: N deliveries with bounded concurrency -> deliveries per second;
2. fixed rate: 200 deliveries/s for D seconds on an open-loop schedule -> p50/p99 latency.

Goal (issue #8): gateway >= 70 % of the bare handler's throughput, p99 < 50 ms at 200 deliveries/s.

    .venv/bin/python bench/gateway_throughput.py [--requests 3000] [--concurrency 32] [--seconds 10]
    .venv/bin/python bench/gateway_throughput.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = b"docusign-connect-secret"  # the demo tenant's sandbox Connect key (tenants/demo.yaml default)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(kind: str, url: str, port: int) -> None:
    import uvicorn
    from sqlalchemy import insert
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from orchestration.gateway.app import create_app
    from pipelines.store import open_store
    from pipelines.store.models import InboxEvent, utcnow
    from schemas.tenant import load_tenant

    store = open_store(url)
    if kind == "gateway":
        app = create_app(store, {"demo": load_tenant(ROOT / "tenants" / "demo.yaml")})
    else:
        statement = insert(InboxEvent.__table__)  # built once: the peer gets the fast path too

        def put(body: bytes) -> None:
            with store.session() as session:
                session.execute(statement, {
                    "tenant": "demo", "connector": "docusign", "event_id": uuid.uuid4().hex, "body": body,
                    "headers": {}, "status": "new", "attempts": 0, "duplicates": 0, "available_at": utcnow(),
                    "received_at": utcnow()})

        async def bare(request: Request) -> JSONResponse:
            await run_in_threadpool(put, await request.body())
            return JSONResponse({"stored": True})

        app = Starlette(routes=[Route("/webhooks/{tenant}/{connector}/{webhook}", bare, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off")


PATH = "/webhooks/demo/docusign/connect"


def _delivery(n: int, port: int) -> bytes:
    """One signed DocuSign Connect delivery with a new event id, as the bytes of an HTTP/1.1 request."""
    body = json.dumps({
        "event": "recipient-completed", "apiVersion": "v2.1", "uri": "/restapi/v2.1/accounts/x/envelopes/e",
        "retryCount": 0, "configurationId": 10001,
        "generatedDateTime": f"2026-11-20T13:05:46.{n:07d}Z",
        "data": {"accountId": "x", "envelopeId": f"bench-{uuid.uuid4().hex}", "recipientId": "1",
                 "envelopeSummary": {"status": "sent", "recipients": {"signers": []}}},
    }).encode()
    digest = base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).decode()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-DocuSign-Signature-1: {digest}\r\nX-Authorization-Digest: HMACSHA256\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class _Connections:
    """Keep-alive HTTP/1.1 connections over raw asyncio streams, requests built and signed beforehand.

    The load generator shares the machine's two cores with the server; httpx spends about as much CPU
    per request as the server it measures, so the client would be what is measured. This one only
    writes prepared bytes and reads the status line, headers and body.
    """

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.opened: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> _Connections:
        for _ in range(self.size):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.opened.append(writer)
            self.idle.put_nowait((reader, writer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self.opened:
            writer.close()

    async def post(self, request: bytes) -> int:
        """Send on the next free connection (waiting for one counts as latency); return the status."""
        reader, writer = await self.idle.get()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            return status
        finally:
            self.idle.put_nowait((reader, writer))


async def _saturate(port: int, total: int, concurrency: int) -> dict[str, float]:
    payloads = [_delivery(i, port) for i in range(total)]
    latencies: list[float] = []
    async with _Connections(port, concurrency) as conns:
        pending = iter(payloads)

        async def worker() -> None:
            for request in pending:
                t0 = time.perf_counter()
                status = await conns.post(request)
                latencies.append(time.perf_counter() - t0)
                assert status == 200, status

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"deliveries_per_s": total / elapsed, "p50_ms": _pct(latencies, 50), "p99_ms": _pct(latencies, 99)}


async def _fixed_rate(port: int, rate: float, seconds: float) -> dict[str, float]:
    total = int(rate * seconds)
    payloads = [_delivery(i, port) for i in range(total)]
    latencies: list[float] = []
    failures = 0
    async with _Connections(port, 64) as conns:
        async def one(i: int, at: float) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            status = await conns.post(payloads[i])
            # from the scheduled time: a request that waited for a connection counts its wait
            latencies.append(max(0.0, time.perf_counter() - at))
            failures += status != 200

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(i, start + i / rate) for i in range(total)))
    return {"rate": rate, "deliveries": total, "failures": failures, "p50_ms": _pct(latencies, 50),
            "p99_ms": _pct(latencies, 99), "max_ms": max(latencies) * 1000}


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def _wait(base: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{base}/webhooks/none/none/none", content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run(kind: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(kind, url, port), daemon=True)
    proc.start()
    try:
        _wait(f"http://127.0.0.1:{port}")
        asyncio.run(_saturate(port, min(200, args.requests), args.concurrency))  # warm-up
        saturation = asyncio.run(_saturate(port, args.requests, args.concurrency))
        steady = asyncio.run(_fixed_rate(port, args.rate, args.seconds))
        return {"server": kind, **{f"saturation_{k}": round(v, 2) for k, v in saturation.items()},
                **{f"at_rate_{k}": round(v, 2) if isinstance(v, float) else v for k, v in steady.items()}}
    finally:
        proc.terminate()
        proc.join(10)


def _fresh_postgres(admin_url: str, kind: str) -> str:
    """A new database ``ponte_bench_<kind>`` on the server of ``admin_url`` (dropped first if left over)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ponte_bench_{kind}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server URL: fresh databases are created on it (default: SQLite files)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("bare", "gateway"):
            url = _fresh_postgres(args.database_url, kind) if args.database_url else f"sqlite:///{tmp}/{kind}.db"
            results.append(run(kind, url, args))
    bare, gateway = results
    ratio = gateway["saturation_deliveries_per_s"] / bare["saturation_deliveries_per_s"]
    summary = {"results": results, "gateway_vs_bare": round(ratio, 3),
               "goal_met": ratio >= 0.7 and gateway["at_rate_p99_ms"] < 50}
    print(json.dumps(summary, indent=2))
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

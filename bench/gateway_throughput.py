"""Webhook gateway throughput and latency on loopback, next to a bare ASGI handler.

The gateway (orchestration/gateway/app.py: HMAC verification, event-id extraction, dedupe insert, JSON
answer) and a bare Starlette handler that only inserts the body into the same inbox table each run in
their own server process (uvicorn, one worker) against the same kind of database. The client (httpx,
asyncio) sends signed DocuSign Connect deliveries, each with a new event id:

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
        def put(body: bytes) -> None:
            with store.session() as session:
                session.execute(insert(InboxEvent).values(
                    tenant="demo", connector="docusign", event_id=uuid.uuid4().hex, body=body, headers={},
                    status="new", attempts=0, duplicates=0, available_at=utcnow(), received_at=utcnow()))

        async def bare(request: Request) -> JSONResponse:
            await run_in_threadpool(put, await request.body())
            return JSONResponse({"stored": True})

        app = Starlette(routes=[Route("/webhooks/{tenant}/{connector}/{webhook}", bare, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off")


def _delivery(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({
        "event": "recipient-completed", "apiVersion": "v2.1", "uri": "/restapi/v2.1/accounts/x/envelopes/e",
        "retryCount": 0, "configurationId": 10001,
        "generatedDateTime": f"2026-11-20T13:05:46.{n:07d}Z",
        "data": {"accountId": "x", "envelopeId": f"bench-{uuid.uuid4().hex}", "recipientId": "1",
                 "envelopeSummary": {"status": "sent", "recipients": {"signers": []}}},
    }).encode()
    digest = base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).decode()
    return body, {"x-docusign-signature-1": digest, "x-authorization-digest": "HMACSHA256",
                  "content-type": "application/json"}


async def _saturate(base: str, total: int, concurrency: int) -> dict[str, float]:
    payloads = [_delivery(i) for i in range(total)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
        for item in payloads:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                body, headers = queue.get_nowait()
                t0 = time.perf_counter()
                response = await client.post("/webhooks/demo/docusign/connect", content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"deliveries_per_s": total / elapsed, "p50_ms": _pct(latencies, 50), "p99_ms": _pct(latencies, 99)}


async def _fixed_rate(base: str, rate: float, seconds: float) -> dict[str, float]:
    total = int(rate * seconds)
    payloads = [_delivery(i) for i in range(total)]
    latencies: list[float] = []
    failures = 0
    # no pool timeout: at a fixed rate a slow server makes requests queue, which the latency must show
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, pool=None),
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)) as client:
        async def one(i: int, at: float) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            body, headers = payloads[i]
            t0 = at  # from the scheduled time: a queued request counts its wait (no coordinated omission)
            response = await client.post("/webhooks/demo/docusign/connect", content=body, headers=headers)
            latencies.append(max(0.0, time.perf_counter() - t0))
            failures += response.status_code != 200

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
        base = f"http://127.0.0.1:{port}"
        _wait(base)
        asyncio.run(_saturate(base, min(200, args.requests), args.concurrency))  # warm-up
        saturation = asyncio.run(_saturate(base, args.requests, args.concurrency))
        steady = asyncio.run(_fixed_rate(base, args.rate, args.seconds))
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

"""The gateway never buffers what it has not accepted (issue #16, point 4).

Over real HTTP on loopback, with raw sockets so the test decides exactly how much of a body is sent:
- a declared Content-Length over the limit is answered 413 from the headers alone, and the connection is
  closed (nothing more is read), also when the client waits for ``100 Continue``;
- a chunked body is counted while it streams and cut off with 413 once it crosses the limit;
- a path that names no configured tenant, connector or webhook is 404 before any of the body is read;
- the app never takes in more than the limit plus one read's worth, even under a concurrent flood
  (an ASGI wrapper counts the body bytes the server hands to the app);
- the verification page's upload check (``POST /verify/{code}/check``) follows the same rules and hashes
  the upload as it streams.
Bodies at the limit are still accepted and stored, plain or chunked.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from orchestration.gateway.app import MAX_BODY_BYTES, create_app
from orchestration.gateway.verify import MAX_CHECK_BYTES, verify_routes
from pipelines.store import Store, open_store
from pipelines.store.models import Envelope, InboxEvent
from schemas.tenant import load_tenant
from tests.support.servers import serve_asgi

REPO = Path(__file__).resolve().parents[2]
TENANT = load_tenant(REPO / "tenants" / "demo.yaml")
SIENGE_TOKEN = "sienge-hook-token-demo"  # tenants/demo.yaml's sandbox default
HOOKS = "/webhooks/demo/sienge/hooks"
HUGE = 50 * 1024 * 1024
#: what the server may take in past the limit: the read that crossed it (uvicorn hands the app what it has
#: buffered: up to 64 KiB plus one socket read of at most 256 KiB), with room to spare
SLACK = 1024 * 1024
ANSWER_WITHIN = 5.0  # seconds: the old gateway never answers these requests at all (it waits for the body)


class BodyMeter:
    """ASGI wrapper that counts the request-body bytes the server hands to the app, per request and max."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.total = 0
        self.largest = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        taken = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal taken
            message = await receive()
            if message["type"] == "http.request":
                taken += len(message.get("body", b""))
                with self.lock:
                    self.total += len(message.get("body", b""))
                    self.largest = max(self.largest, taken)
            return message

        await self.app(scope, counting_receive, send)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def gateway(store: Store) -> Iterator[tuple[int, BodyMeter, Store]]:
    meter = BodyMeter(create_app(store, {"demo": TENANT}, extra_routes=verify_routes(store)))
    with serve_asgi(meter) as url:
        yield int(urlsplit(url).port or 0), meter, store


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got onto the wire before it stopped
    closed: bool  # the server closed the connection after answering

    def json(self) -> Any:
        return json.loads(self.body)


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(port: int, path: str, headers: dict[str, str], body: Iterable[bytes] = ()) -> Answer:
    """Send the headers, then the body's pieces only while the server has not answered; read the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN)
    sent = 0
    try:
        sock.sendall(_head(path, headers))
        for piece in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (or closed): stop sending, as a careful client would
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        return _read_answer(sock, sent)
    finally:
        sock.close()


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    deadline = time.monotonic() + ANSWER_WITHIN
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock, deadline)
        assert chunk, f"no answer within {ANSWER_WITHIN} s (the server waited for the body): {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    assert status != 100, "the server asked for the body instead of refusing it"
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = _recv(sock, deadline)
        assert chunk, "the answer's body was cut short"
        rest += chunk
    sock.settimeout(2.0)
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False  # still open: the server would go on reading the body
    except ConnectionResetError:
        closed = True
    return Answer(status, headers, rest[:length], sent, closed)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(65536)
    except TimeoutError:
        pytest.fail(f"no answer within {ANSWER_WITHIN} s: the server is still waiting for the body")
    except ConnectionResetError:
        return b""


def _sienge(event_id: str | None = None, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {SIENGE_TOKEN}",
        "X-Sienge-Event": "CUSTOMER_UPDATED",
        "X-Sienge-Id": event_id or str(uuid.uuid4()),
        "Content-Type": "application/json",
        **extra,
    }


def _json_body(size: int) -> bytes:
    """A Sienge hook body of exactly ``size`` bytes."""
    head, tail = b'{"customerId": 1, "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _pieces(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    piece = b"x" * size
    for start in range(0, total, size):
        yield piece[: min(size, total - start)]


def _chunked(total: int, size: int = 256 * 1024, end: bool = True) -> Iterator[bytes]:
    for piece in _pieces(total, size):
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    if end:
        yield b"0\r\n\r\n"


def _count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(sql_select(func.count()).select_from(InboxEvent)) or 0


def _assert_refused(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert set(answer.json()) == {"error"} and answer.json()["error"], answer.body
    assert answer.headers.get("connection") == "close", answer.headers
    assert answer.closed, "the connection must be closed: the rest of the body is never read"


# ------------------------------------------------------------------------------------- declared size


@pytest.mark.parametrize("authenticated", [True, False])
def test_an_oversize_declared_body_is_413_before_the_body_is_sent(gateway, authenticated: bool) -> None:
    port, meter, store = gateway
    headers = _sienge() if authenticated else {"Content-Type": "application/json"}
    # headers and 1 MiB of a declared 50 MiB, then wait: the answer must come without the other 49 MiB
    answer = _exchange(port, HOOKS, {**headers, "Content-Length": str(HUGE)}, _pieces(1024 * 1024))
    _assert_refused(answer, 413)
    assert meter.largest == 0, f"the app read {meter.largest} bytes of a body it had refused by its size"
    assert _count(store) == 0


def test_an_oversize_declared_body_gets_no_100_continue(gateway) -> None:
    port, meter, _ = gateway
    answer = _exchange(port, HOOKS, {**_sienge(), "Content-Length": str(HUGE), "Expect": "100-continue"})
    _assert_refused(answer, 413)  # and not "100 Continue" (checked in _read_answer)
    assert answer.sent == 0 and meter.largest == 0


def test_one_byte_over_the_limit_is_413_and_the_limit_itself_is_stored(gateway) -> None:
    port, _, store = gateway
    url = f"http://127.0.0.1:{port}{HOOKS}"
    over = httpx.post(url, content=_json_body(MAX_BODY_BYTES + 1), headers=_sienge(), timeout=30)
    assert over.status_code == 413 and set(over.json()) == {"error"}
    at = httpx.post(url, content=_json_body(MAX_BODY_BYTES), headers=_sienge(), timeout=30)
    assert at.status_code == 200 and at.json()["stored"] is True
    assert _count(store) == 1


# -------------------------------------------------------------------------------------- chunked size


def test_a_chunked_body_crossing_the_limit_is_413_while_it_streams(gateway) -> None:
    port, meter, store = gateway
    headers = {**_sienge(), "Transfer-Encoding": "chunked"}
    # up to 4x the limit and never the final chunk: only a server that counts while reading answers
    answer = _exchange(port, HOOKS, headers, _chunked(4 * MAX_BODY_BYTES, end=False))
    _assert_refused(answer, 413)
    assert meter.largest <= MAX_BODY_BYTES + SLACK, f"the app took in {meter.largest} bytes"
    assert _count(store) == 0


def test_a_chunked_body_at_the_limit_is_stored(gateway) -> None:
    port, _, store = gateway

    def body() -> Iterator[bytes]:
        whole = _json_body(MAX_BODY_BYTES)
        for start in range(0, len(whole), 100_000):
            yield whole[start : start + 100_000]

    response = httpx.post(f"http://127.0.0.1:{port}{HOOKS}", content=body(), headers=_sienge(), timeout=30)
    assert response.status_code == 200 and response.json()["stored"] is True
    with store.session() as session:
        assert len(session.scalars(sql_select(InboxEvent)).one().body) == MAX_BODY_BYTES


def test_a_body_longer_than_its_declared_length_is_read_only_to_that_length(gateway) -> None:
    port, meter, store = gateway
    # 100 bytes declared, 2 MiB sent: the rest is not this request's body (the server parses it as the
    # next request and refuses that); the app never sees more than was declared
    answer = _exchange(port, HOOKS, {**_sienge(), "Content-Length": "100"}, _pieces(2 * 1024 * 1024))
    assert answer.status in (400, 401)
    assert meter.largest <= 100
    assert _count(store) == 0


def test_a_client_that_leaves_mid_body_is_no_server_error(gateway, caplog) -> None:
    port, meter, store = gateway
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(_head(HOOKS, {**_sienge(), "Content-Length": str(MAX_BODY_BYTES)}) + b"x" * 100_000)
        time.sleep(0.2)
    deadline = time.monotonic() + ANSWER_WITHIN
    while meter.largest < 100_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the app sees the disconnect and answers (to nobody)
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert errors == [], [r.getMessage() for r in errors]
    assert _count(store) == 0
    ok = httpx.post(f"http://127.0.0.1:{port}{HOOKS}", content=b'{"customerId": 7}', headers=_sienge())
    assert ok.status_code == 200


# ------------------------------------------------------------------------------------ unknown routes


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/nobody/sienge/hooks",
        "/webhooks/demo/nothing/hooks",
        "/webhooks/demo/sienge/nohook",
        "/webhooks/demo/smtp/events",  # a configured connector with no webhooks at all
        "/webhooks/demo/cvcrm/nohook/some-secret",
    ],
)
def test_an_unknown_route_is_404_before_the_body_is_read(gateway, path: str) -> None:
    port, meter, store = gateway
    answer = _exchange(port, path, {**_sienge(), "Content-Length": str(HUGE)})  # and no body at all
    _assert_refused(answer, 404)
    assert answer.json() == {"error": "unknown webhook route"}
    assert meter.largest == 0
    assert _count(store) == 0


def test_a_small_request_to_an_unknown_route_keeps_its_connection(gateway) -> None:
    port, _, _ = gateway
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        first = client.post("/webhooks/demo/sienge/nohook")
        second = client.post(HOOKS, content=b'{"customerId": 1}', headers=_sienge())
    assert (first.status_code, second.status_code) == (404, 200)
    assert first.headers.get("connection") != "close"


# ------------------------------------------------------------------------------------------- a flood


def test_a_flood_of_oversize_bodies_takes_in_no_more_than_the_limit_each(gateway) -> None:
    port, meter, store = gateway
    floods = [
        (HOOKS, {"Content-Length": str(HUGE)}, _pieces(2 * 1024 * 1024)),  # unauthenticated
        (HOOKS, {**_sienge(), "Content-Length": str(HUGE)}, _pieces(2 * 1024 * 1024)),
        ("/webhooks/demo/sienge/nohook", {"Content-Length": str(HUGE)}, _pieces(2 * 1024 * 1024)),
        (HOOKS, {"Transfer-Encoding": "chunked"}, _chunked(3 * MAX_BODY_BYTES, end=False)),
    ] * 2
    answers: list[Answer] = []
    threads = [
        threading.Thread(target=lambda f=flood: answers.append(_exchange(port, *f)), daemon=True)
        for flood in floods
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status for a in answers) == [404, 404, 413, 413, 413, 413, 413, 413]
    # only the two chunked ones were read at all, each up to the limit and the read that crossed it
    assert meter.largest <= MAX_BODY_BYTES + SLACK
    assert meter.total <= 2 * (MAX_BODY_BYTES + SLACK)
    assert _count(store) == 0
    # and the gateway still takes deliveries
    ok = httpx.post(f"http://127.0.0.1:{port}{HOOKS}", content=b'{"customerId": 7}', headers=_sienge())
    assert ok.status_code == 200 and _count(store) == 1


# ----------------------------------------------------------------------------- verification upload


def _envelope(store: Store, signed: bytes) -> str:
    code = uuid.uuid4().hex[:12].upper()
    with store.session() as session:
        session.add(Envelope(tenant="demo", contract_id=code, document_name="Contrato", document_hash="0" * 64,
                             idempotency_key=code, provider="docusign", status="completed",
                             signed_sha256=hashlib.sha256(signed).hexdigest(), verification_code=code))
    return code


def test_the_verification_upload_is_refused_before_it_is_read(gateway) -> None:
    port, meter, store = gateway
    code = _envelope(store, b"%PDF-1.7 signed")
    unknown = _exchange(port, "/verify/NOSUCHCODE/check", {"Content-Length": str(HUGE)})
    _assert_refused(unknown, 404)
    too_large = _exchange(port, f"/verify/{code}/check", {"Content-Length": str(MAX_CHECK_BYTES + 1)},
                          _pieces(1024 * 1024))
    _assert_refused(too_large, 413)
    chunked = _exchange(port, f"/verify/{code}/check", {"Transfer-Encoding": "chunked"},
                        _chunked(MAX_CHECK_BYTES + 2 * SLACK, end=False))
    _assert_refused(chunked, 413)
    assert meter.largest <= MAX_CHECK_BYTES + SLACK


def test_the_verification_upload_is_hashed_as_it_streams(gateway) -> None:
    port, _, store = gateway
    signed = b"%PDF-1.7 " + bytes(range(256)) * 4000
    code = _envelope(store, signed)
    url = f"http://127.0.0.1:{port}/verify/{code}/check"
    same = httpx.post(url, content=signed).json()
    chunked = httpx.post(url, content=iter([signed[:1000], signed[1000:]])).json()
    other = httpx.post(url, content=signed + b"\n").json()
    empty = httpx.post(url, content=b"")
    assert same == {"code": code, "matches": True, "matched": "stamped", "sha256": hashlib.sha256(signed).hexdigest(),
                    "expected_sha256": hashlib.sha256(signed).hexdigest(), "provider_sha256": None}
    assert chunked["matches"] is True and other["matches"] is False
    assert empty.status_code == 400 and set(empty.json()) == {"error"}

"""Retry rules on real HTTP: what is retried, how long Ponte waits, and when a create is not resent."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.runtime.errors import (
    AmbiguousWriteError,
    ConnectionFailed,
    HttpAuthError,
    HttpDataError,
    HttpRateLimitedError,
    HttpTransientError,
)
from connectors.runtime.retry import parse_retry_after
from ponte.errors import AuthError, TransientError
from tests.connectors.conftest import Sleeps, make_spec, open_on_loopback
from tests.connectors.loopback import Loopback, Reply

LIST = {"streams": {"items": {"path": "/items", "records": "items"}}}
OK = Reply(200, {"items": [{"id": 1}]})


def test_429_waits_exactly_retry_after_seconds(server: Loopback) -> None:
    server.route("GET", "/items", [Reply(429, {}, {"Retry-After": "7"}), OK])
    sleeps = Sleeps()
    with open_on_loopback(make_spec(LIST), server, sleep=sleeps) as conn:
        assert list(conn.read("items")) == [{"id": 1}]
    assert sleeps == [7.0]
    assert conn.api_calls == 2


def test_retry_after_as_http_date_is_honoured(server: Loopback) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.route("GET", "/items", [Reply(503, {}, {"Retry-After": when}), OK])
    sleeps = Sleeps()
    with open_on_loopback(make_spec(LIST), server, sleep=sleeps) as conn:
        list(conn.read("items"))
    assert len(sleeps) == 1 and 27 <= sleeps[0] <= 30


def test_retry_after_really_delays_the_next_request(server: Loopback) -> None:
    stamps: list[float] = []

    def handler(req):  # type: ignore[no-untyped-def]
        stamps.append(time.monotonic())
        return Reply(429, {}, {"Retry-After": "1"}) if len(stamps) == 1 else OK

    server.route("GET", "/items", handler)
    with open_on_loopback(make_spec(LIST), server, sleep=time.sleep) as conn:
        assert list(conn.read("items")) == [{"id": 1}]
    assert len(stamps) == 2 and stamps[1] - stamps[0] >= 0.95


def test_retry_after_beyond_total_time_gives_up_at_once(server: Loopback) -> None:
    server.route("GET", "/items", Reply(429, {}, {"Retry-After": "3600"}))
    spec = make_spec({**LIST, "retry": {"max_elapsed_seconds": 60}})
    sleeps = Sleeps()
    with open_on_loopback(spec, server, sleep=sleeps) as conn, pytest.raises(HttpRateLimitedError) as info:
        list(conn.read("items"))
    assert info.value.retry_after == 3600 and sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_with_full_jitter_backoff(server: Loopback, status: int) -> None:
    server.route("GET", "/items", [Reply(status), Reply(status), OK])
    spec = make_spec({**LIST, "retry": {"initial_backoff_seconds": 1, "max_backoff_seconds": 8}})
    sleeps = Sleeps()
    with open_on_loopback(spec, server, sleep=sleeps) as conn:
        assert list(conn.read("items")) == [{"id": 1}]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1 and 0 <= sleeps[1] <= 2


def test_attempts_are_bounded(server: Loopback) -> None:
    server.route("GET", "/items", Reply(503))
    spec = make_spec({**LIST, "retry": {"max_attempts": 3}})
    with open_on_loopback(spec, server) as conn, pytest.raises(HttpTransientError) as info:
        list(conn.read("items"))
    assert info.value.status == 503 and len(server.hits()) == 3


def test_401_is_not_retried(server: Loopback) -> None:
    server.route("GET", "/items", Reply(401, {"message": "bad credentials"}))
    with open_on_loopback(make_spec(LIST), server) as conn, pytest.raises(AuthError) as info:
        list(conn.read("items"))
    assert isinstance(info.value, HttpAuthError) and info.value.status == 401
    assert len(server.hits()) == 1


def test_400_is_a_data_error_and_not_retried(server: Loopback) -> None:
    server.route("GET", "/items", Reply(400, {"developerMessage": "limit must be <= 200"}))
    with open_on_loopback(make_spec(LIST), server) as conn, pytest.raises(HttpDataError) as info:
        list(conn.read("items"))
    assert "limit must be" in info.value.body_excerpt and len(server.hits()) == 1


def test_read_timeout_on_a_read_is_retried(server: Loopback) -> None:
    server.route("GET", "/items", [Reply(200, {"items": []}, delay=0.6), OK])
    spec = make_spec({**LIST, "timeouts": {"read": 0.2}})
    with open_on_loopback(spec, server) as conn:
        assert list(conn.read("items")) == [{"id": 1}]


def test_connection_refused_is_transient_and_bounded() -> None:
    spec = make_spec({**LIST, "retry": {"max_attempts": 2}})
    from connectors.runtime.client import Connector

    conn = Connector.open(spec, {"base_url": "http://127.0.0.1:9"}, {}, sleep=Sleeps())
    with conn, pytest.raises(ConnectionFailed) as info:
        list(conn.read("items"))
    assert isinstance(info.value, TransientError) and info.value.reached_server is False
    assert conn.api_calls == 2


# ------------------------------------------------------------------------------ non-idempotent creates

CREATE = {
    "streams": {"things": {"path": "/things", "records": "things", "params": {"key": "{params.key?}"}}},
    "actions": {
        "create": {"method": "POST", "path": "/things", "body": {"type": "json", "template": {"key": "{record.key}"}},
                   "expect": [201], "result": {"id_path": "id"}},
        "create_with_lookup": {
            "method": "POST", "path": "/things", "body": {"type": "json", "template": {"key": "{record.key}"}},
            "expect": [201], "result": {"id_path": "id"},
            "find_existing": {"stream": "things", "params": {"key": "{record.key}"}, "match": {"key": "{record.key}"}},
        },
    },
    "timeouts": {"read": 0.3},
}


class Store:
    """A server-side collection that creates on POST, slowly the first time (so the client times out)."""

    def __init__(self, server: Loopback, slow_first: bool = True) -> None:
        self.things: list[dict] = []
        self.slow = slow_first
        server.route("POST", "/things", self.create)
        server.route("GET", "/things", self.list)

    def create(self, req):  # type: ignore[no-untyped-def]
        thing = {"id": len(self.things) + 1, "key": req.json()["key"]}
        self.things.append(thing)  # the object exists even if the answer never arrives in time
        delay, self.slow = (0.8 if self.slow else 0), False
        return Reply(201, thing, delay=delay)

    def list(self, req):  # type: ignore[no-untyped-def]
        key = req.query.get("key")
        return Reply(200, {"things": [t for t in self.things if key in (None, t["key"])]})


def test_create_is_not_resent_after_a_read_timeout_without_a_lookup(server: Loopback) -> None:
    store = Store(server)
    with open_on_loopback(make_spec(CREATE), server) as conn, pytest.raises(AmbiguousWriteError) as info:
        conn.call("create", {"key": "contract-42"})
    assert len(server.hits("POST", "/things")) == 1
    assert len(store.things) == 1
    assert info.value.retryable is False and "find_existing" in info.value.message


def test_create_after_a_read_timeout_finds_the_object_instead_of_duplicating(server: Loopback) -> None:
    store = Store(server)
    with open_on_loopback(make_spec(CREATE), server) as conn:
        result = conn.call("create_with_lookup", {"key": "contract-42"})
    assert result.existing is True and result.id == "1"
    assert len(server.hits("POST", "/things")) == 1 and len(store.things) == 1


def test_create_is_resent_when_the_lookup_finds_nothing(server: Loopback) -> None:
    server.route("POST", "/things", [Reply(503), Reply(201, {"id": 9, "key": "k"})])
    server.route("GET", "/things", Reply(200, {"things": []}))
    with open_on_loopback(make_spec(CREATE), server) as conn:
        result = conn.call("create_with_lookup", {"key": "k"})
    assert result.id == "9" and result.existing is False
    assert [r.method for r in server.hits()] == ["POST", "GET", "POST"]


def test_create_is_retried_after_429_because_the_server_refused_it(server: Loopback) -> None:
    server.route("POST", "/things", [Reply(429, {}, {"Retry-After": "0"}), Reply(201, {"id": 3})])
    with open_on_loopback(make_spec(CREATE), server) as conn:
        assert conn.call("create", {"key": "k"}).id == "3"


def test_create_is_retried_when_the_connection_was_never_made() -> None:
    from connectors.runtime.client import Connector

    spec = make_spec({**CREATE, "retry": {"max_attempts": 2}})
    conn = Connector.open(spec, {"base_url": "http://127.0.0.1:9"}, {}, sleep=Sleeps())
    with conn, pytest.raises(ConnectionFailed):
        conn.call("create", {"key": "k"})
    assert conn.api_calls == 2  # never reached a server, so sending again was safe


def test_lookup_first_returns_the_existing_object_without_posting(server: Loopback) -> None:
    store = Store(server, slow_first=False)
    store.things.append({"id": 5, "key": "k"})
    with open_on_loopback(make_spec(CREATE), server) as conn:
        result = conn.call("create_with_lookup", {"key": "k"}, lookup_first=True)
    assert result.existing and result.id == "5" and server.hits("POST") == []


# ------------------------------------------------------------------------------------ Retry-After parser


@given(st.integers(min_value=0, max_value=10**9))
def test_retry_after_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_retry_after_http_date_is_seconds_until_then(when: datetime) -> None:
    when = when.replace(microsecond=0, tzinfo=UTC)
    now = datetime(2050, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=now) == max(0.0, (when - now).total_seconds())


@given(st.text())
def test_retry_after_never_raises_and_never_negative(text: str) -> None:
    value = parse_retry_after(text)
    assert value is None or value >= 0


def test_retry_after_rejects_garbage() -> None:
    assert parse_retry_after("soon") is None and parse_retry_after("") is None and parse_retry_after("-5") == 0

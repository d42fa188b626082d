"""The running webhook gateway fuzzed through its own OpenAPI description (schemathesis).

The gateway is served over loopback HTTP with the demo tenant and a SQLite state store; schemathesis
reads ``/openapi.json`` and generates requests for every operation, in positive and negative mode, with
path parameters from the enums (and, for half the cases, pinned to a real route so the verifier is
reached), plus random signature-like headers. Each answer must be documented, match its schema and
never be a 5xx (503 means "store down", and the store is up). Afterwards the inbox must be empty:
nothing from a forged delivery may be stored. A second test signs random bodies correctly and checks
that exactly those, and nothing else, are in the inbox.

The last part runs on SQLite *and* PostgreSQL: authentic deliveries with odd event ids (longer than the
key column, sharing their first 200 characters, digest-like, NUL and other characters a text column
refuses), event types of any length, random bodies and random extra headers. None may answer 5xx, each
distinct event id is stored exactly once with its id and type in full, and a redelivery is a duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from orchestration.gateway.app import create_app
from pipelines.connections import open_connector
from pipelines.store import Store, open_store
from pipelines.store.models import InboxEvent
from schemas.tenant import load_tenant
from tests.security.signing import DEMO_ROUTES, sign_sienge
from tests.support.servers import serve_asgi

pytestmark = pytest.mark.xdist_group("gateway-fuzz")

REPO = Path(__file__).resolve().parents[2]
DEMO = load_tenant(REPO / "tenants" / "demo.yaml")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 300

GATEWAY_FUZZ = settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=False, suppress_health_check=list(HealthCheck)
)

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip)
SIGNATURE_HEADERS = [
    "Authorization",
    "Content-Hmac",
    "X-Hub-Signature-256",
    "X-DocuSign-Signature-1",
    "X-Ponte-Secret",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-sienge-id",
    "x-sienge-event",
    "Event",
    "Content-Type",
]
forged_headers = st.dictionaries(
    st.sampled_from(SIGNATURE_HEADERS),
    printable
    | st.sampled_from(
        [
            "Bearer",
            "Bearer sienge-hook-token",
            "sha256=" + "0" * 64,
            "v1,AAAA",
            "application/x-www-form-urlencoded",
            "text/plain",
        ]
    ),
    max_size=4,
)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    store = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    app = create_app(store, {"demo": DEMO})
    try:
        with serve_asgi(app) as url:
            yield url, store
    finally:
        store.dispose()


def inbox(store: Store) -> list[InboxEvent]:
    with store.session() as session:
        return list(session.scalars(select(InboxEvent)))


def load_schema(url: str) -> Any:
    raw = httpx.get(f"{url}/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(raw)  # as served, every connector included (smtp too)


def case_strategy(schema: Any) -> st.SearchStrategy[Any]:
    """Every operation in both modes, plus POSTs pinned to each real route (reaching the verifiers)."""
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode))
        if operation.method.upper() == "POST":
            for key, (webhook, _sign) in DEMO_ROUTES.items():
                strategies.append(
                    operation.as_strategy(
                        generation_mode=GenerationMode.POSITIVE,
                        path_parameters={"tenant": "demo", "connector": key, "webhook": webhook},
                    )
                )
    return st.one_of(strategies)


def test_forged_and_malformed_requests_never_5xx_are_documented_and_store_nothing(gateway) -> None:
    url, store = gateway
    schema = load_schema(url)
    statuses: dict[int, int] = {}
    session = requests.Session()

    @GATEWAY_FUZZ
    @given(case=case_strategy(schema), headers=forged_headers)
    def fuzz(case: Any, headers: dict[str, str]) -> None:
        response = case.call(base_url=url, headers=headers, session=session, timeout=10)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} answered {response.status_code}"
        )
        case.validate_response(response, checks=CHECKS)

    fuzz()
    session.close()
    assert inbox(store) == [], "a delivery the test did not sign was stored"
    assert statuses.get(401), f"no case reached a verifier: {statuses}"
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert health["stored"] == 0 and health["rejected"] >= statuses[401]


@pytest.mark.parametrize("path", ["/webhooks/demo/smtp/events", "/webhooks/demo/smtp/events/secret"])
def test_a_connector_without_webhooks_is_404(gateway, path: str) -> None:
    url, store = gateway
    response = httpx.post(f"{url}{path}", content=b"{}", timeout=10)
    assert response.status_code == 404, response.text
    assert inbox(store) == []


def test_the_handshake_documents_404(gateway) -> None:
    url, _store = gateway
    assert httpx.get(f"{url}/webhooks/nobody/whatsapp/messages", timeout=10).status_code == 404
    document = httpx.get(f"{url}/openapi.json", timeout=10).json()
    assert "404" in document["paths"]["/webhooks/{tenant}/{connector}/{webhook}"]["get"]["responses"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def body_for(key: str, data: st.DataObject) -> bytes:
    """A random body, often shaped like the provider's (so some get past the event-id locators)."""
    n = data.draw(st.integers(0, 10**9), label="n")
    shaped = {
        "sienge": {"customerId": n},
        "cvcrm": {
            "idwebhook": 3,
            "funcionalidade": "AS",
            "gatilho": 12,
            "id": n,
            "enviado_em": "2026-05-01 10:00:00",
        },
        "docusign": {
            "event": "envelope-completed",
            "generatedDateTime": "2026-05-01T13:00:00.000Z",
            "data": {"envelopeId": f"env-{n}"},
        },
        "clicksign": {
            "event": {"name": "sign", "occurred_at": "2026-05-01T10:00:00-03:00"},
            "document": {"key": f"doc-{n}"},
        },
        "whatsapp": {
            "entry": [
                {
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "statuses": [
                                    {"id": f"wamid.{n}", "status": "read", "timestamp": str(1777640400 + n)}
                                ]
                            },
                        }
                    ]
                }
            ]
        },
    }[key]
    value = data.draw(st.just(shaped) | json_values, label="payload")
    return json.dumps(value).encode()


def test_only_correctly_signed_deliveries_are_stored(gateway) -> None:
    url, store = gateway
    accepted: set[tuple[str, str]] = set()
    client = httpx.Client(base_url=url, timeout=10)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(sorted(DEMO_ROUTES)), data=st.data(), forged=forged_headers)
    def deliver(key: str, data: st.DataObject, forged: dict[str, str]) -> None:
        webhook, sign = DEMO_ROUTES[key]
        conn = open_connector(DEMO, key)
        body = body_for(key, data)
        if key == "sienge":
            event_id = data.draw(printable.filter(lambda s: s.strip()), label="event id")
            headers, params = sign(conn, body, event_id=event_id.strip())  # type: ignore[call-arg]
        else:
            headers, params = sign(conn, body)
        path = f"/webhooks/demo/{key}/{webhook}"
        if "secret" in params:
            path += f"/{params.pop('secret')}"
        # forged noise first, the real signature last: the signature headers win
        response = client.post(
            path, content=body, headers={**forged, **headers, "Content-Type": "application/json"}
        )
        assert response.status_code in (200, 400), (key, response.status_code, response.text)
        if response.status_code == 200:
            accepted.add((key, response.json()["event_id"]))
        # the same body with one byte changed is never stored (body-signing schemes)
        if key in ("docusign", "clicksign", "whatsapp"):
            altered = body[:-1] + bytes([body[-1] ^ 1])
            forged_response = client.post(path, content=altered, headers=headers)
            assert forged_response.status_code == 401

    deliver()
    client.close()
    stored = {(row.connector, row.original_event_id) for row in inbox(store)}
    assert stored == accepted
    assert accepted, "no signed delivery was accepted"


# -- odd but authentic deliveries, on both backends ---------------------------------------------------


@pytest.fixture
def any_gateway(db_url: str) -> Iterator[tuple[str, Store]]:
    """The gateway over a fresh store on SQLite and on PostgreSQL (``db_url`` is parametrized)."""
    store = open_store(db_url)
    app = create_app(store, {"demo": DEMO})
    try:
        with serve_asgi(app) as url:
            yield url, store
    finally:
        store.dispose()


def _as_stored(text: str) -> str:
    """How a text column holds a value: NUL, which no PostgreSQL text can hold, written as ``\\x00``,
    and a lone surrogate, which is not UTF-8, as ``\\udXXX``."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


PREFIX_200 = "evt-" + "x" * 196
#: examples per backend for the odd-delivery fuzz (about 10 s each on 2 shared cores)
ODD_EXAMPLES = 120


def _sienge(client: httpx.Client, event_id: str, event: str = "CUSTOMER_UPDATED") -> httpx.Response:
    body = b'{"customerId": 7}'
    headers, _ = sign_sienge(open_connector(DEMO, "sienge"), body, event_id=event_id, event=event)
    return client.post("/webhooks/demo/sienge/hooks", content=body,
                       headers={**headers, "Content-Type": "application/json"})


def test_two_distinct_201_character_event_ids_are_both_stored(any_gateway) -> None:
    url, store = any_gateway
    first, second = PREFIX_200 + "a", PREFIX_200 + "b"
    with httpx.Client(base_url=url, timeout=10) as client:
        answers = [_sienge(client, i) for i in (first, second, second)]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert [a.json()["duplicate"] for a in answers] == [False, False, True], "a distinct event collapsed"
    rows = sorted(inbox(store), key=lambda r: r.id)
    assert [(r.original_event_id, r.duplicates) for r in rows] == [(first, 0), (second, 1)]


def test_an_event_type_over_100_characters_is_stored_with_a_2xx(any_gateway) -> None:
    url, store = any_gateway
    event_type = "CUSTOMER_UPDATED" + "_X" * 60  # 136 characters
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = _sienge(client, "type-1", event=event_type)
    assert answer.status_code == 200, answer.text
    assert [r.event_type for r in inbox(store)] == [event_type]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_an_event_time_at_the_edge_of_the_calendar_is_stored_with_a_2xx(any_gateway, moment: str) -> None:
    url, store = any_gateway
    body = json.dumps({"event": "envelope-sent", "generatedDateTime": moment, "data": {"envelopeId": "e"}})
    headers, _ = DEMO_ROUTES["docusign"][1](open_connector(DEMO, "docusign"), body.encode())
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/webhooks/demo/docusign/connect", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert [r.body for r in inbox(store)] == [body.encode()]


def test_an_event_id_with_a_lone_surrogate_is_acknowledged(any_gateway) -> None:
    """Stored, then answered 503: the JSON answer echoed an id it could not encode."""
    url, store = any_gateway
    body = json.dumps({"idwebhook": 3, "funcionalidade": "AS", "gatilho": 12, "id": "\ud800", "enviado_em": "x"})
    secret = open_connector(DEMO, "cvcrm").secrets["webhook_secret"]
    answer = httpx.post(f"{url}/webhooks/demo/cvcrm/events/{secret}", content=body.encode(), timeout=10)
    assert answer.status_code == 200, answer.text
    assert len(inbox(store)) == 1


# header values: visible Latin-1, inner spaces allowed (what HTTP/1.1 carries); body text: any character
# (lone surrogates too, NUL included)
HEADER_CHARS = st.characters(codec="latin-1", exclude_categories=("Cc", "Zs", "Zl", "Zp"))
header_text = st.tuples(
    st.text(HEADER_CHARS, min_size=1, max_size=40), st.text(HEADER_CHARS | st.just(" "), max_size=300)
).map(lambda parts: (parts[0] + parts[1]).rstrip())
BODY_CHARS = st.characters()
#: ids that share their first 200 characters (a truncating key would collapse them)
SHARED = ["s" * 200, "0123456789" * 20, "ç" * 199 + "-"]


def odd_text(chars: st.SearchStrategy[str], header: bool = False) -> st.SearchStrategy[str]:
    short = st.text(chars, min_size=1, max_size=20)
    boundary = st.text(chars, min_size=195, max_size=210)
    long = st.text(chars, min_size=300, max_size=900)
    shared = st.tuples(st.sampled_from(SHARED), st.text(chars, max_size=4)).map("".join)
    digest_like = st.text("0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__)
    strategy = short | boundary | long | shared | digest_like
    if header:  # HTTP keeps no leading or trailing blanks in a header value
        strategy = strategy.map(str.strip).filter(bool)
    return strategy


header_id = odd_text(HEADER_CHARS | st.just(" "), header=True)
body_text = odd_text(BODY_CHARS)
SECRETISH = ("authorization", "signature", "hmac", "token", "cookie")
extra_headers = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).map("x-fuzz-".__add__),
    header_text.filter(bool),
    max_size=5,
)
EDGE_TIMES = ["2026-05-01T13:00:00.000Z", "2026-05-01T13:00:00", "0001-01-01T00:00:00+05:00",
              "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00Z"]


def _latin1(headers: dict[str, str]) -> dict[str, bytes]:
    return {k: v.encode("latin-1") for k, v in headers.items()}


def authentic_delivery(key: str, data: st.DataObject) -> tuple[str, bytes, dict[str, str], str, str]:
    """(path, body, headers, expected event id, expected event type) for one correctly signed delivery."""
    conn = open_connector(DEMO, key)
    webhook, sign = DEMO_ROUTES[key]
    path = f"/webhooks/demo/{key}/{webhook}"
    noise = data.draw(json_values, label="noise")
    if key == "sienge":
        event_id, event_type = data.draw(header_id, label="id"), data.draw(header_id, label="type")
        body = json.dumps({"customerId": data.draw(st.integers()), "noise": noise}).encode()
        headers, _ = sign(conn, body, event_id=event_id, event=event_type)  # type: ignore[call-arg]
        return path, body, headers, event_id, event_type
    if key == "cvcrm":
        parts = [data.draw(body_text, label=f"part {i}") for i in range(4)]
        payload = {"idwebhook": data.draw(st.integers(0, 10**6)), "funcionalidade": parts[0], "gatilho": parts[1],
                   "id": parts[2], "enviado_em": parts[3], "noise": noise}
        _, params = sign(conn, b"")
        event_id = ":".join(str(payload[f]) for f in ("idwebhook", "funcionalidade", "gatilho", "id", "enviado_em"))
        return f"{path}/{params['secret']}", json.dumps(payload).encode(), {}, event_id, f"{parts[0]}:{parts[1]}"
    if key == "docusign":
        event, envelope = data.draw(body_text, label="event"), data.draw(body_text, label="envelope")
        moment = data.draw(st.sampled_from(EDGE_TIMES), label="time")
        body = json.dumps({"event": event, "generatedDateTime": moment, "data": {"envelopeId": envelope},
                           "noise": noise}).encode()
        headers, _ = sign(conn, body)
        # the id is what the event is about (event, envelope, recipient), never the message's time
        return path, body, headers, f"{event}:{envelope}:", event
    if key == "whatsapp":
        field = data.draw(body_text, label="field")
        change: dict[str, Any] = {"field": field, "value": {"noise": noise}}
        if data.draw(st.booleans(), label="with status"):
            change["value"]["statuses"] = [{"id": "wamid.1", "timestamp": data.draw(
                st.sampled_from(["1777640400", "-62135596800", "253402300799", "0"]), label="epoch")}]
        body = json.dumps({"entry": [{"changes": [change]}]}).encode()
        headers, _ = sign(conn, body)
        return path, body, headers, hashlib.sha256(body).hexdigest(), field
    # clicksign: the event type travels in a header
    event_type = data.draw(header_id, label="type")
    body = json.dumps({"event": {"name": "sign", "occurred_at": data.draw(body_text)}, "noise": noise}).encode()
    headers, _ = sign(conn, body)
    return path, body, {**headers, "Event": event_type}, hashlib.sha256(body).hexdigest(), event_type


def _answered(event_id: str) -> str:
    """The id as the gateway echoes it: as delivered, a lone surrogate (not UTF-8) as a backslash escape."""
    return event_id.encode("utf-8", "backslashreplace").decode("utf-8")


def test_authentic_odd_deliveries_never_5xx_and_are_stored_exactly_once(any_gateway) -> None:
    url, store = any_gateway
    client = httpx.Client(base_url=url, timeout=10)
    deliveries: dict[tuple[str, str], int] = {}  # (connector, event id) -> times delivered
    first: dict[tuple[str, str], tuple[bytes, str, dict[str, str]]] = {}  # what the inbox must hold
    sent: list[tuple[str, bytes, dict[str, Any], str, str]] = []

    def post(key: str, path: str, body: bytes, headers: dict[str, Any], event_id: str) -> None:
        answer = client.post(path, content=body, headers=headers)
        assert answer.status_code == 200, (key, answer.status_code, answer.text)
        seen = deliveries.get((key, event_id), 0)
        assert answer.json() == {"stored": True, "duplicate": seen > 0, "event_id": _answered(event_id)}, (key, seen)
        deliveries[(key, event_id)] = seen + 1

    @settings(max_examples=ODD_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(sorted(DEMO_ROUTES)), data=st.data(), noise=extra_headers)
    def deliver(key: str, data: st.DataObject, noise: dict[str, str]) -> None:
        path, body, headers, event_id, event_type = authentic_delivery(key, data)
        # random extra headers first, the signed ones last (they win)
        all_headers = {**_latin1(noise), **_latin1(headers), "Content-Type": "application/json"}
        if (key, event_id) not in first:
            kept = {k: v for k, v in noise.items() if not any(s in k for s in SECRETISH)}
            first[(key, event_id)] = (body, event_type, kept)
        post(key, path, body, all_headers, event_id)
        sent.append((key, body, all_headers, path, event_id))
        if data.draw(st.booleans(), label="redeliver"):  # the same delivery again, now or an older one
            again = sent[data.draw(st.integers(0, 2**16), label="which") % len(sent)]
            post(again[0], again[3], again[1], again[2], again[4])

    deliver()
    client.close()
    rows = inbox(store)
    assert len(rows) == len(deliveries), "an accepted event was stored twice or not at all"
    by_id = {(r.connector, r.original_event_id): r for r in rows}
    assert set(by_id) == {(key, _as_stored(event_id)) for key, event_id in deliveries}
    for (key, event_id), count in deliveries.items():
        row = by_id[(key, _as_stored(event_id))]
        body, event_type, kept = first[(key, event_id)]
        assert len(row.event_id) <= 200
        assert (row.body, row.event_type, row.duplicates) == (body, _as_stored(event_type), count - 1)
        assert kept.items() <= row.headers.items()
    assert len({(r.connector, r.event_id) for r in rows}) == len(rows)


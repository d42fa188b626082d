"""The running webhook gateway fuzzed through its own OpenAPI description (schemathesis).

The gateway is served over loopback HTTP with the demo tenant and a SQLite state store; schemathesis
reads ``/openapi.json`` and generates requests for every operation, in positive and negative mode, with
path parameters from the enums (and, for half the cases, pinned to a real route so the verifier is
reached), plus random signature-like headers. Each answer must be documented, match its schema and
never be a 5xx (503 means "store down", and the store is up). Afterwards the inbox must be empty:
nothing from a forged delivery may be stored. A second test signs random bodies correctly and checks
that exactly those, and nothing else, are in the inbox.
"""

from __future__ import annotations

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
from tests.security.signing import DEMO_ROUTES
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
    stored = {(row.connector, row.event_id) for row in inbox(store)}
    assert stored == {(key, event_id[:200]) for key, event_id in accepted}
    assert accepted, "no signed delivery was accepted"

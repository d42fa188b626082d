"""The webhook gateway over real HTTP: authenticate, store before 2xx, dedupe, 401/400/404, never 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from orchestration.gateway.app import create_app
from pipelines.store import Store
from pipelines.store.models import InboxEvent
from schemas.tenant import load_tenant
from tests.support.servers import serve_asgi

REPO = Path(__file__).resolve().parents[2]
TENANT = load_tenant(REPO / "tenants" / "demo.yaml")
SIENGE_TOKEN = "sienge-hook-token-demo"
CV_SECRET = "cv-url-secret-demo-0123456789"


@pytest.fixture
def gateway(store: Store) -> Iterator[tuple[str, Store]]:
    app = create_app(store, {"demo": TENANT})
    with serve_asgi(app) as url:
        yield url, store


def _count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent)) or 0


def _sienge_headers(event_id: str, token: str = SIENGE_TOKEN) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "x-sienge-event": "CUSTOMER_UPDATED",
        "x-sienge-id": event_id,
        "x-sienge-tenant": "demo",
        "user-agent": "sienge-hooks",
    }


def test_an_authentic_delivery_is_stored_raw_before_the_answer(gateway) -> None:
    url, store = gateway
    body = b'{"customerId": 42}'
    event_id = str(uuid.uuid4())
    response = httpx.post(
        f"{url}/webhooks/demo/sienge/hooks", content=body, headers=_sienge_headers(event_id)
    )
    assert response.status_code == 200
    assert response.json() == {"stored": True, "duplicate": False, "event_id": event_id}
    with store.session() as session:
        event = session.scalars(select(InboxEvent)).one()
    assert (event.body, event.event_type, event.status) == (body, "CUSTOMER_UPDATED", "new")
    assert event.headers["x-sienge-event"] == "CUSTOMER_UPDATED"
    assert SIENGE_TOKEN not in json.dumps(event.headers)  # the bearer token is never stored


def test_a_retried_delivery_is_acknowledged_and_stored_once(gateway) -> None:
    url, store = gateway
    event_id = str(uuid.uuid4())
    for _ in range(3):
        response = httpx.post(
            f"{url}/webhooks/demo/sienge/hooks",
            content=b'{"customerId": 1}',
            headers=_sienge_headers(event_id),
        )
        assert response.status_code == 200
    assert response.json()["duplicate"] is True
    assert _count(store) == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (_sienge_headers("e1", token="wrong-token"), 401),
        ({k: v for k, v in _sienge_headers("e2").items() if k != "authorization"}, 401),
    ],
)
def test_forged_deliveries_are_refused_and_nothing_is_stored(gateway, headers, expected) -> None:
    url, store = gateway
    response = httpx.post(f"{url}/webhooks/demo/sienge/hooks", content=b'{"customerId": 1}', headers=headers)
    assert response.status_code == expected
    assert _count(store) == 0


def test_url_secret_deliveries_need_the_right_secret(gateway) -> None:
    url, store = gateway
    body = json.dumps(
        {
            "idwebhook": 3,
            "funcionalidade": "AS",
            "gatilho": 12,
            "id": 77,
            "enviado_em": "2026-11-23T10:00:00-03:00",
        }
    ).encode()
    bad = httpx.post(f"{url}/webhooks/demo/cvcrm/events/not-the-secret", content=body)
    good = httpx.post(f"{url}/webhooks/demo/cvcrm/events/{CV_SECRET}", content=body)
    again = httpx.post(f"{url}/webhooks/demo/cvcrm/events/{CV_SECRET}", content=body)
    assert (bad.status_code, good.status_code, again.status_code) == (401, 200, 200)
    assert again.json()["duplicate"] is True
    assert _count(store) == 1


@pytest.mark.parametrize(
    "path", ["/webhooks/nobody/sienge/hooks", "/webhooks/demo/nothing/hooks", "/webhooks/demo/sienge/nohook"]
)
def test_unknown_routes_are_404(gateway, path) -> None:
    url, store = gateway
    response = httpx.post(f"{url}{path}", content=b"{}", headers=_sienge_headers("x"))
    assert response.status_code == 404
    assert _count(store) == 0


def test_an_authentic_but_unreadable_delivery_is_400_not_500(gateway) -> None:
    url, store = gateway
    response = httpx.post(
        f"{url}/webhooks/demo/cvcrm/events/{CV_SECRET}", content=b"\xff\xfe not json at all"
    )
    assert response.status_code == 400
    assert _count(store) == 0


def test_health_and_openapi(gateway) -> None:
    url, _ = gateway
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    doc = httpx.get(f"{url}/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/webhooks/{tenant}/{connector}/{webhook}" in doc["paths"]

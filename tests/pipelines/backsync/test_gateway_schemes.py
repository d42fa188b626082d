"""The gateway for the signing and messaging providers' schemes, over real HTTP: DocuSign Connect HMAC
(base64, key rotation headers), Clicksign Content-Hmac (hex with prefix), WhatsApp X-Hub-Signature-256
(+ the GET verify handshake). Valid accepted, forged rejected, duplicates stored once, malformed 400."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from orchestration.gateway.app import create_app
from pipelines.store import Store
from pipelines.store.models import InboxEvent
from schemas.tenant import load_tenant
from tests.support.servers import serve_asgi

REPO = Path(__file__).resolve().parents[3]
TENANT = load_tenant(REPO / "tenants" / "demo.yaml")
DOCUSIGN_KEY, CLICKSIGN_SECRET, WHATSAPP_SECRET = b"docusign-connect-secret", b"clicksign-webhook-secret", \
    b"whatsapp-app-secret"

DOCUSIGN_BODY = json.dumps({
    "event": "recipient-completed", "apiVersion": "v2.1", "uri": "/restapi/v2.1/accounts/x/envelopes/e-1",
    "retryCount": 0, "configurationId": 10001, "generatedDateTime": "2026-11-20T13:05:46.1234567Z",
    "data": {"accountId": "x", "envelopeId": "e-1", "recipientId": "1", "envelopeSummary": {"status": "sent"}},
}).encode()
CLICKSIGN_BODY = json.dumps({
    "event": {"name": "sign", "occurred_at": "2026-11-20T10:05:44.000-03:00", "data": {"signer": {"id": "s-1"}}},
    "envelope": {"id": "e-2", "name": "x", "status": "running"}, "document": {"id": "d-1", "key": "d-1"},
}).encode()
WHATSAPP_BODY = json.dumps({
    "object": "whatsapp_business_account",
    "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "100000000000001"},
        "statuses": [{"id": "wamid.A1", "status": "delivered", "timestamp": "1763650000",
                      "recipient_id": "5548991234567"}]}}]}],
}).encode()


def docusign_headers(body: bytes, key: bytes = DOCUSIGN_KEY, header: str = "x-docusign-signature-1") -> dict[str, str]:
    digest = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    return {header: digest, "x-authorization-digest": "HMACSHA256", "content-type": "application/json"}


def clicksign_headers(body: bytes, key: bytes = CLICKSIGN_SECRET) -> dict[str, str]:
    return {"content-hmac": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(), "event": "sign"}


def whatsapp_headers(body: bytes, key: bytes = WHATSAPP_SECRET) -> dict[str, str]:
    return {"x-hub-signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()}


SCHEMES: dict[str, tuple[str, bytes, Callable[..., dict[str, str]]]] = {
    "docusign": ("/webhooks/demo/docusign/connect", DOCUSIGN_BODY, docusign_headers),
    "clicksign": ("/webhooks/demo/clicksign/events", CLICKSIGN_BODY, clicksign_headers),
    "whatsapp": ("/webhooks/demo/whatsapp/messages", WHATSAPP_BODY, whatsapp_headers),
}


@pytest.fixture
def gateway(store: Store) -> Iterator[tuple[str, Store]]:
    with serve_asgi(create_app(store, {"demo": TENANT})) as url:
        yield url, store


def _count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent)) or 0


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_valid_is_stored_once_and_duplicates_are_acknowledged(gateway, scheme: str) -> None:
    url, store = gateway
    path, body, sign = SCHEMES[scheme]
    answers = [httpx.post(url + path, content=body, headers=sign(body)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    with store.session() as session:
        event = session.scalars(select(InboxEvent)).one()
    assert (event.connector, event.body, event.status, event.duplicates) == (scheme, body, "new", 2)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("forgery", ["wrong_key", "tampered_body", "no_signature"])
def test_forged_deliveries_are_401_and_not_stored(gateway, scheme: str, forgery: str) -> None:
    url, store = gateway
    path, body, sign = SCHEMES[scheme]
    if forgery == "wrong_key":
        headers, sent = sign(body, b"not-the-secret"), body
    elif forgery == "tampered_body":
        headers, sent = sign(body), body.replace(b"1", b"2", 1)
    else:
        headers, sent = {k: v for k, v in sign(body).items() if "sig" not in k and "hmac" not in k}, body
    assert httpx.post(url + path, content=sent, headers=headers).status_code == 401
    assert _count(store) == 0


def test_docusign_accepts_any_active_key_header(gateway) -> None:
    url, store = gateway
    headers = {"x-docusign-signature-1": base64.b64encode(b"old key's signature").decode(),
               **docusign_headers(DOCUSIGN_BODY, header="x-docusign-signature-2")}
    assert httpx.post(url + SCHEMES["docusign"][0], content=DOCUSIGN_BODY, headers=headers).status_code == 200
    assert _count(store) == 1


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_authentic_but_malformed_is_400(gateway, scheme: str) -> None:
    url, store = gateway
    path, _, sign = SCHEMES[scheme]
    body = b"\xff{not json"
    assert httpx.post(url + path, content=body, headers=sign(body)).status_code == 400
    assert _count(store) == 0


def test_whatsapp_verify_handshake(gateway) -> None:
    url, _ = gateway
    path = SCHEMES["whatsapp"][0]
    ok = httpx.get(url + path, params={"hub.mode": "subscribe", "hub.verify_token": "whatsapp-verify-demo",
                                       "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = httpx.get(url + path, params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                        "hub.challenge": "1"})
    assert bad.status_code == 403

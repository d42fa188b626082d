"""DocuSign Connect's event id must not change between DocuSign's retries of one event.

Connect sends no event id, so Ponte composes one (connectors/specs/docusign.yaml, ``webhooks.connect``).
In a JSON SIM message (../shared/specs/docusign/connect.schema-v2.json) ``retryCount`` changes on every
retry by definition, and ``generatedDateTime`` is when the *message* was generated: whether a retry
keeps it is UNCONFIRMED, so neither may be part of the id. What stays the same for one event is what it
is about: ``event``, ``data.envelopeId`` and, for recipient events, ``data.recipientId``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orchestration.gateway.app import create_app
from pipelines.store import Store
from pipelines.store.models import InboxEvent
from schemas.tenant import load_tenant
from tests.support.servers import serve_asgi

REPO = Path(__file__).resolve().parents[3]
KEY = b"docusign-connect-secret"
PATH = "/webhooks/demo/docusign/connect"

RECIPIENT_COMPLETED: dict[str, Any] = {
    "event": "recipient-completed", "apiVersion": "v2.1", "uri": "/restapi/v2.1/accounts/x/envelopes/e-9",
    "retryCount": 0, "configurationId": 10001, "generatedDateTime": "2026-11-20T13:05:46.1234567Z",
    "data": {"accountId": "x", "userId": "u", "envelopeId": "e-9", "recipientId": "1",
             "envelopeSummary": {"status": "sent", "statusChangedDateTime": "2026-11-20T13:00:00.0000000Z"}},
}


def _post(url: str, message: dict[str, Any]) -> httpx.Response:
    body = json.dumps(message).encode()
    signature = base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).decode()
    return httpx.post(url + PATH, content=body, headers={"x-docusign-signature-1": signature,
                                                         "content-type": "application/json"})


def _retry(message: dict[str, Any], count: int, generated: str) -> dict[str, Any]:
    again = copy.deepcopy(message)
    again["retryCount"], again["generatedDateTime"] = count, generated
    return again


@pytest.fixture
def gateway(store: Store) -> Iterator[tuple[str, Store]]:
    with serve_asgi(create_app(store, {"demo": load_tenant(REPO / "tenants" / "demo.yaml")})) as url:
        yield url, store


def _events(store: Store) -> list[InboxEvent]:
    with store.session() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_a_retry_with_a_new_retry_count_and_generated_time_is_the_same_event(gateway) -> None:
    url, store = gateway
    first = _post(url, RECIPIENT_COMPLETED)
    retry = _post(url, _retry(RECIPIENT_COMPLETED, 1, "2026-11-20T13:06:16.7654321Z"))
    later = _post(url, _retry(RECIPIENT_COMPLETED, 2, "2026-11-20T14:06:16.0000000Z"))
    assert [r.status_code for r in (first, retry, later)] == [200, 200, 200]
    assert [r.json()["duplicate"] for r in (first, retry, later)] == [False, True, True]
    [stored] = _events(store)
    assert stored.duplicates == 2 and stored.event_type == "recipient-completed"
    assert stored.event_id == "recipient-completed:e-9:1"


def test_distinct_events_stay_distinct(gateway) -> None:
    url, store = gateway
    spouse = copy.deepcopy(RECIPIENT_COMPLETED)
    spouse["data"]["recipientId"] = "2"
    delivered = dict(copy.deepcopy(RECIPIENT_COMPLETED), event="recipient-delivered")
    envelope_event = copy.deepcopy(RECIPIENT_COMPLETED)
    envelope_event["event"] = "envelope-completed"
    del envelope_event["data"]["recipientId"]  # envelope events name no recipient
    answers = [_post(url, m) for m in (RECIPIENT_COMPLETED, spouse, delivered, envelope_event)]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["duplicate"] for a in answers] == [False] * 4
    assert [e.event_id for e in _events(store)] == [
        "recipient-completed:e-9:1", "recipient-completed:e-9:2", "recipient-delivered:e-9:1",
        "envelope-completed:e-9:"]
    # an envelope event with the sample's empty recipientId is the same event as one without it
    with_empty = dict(copy.deepcopy(envelope_event), retryCount=3)
    with_empty["data"]["recipientId"] = ""
    assert _post(url, with_empty).json()["duplicate"] is True

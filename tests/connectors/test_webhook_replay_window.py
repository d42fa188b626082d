"""The replay window: where a scheme signs the send time, a delivery too old (or too far in the future)
is refused before it is stored; where no scheme signs one, old deliveries are not refused.

Standard Webhooks signs ``webhook-timestamp`` (part of ``id.timestamp.body``): default ±300 s, set per
spec (a number) or per tenant (a ``{values.<name>}`` template). DocuSign Connect, Clicksign and WhatsApp
sign the body only; the event time inside it is not a send time (providers resend old events on
purpose), so no window applies, and Sienge, ZapSign and CV CRM sign nothing at all. See the table
"Webhook authenticity and replay window, per scheme" in docs/reliability.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from connectors.runtime.client import Connector
from connectors.runtime.errors import StaleDeliveryError, WebhookAuthError
from connectors.runtime.webhooks import DEFAULT_TOLERANCE_SECONDS
from orchestration.gateway.app import create_app
from pipelines.store import Store, open_store
from pipelines.store.models import InboxEvent
from ponte.errors import ConfigurationError
from schemas.tenant import TenantConfig
from tests.connectors.conftest import make_spec
from tests.support.servers import serve_asgi

REPO = Path(__file__).resolve().parents[2]
KEY = b"replay-window-key-32-bytes-long!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"type":"envelope.completed","id":"e-1"}'
MINUTE = 60


def _spec(tolerance: Any = None, *, tenant_value: bool = False) -> Any:
    verify: dict[str, Any] = {"type": "standard_webhooks", "secret": "{secrets.secret}"}
    values: dict[str, Any] = {"base_url": {"description": "server"}}
    if tenant_value:
        verify["tolerance_seconds"] = "{values.webhook_tolerance_seconds}"
        values["webhook_tolerance_seconds"] = {"description": "replay window, seconds", "default": "300"}
    elif tolerance is not None:
        verify["tolerance_seconds"] = tolerance
    return make_spec({
        "values": values,
        "secrets": {"secret": {"description": "whsec_ secret"}},
        "webhooks": {"events": {"verify": verify, "event_id": {"header": "webhook-id"},
                                "event_type": {"body": "type"},
                                "event_time": {"header": "webhook-timestamp", "format": "epoch"}}},
    })


def _connector(spec: Any, **values: str) -> Connector:
    return Connector.open(spec, {"base_url": "http://127.0.0.1:1", **values}, {"secret": SECRET})


def signed(stamp: int, body: bytes = BODY, msg_id: str = "msg_1") -> dict[str, str]:
    """Headers a Standard Webhooks sender puts on an attempt sent at ``stamp`` (epoch seconds)."""
    sig = base64.b64encode(hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": f"v1,{sig}"}


NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _at(offset_seconds: int) -> dict[str, str]:
    return signed(int(NOW.timestamp()) + offset_seconds)


# -------------------------------------------------------------------------- the default: ±5 minutes


def test_the_default_window_is_five_minutes() -> None:
    assert DEFAULT_TOLERANCE_SECONDS == 300
    assert _spec().webhooks["events"].verify.tolerance_seconds == 300


@pytest.mark.parametrize("offset", [-4 * MINUTE, -299, 0, 299, 4 * MINUTE], ids=lambda o: f"{o:+d}s")
def test_a_delivery_signed_within_five_minutes_is_accepted(offset: int) -> None:
    delivery = _connector(_spec()).verify_webhook("events", _at(offset), BODY, now=NOW)
    assert delivery.event_id == "msg_1" and delivery.event_time == NOW + timedelta(seconds=offset)


@pytest.mark.parametrize(
    ("offset", "said"),
    [(-6 * MINUTE, "360 s old"), (-301, "301 s old"), (6 * MINUTE, "360 s in the future"),
     (-3 * 24 * 3600, "259200 s old")],
    ids=["6-min-old", "301-s-old", "6-min-future", "3-days-old"],
)
def test_a_delivery_signed_outside_the_window_is_refused_clearly(offset: int, said: str) -> None:
    with pytest.raises(StaleDeliveryError) as refused:
        _connector(_spec()).verify_webhook("events", _at(offset), BODY, now=NOW)
    error = refused.value
    assert isinstance(error, WebhookAuthError)  # the gateway's 401, before anything is stored
    assert said in error.message and "replay window of ±300 s" in error.message
    assert error.tenant is None or isinstance(error.tenant, str)


def test_a_forgery_with_a_fresh_timestamp_is_still_a_forgery() -> None:
    """The window is checked on an authentic timestamp; a forged one is a signature mismatch."""
    headers = {**_at(0), "webhook-timestamp": str(int(NOW.timestamp()) - 10 * MINUTE)}
    with pytest.raises(WebhookAuthError) as refused:
        _connector(_spec()).verify_webhook("events", headers, BODY, now=NOW)
    assert not isinstance(refused.value, StaleDeliveryError)


# ------------------------------------------------------------------ configurable per spec and tenant


def test_the_window_is_set_per_spec() -> None:
    ten_minutes = _connector(_spec(600))
    assert ten_minutes.verify_webhook("events", _at(-6 * MINUTE), BODY, now=NOW).event_id == "msg_1"
    with pytest.raises(StaleDeliveryError, match="±600 s"):
        ten_minutes.verify_webhook("events", _at(-11 * MINUTE), BODY, now=NOW)
    one_minute = _connector(_spec(60))
    with pytest.raises(StaleDeliveryError, match="±60 s"):
        one_minute.verify_webhook("events", _at(-2 * MINUTE), BODY, now=NOW)


def test_the_window_is_set_per_tenant_through_a_connector_value() -> None:
    spec = _spec(tenant_value=True)
    with pytest.raises(StaleDeliveryError, match="±300 s"):  # the spec's declared default
        _connector(spec).verify_webhook("events", _at(-6 * MINUTE), BODY, now=NOW)
    patient = _connector(spec, webhook_tolerance_seconds="900")
    assert patient.verify_webhook("events", _at(-6 * MINUTE), BODY, now=NOW).event_id == "msg_1"
    with pytest.raises(StaleDeliveryError, match="±900 s"):
        patient.verify_webhook("events", _at(-16 * MINUTE), BODY, now=NOW)


@pytest.mark.parametrize("value", ["0", "-5", "five minutes", ""])
def test_a_tenant_window_that_is_not_a_positive_number_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"\(fix: set the connector value to a whole number of seconds"):
        _connector(_spec(tenant_value=True), webhook_tolerance_seconds=value).verify_webhook(
            "events", _at(0), BODY, now=NOW
        )


@pytest.mark.parametrize(
    "verify",
    [
        {"type": "standard_webhooks", "secret": "{secrets.secret}", "tolerance_seconds": 0},
        {"type": "standard_webhooks", "secret": "{secrets.secret}", "tolerance_seconds": "{values.nowhere}"},
        # only a scheme that signs a send time has a window: an HMAC of the body cannot take one
        {"type": "hmac", "secret": "{secrets.secret}", "headers": ["X-Sig"], "tolerance_seconds": 300},
        {"type": "bearer", "token": "{secrets.secret}", "tolerance_seconds": 300},
    ],
    ids=["zero", "undeclared-value", "hmac", "bearer"],
)
def test_a_window_where_none_can_hold_is_refused_when_the_spec_loads(verify: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        make_spec({
            "secrets": {"secret": {"description": "s"}},
            "webhooks": {"events": {"verify": verify, "event_id": {"header": "id"}, "event_type": {"header": "t"}}},
        })


# --------------------------------------------- schemes that sign no send time: old deliveries pass


def _hmac(secret: str, body: bytes, *, b64: bool = False) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode() if b64 else digest.hexdigest()


def test_schemes_without_a_signed_send_time_accept_a_days_old_redelivery() -> None:
    """A provider's redelivery of an old event (DocuSign republish, Meta's and Sienge's retries over hours)
    must still be stored: the event time inside the body is not a send time, so no window applies."""
    base = {"base_url": "http://127.0.0.1:1"}
    old = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # more than a month before NOW
    docusign = Connector.open("docusign", {**base, "account_id": "acc"},
                              {"access_token": "t", "connect_hmac_key": "docusign-connect-secret"})
    body = json.dumps({"event": "envelope-completed", "retryCount": 3, "generatedDateTime": old.isoformat(),
                       "data": {"envelopeId": "e-1"}}).encode()
    got = docusign.verify_webhook("connect", {"X-DocuSign-Signature-1": _hmac("docusign-connect-secret", body, b64=True)},
                                  body, now=NOW)
    assert got.event_time == old

    clicksign = Connector.open("clicksign", base, {"access_token": "t", "webhook_secret": "clicksign-webhook-secret"})
    body = json.dumps({"event": {"name": "sign", "occurred_at": old.isoformat()}, "document": {"key": "d"}}).encode()
    headers = {"Content-Hmac": "sha256=" + _hmac("clicksign-webhook-secret", body), "Event": "sign"}
    assert clicksign.verify_webhook("events", headers, body, now=NOW).event_type == "sign"

    whatsapp = Connector.open("whatsapp", {**base, "phone_number_id": "1"},
                              {"access_token": "t", "app_secret": "whatsapp-app-secret", "verify_token": "v"})
    body = json.dumps({"entry": [{"changes": [{"field": "messages", "value": {"statuses": [
        {"id": "wamid.1", "status": "read", "timestamp": str(int(old.timestamp()))}]}}]}]}).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + _hmac("whatsapp-app-secret", body)}
    assert whatsapp.verify_webhook("messages", headers, body, now=NOW).event_time == old


# ------------------------------------------------ through the gateway: refused before it is stored


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """The real gateway for a tenant whose ``hooks`` connector speaks Standard Webhooks (window 300 s,
    set per tenant) and a second one, ``patient``, whose tenant value widens it to 900 s."""
    spec = {
        "kind": "http", "name": "replay_hooks", "base_url": "{values.base_url}",
        "values": {"base_url": {"description": "host", "default": "http://127.0.0.1:1"},
                   "webhook_tolerance_seconds": {"description": "replay window, seconds", "default": "300"}},
        "secrets": {"secret": {"description": "whsec_ secret"}},
        "webhooks": {"events": {
            "verify": {"type": "standard_webhooks", "secret": "{secrets.secret}",
                       "tolerance_seconds": "{values.webhook_tolerance_seconds}"},
            "event_id": {"header": "webhook-id"}, "event_type": {"body": "type"},
            "event_time": {"header": "webhook-timestamp", "format": "epoch"}}},
    }
    spec_path = tmp_path / "replay_hooks.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    credentials = {"secret": {"env": "PONTE_TEST_REPLAY_HOOKS_SECRET", "default": SECRET}}
    data["connectors"]["hooks"] = {"spec": str(spec_path), "credentials": credentials}
    data["connectors"]["patient"] = {"spec": str(spec_path), "credentials": credentials,
                                     "values": {"webhook_tolerance_seconds": "900"}}
    tenant = TenantConfig.model_validate(data)
    store = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    try:
        with serve_asgi(create_app(store, {"demo": tenant})) as url:
            yield url, store
    finally:
        store.dispose()


def _stored(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent)) or 0


def _post(url: str, connector: str, age_seconds: int) -> httpx.Response:
    msg_id = f"msg_{uuid.uuid4().hex}"
    headers = signed(int(time.time()) - age_seconds, msg_id=msg_id)
    return httpx.post(f"{url}/webhooks/demo/{connector}/events", content=BODY,
                      headers={**headers, "content-type": "application/json"})


def test_the_gateway_refuses_a_six_minute_old_delivery_before_storing_it(gateway) -> None:
    url, store = gateway
    stale = _post(url, "hooks", 6 * MINUTE)
    assert stale.status_code == 401 and _stored(store) == 0
    future = _post(url, "hooks", -6 * MINUTE)
    assert future.status_code == 401 and _stored(store) == 0
    fresh = _post(url, "hooks", 4 * MINUTE)
    assert fresh.status_code == 200 and fresh.json()["stored"] is True and _stored(store) == 1


def test_the_gateway_applies_each_tenant_connectors_window(gateway) -> None:
    url, store = gateway
    assert _post(url, "patient", 6 * MINUTE).status_code == 200
    assert _post(url, "patient", 16 * MINUTE).status_code == 401
    assert _stored(store) == 1

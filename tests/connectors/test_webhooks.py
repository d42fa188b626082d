"""Webhook verification per scheme, on the shipped specs: valid deliveries pass, forgeries fail.

Each scheme is exercised with: a valid delivery, a wrong secret, an altered body, a missing header (or
URL secret), and a stale timestamp where the scheme signs one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.runtime.client import Connector
from connectors.runtime.errors import (
    MalformedDeliveryError,
    MissingSignatureError,
    SignatureMismatchError,
    StaleDeliveryError,
    WebhookAuthError,
)
from ponte.errors import AuthError, DataError
from tests.connectors.conftest import make_spec


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hmac_b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def connector(name: str, secrets: dict[str, str], values: dict[str, str] | None = None) -> Connector:
    return Connector.open(name, {"base_url": "http://127.0.0.1:1", **(values or {})}, secrets)


# ------------------------------------------------------------------------ Clicksign: Content-Hmac hex

CLICKSIGN_BODY = json.dumps({"event": {"name": "sign", "occurred_at": "2026-05-01T10:00:00-03:00"},
                             "document": {"key": "doc-123"}}).encode()


@pytest.fixture
def clicksign() -> Connector:
    return connector("clicksign", {"access_token": "clicksign-sandbox-token", "webhook_secret": "clicksign-webhook-secret"})


def test_clicksign_valid(clicksign: Connector) -> None:
    headers = {"Content-Hmac": "sha256=" + hmac_hex("clicksign-webhook-secret", CLICKSIGN_BODY), "Event": "sign"}
    delivery = clicksign.verify_webhook("events", headers, CLICKSIGN_BODY)
    assert delivery.event_type == "sign" and delivery.subject_id == "doc-123"
    assert delivery.event_id == hashlib.sha256(CLICKSIGN_BODY).hexdigest()
    assert delivery.event_time == datetime.fromisoformat("2026-05-01T10:00:00-03:00")


@pytest.mark.parametrize("case", ["wrong_secret", "altered_body", "missing_header", "no_prefix"])
def test_clicksign_rejections(clicksign: Connector, case: str) -> None:
    body, secret, headers = CLICKSIGN_BODY, "clicksign-webhook-secret", {"Event": "sign"}
    if case == "wrong_secret":
        secret = "not-the-secret"
    signature = hmac_hex(secret, body)
    headers["Content-Hmac"] = signature if case == "no_prefix" else "sha256=" + signature
    if case == "altered_body":
        body = body.replace(b"doc-123", b"doc-999")
    if case == "missing_header":
        del headers["Content-Hmac"]
    expected = MissingSignatureError if case == "missing_header" else SignatureMismatchError
    with pytest.raises(expected) as info:
        clicksign.verify_webhook("events", headers, body)
    assert isinstance(info.value, AuthError) and info.value.tenant == "default"


# ----------------------------------------------------- DocuSign Connect: base64, one of several headers

DOCUSIGN_BODY = json.dumps({"event": "envelope-completed", "generatedDateTime": "2026-05-01T13:00:00.000Z",
                            "data": {"envelopeId": "env-1", "accountId": "acc"}}).encode()


@pytest.fixture
def docusign() -> Connector:
    return connector("docusign", {"access_token": "docusign-sandbox-token", "connect_hmac_key": "docusign-connect-secret"},
                     {"account_id": "acc"})


def test_docusign_any_active_key_matches(docusign: Connector) -> None:
    headers = {"X-DocuSign-Signature-1": hmac_b64("an-old-rotated-key", DOCUSIGN_BODY),
               "X-DocuSign-Signature-2": hmac_b64("docusign-connect-secret", DOCUSIGN_BODY)}
    delivery = docusign.verify_webhook("connect", headers, DOCUSIGN_BODY)
    assert delivery.event_type == "envelope-completed" and delivery.subject_id == "env-1"
    # what the event is about, not when the message was generated (a retry may regenerate it)
    assert delivery.event_id == "envelope-completed:env-1:"
    assert delivery.event_time == datetime(2026, 5, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", ["wrong_secret", "altered_body", "missing_header", "hex_instead_of_base64"])
def test_docusign_rejections(docusign: Connector, case: str) -> None:
    body = DOCUSIGN_BODY
    signature = {"wrong_secret": hmac_b64("nope", body), "hex_instead_of_base64": hmac_hex("docusign-connect-secret", body)
                 }.get(case, hmac_b64("docusign-connect-secret", body))
    headers = {} if case == "missing_header" else {"X-DocuSign-Signature-1": signature}
    if case == "altered_body":
        body = body.replace(b"completed", b"voided")
    with pytest.raises(WebhookAuthError):
        docusign.verify_webhook("connect", headers, body)


# ---------------------------------------------------------------- WhatsApp: X-Hub-Signature-256 + challenge

WA_BODY = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
    "metadata": {"phone_number_id": "100000000000001"},
    "statuses": [{"id": "wamid.X", "status": "delivered", "timestamp": "1777640400", "recipient_id": "5548"}]}}]}]}).encode()


@pytest.fixture
def whatsapp() -> Connector:
    return connector("whatsapp", {"access_token": "whatsapp-sandbox-token", "app_secret": "whatsapp-app-secret",
                                  "verify_token": "verify-me-please"}, {"phone_number_id": "100000000000001"})


def test_whatsapp_valid_status_delivery(whatsapp: Connector) -> None:
    headers = {"x-hub-signature-256": "sha256=" + hmac_hex("whatsapp-app-secret", WA_BODY)}
    delivery = whatsapp.verify_webhook("messages", headers, WA_BODY)
    assert delivery.event_type == "messages" and delivery.subject_id == "wamid.X"
    assert delivery.event_time == datetime.fromtimestamp(1777640400, UTC)


@pytest.mark.parametrize("case", ["wrong_secret", "altered_body", "missing_header"])
def test_whatsapp_rejections(whatsapp: Connector, case: str) -> None:
    body = WA_BODY
    headers = {"X-Hub-Signature-256": "sha256=" + hmac_hex("nope" if case == "wrong_secret" else "whatsapp-app-secret", body)}
    if case == "missing_header":
        headers = {}
    if case == "altered_body":
        body = body.replace(b"delivered", b"read")
    with pytest.raises(WebhookAuthError):
        whatsapp.verify_webhook("messages", headers, body)


def test_whatsapp_subscription_handshake(whatsapp: Connector) -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": "verify-me-please", "hub.challenge": "1158201444"}
    assert whatsapp.webhook_challenge("messages", good) == "1158201444"
    with pytest.raises(SignatureMismatchError):
        whatsapp.webhook_challenge("messages", {**good, "hub.verify_token": "guess"})


# ------------------------------------------------------------------------------- Sienge: bearer token

SIENGE_BODY = json.dumps({"customerId": 42}).encode()


@pytest.fixture
def sienge() -> Connector:
    return connector("sienge", {"username": "u", "password": "p", "webhook_token": "sienge-hook-token"},
                     {"subdomain": "demo"})


def test_sienge_valid(sienge: Connector) -> None:
    headers = {"Authorization": "Bearer sienge-hook-token", "x-sienge-event": "CUSTOMER_UPDATED",
               "x-sienge-id": "7d9c-1", "x-sienge-tenant": "demo"}
    delivery = sienge.verify_webhook("hooks", headers, SIENGE_BODY)
    assert (delivery.event_id, delivery.event_type, delivery.payload) == ("7d9c-1", "CUSTOMER_UPDATED", {"customerId": 42})
    assert "authorization" not in delivery.headers


@pytest.mark.parametrize("case,error", [("wrong_token", SignatureMismatchError), ("missing_header", MissingSignatureError),
                                        ("basic_scheme", SignatureMismatchError)])
def test_sienge_rejections(sienge: Connector, case: str, error: type) -> None:
    auth = {"wrong_token": "Bearer guess", "basic_scheme": "Basic sienge-hook-token"}.get(case)
    headers = {"x-sienge-event": "CUSTOMER_UPDATED", "x-sienge-id": "1"} | ({"Authorization": auth} if auth else {})
    with pytest.raises(error):
        sienge.verify_webhook("hooks", headers, SIENGE_BODY)


def test_sienge_delivery_without_event_id_is_malformed(sienge: Connector) -> None:
    headers = {"Authorization": "Bearer sienge-hook-token", "x-sienge-event": "CUSTOMER_UPDATED"}
    with pytest.raises(MalformedDeliveryError) as info:
        sienge.verify_webhook("hooks", headers, SIENGE_BODY)
    assert isinstance(info.value, DataError) and "x-sienge-id" in info.value.message


# ---------------------------------------------------------------- CV CRM: secret in the URL, derived id

CV_BODY = json.dumps({"idwebhook": 3, "funcionalidade": "AS", "gatilho": 12, "id": 981,
                      "enviado_em": "2026-05-01 10:00:00"}).encode()


@pytest.fixture
def cvcrm() -> Connector:
    return connector("cvcrm", {"email": "e@demo.cvcrm.com.br", "token": "t", "webhook_secret": "cv-url-secret-0123456789"},
                     {"domain": "demo"})


def test_cvcrm_valid_with_an_event_id_derived_from_the_body(cvcrm: Connector) -> None:
    delivery = cvcrm.verify_webhook("events", {}, CV_BODY, params={"secret": "cv-url-secret-0123456789"})
    assert delivery.event_id == "3:AS:12:981:2026-05-01 10:00:00"
    assert delivery.event_type == "AS:12" and delivery.subject_id == "981"
    again = cvcrm.verify_webhook("events", {}, CV_BODY, params={"secret": "cv-url-secret-0123456789"})
    assert again.event_id == delivery.event_id  # a redelivery deduplicates


@pytest.mark.parametrize("params,error", [({"secret": "guess"}, SignatureMismatchError), ({}, MissingSignatureError)])
def test_cvcrm_rejections(cvcrm: Connector, params: dict, error: type) -> None:
    with pytest.raises(error):
        cvcrm.verify_webhook("events", {}, CV_BODY, params=params)


def test_cvcrm_body_that_is_not_json_is_malformed(cvcrm: Connector) -> None:
    with pytest.raises(MalformedDeliveryError):
        cvcrm.verify_webhook("events", {}, b"\xff\xfe not json", params={"secret": "cv-url-secret-0123456789"})


# ---------------------------------------------------- ZapSign: custom header (the only documented proof)

def test_zapsign_header_secret() -> None:
    conn = connector("zapsign", {"api_token": "zap-token", "webhook_secret": "zap-header-secret"})
    body = json.dumps({"event_type": "doc_signed", "token": "doc-9"}).encode()
    assert conn.verify_webhook("events", {"X-Ponte-Secret": "zap-header-secret"}, body).event_type == "doc_signed"
    with pytest.raises(SignatureMismatchError):
        conn.verify_webhook("events", {"X-Ponte-Secret": "zap-header-secreT"}, body)
    with pytest.raises(MissingSignatureError):
        conn.verify_webhook("events", {}, body)


# ------------------------------------------------ Standard Webhooks (timestamped) and HMAC over a field

SW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
SW_SPEC = make_spec({
    "secrets": {"secret": {"description": "s"}},
    "webhooks": {"events": {"verify": {"type": "standard_webhooks", "secret": "{secrets.secret}", "tolerance_seconds": 300},
                            "event_id": {"header": "webhook-id"}, "event_type": {"body": "type"},
                            "event_time": {"header": "webhook-timestamp", "format": "epoch"}}},
})


def sw_headers(body: bytes, stamp: int, msg_id: str = "msg_1", key: bytes = b"standard-webhooks-key-32-bytes!!") -> dict:
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": f"v1,bogus v1,{sig}"}


def sw() -> Connector:
    return Connector.open(SW_SPEC, {"base_url": "http://127.0.0.1:1"}, {"secret": SW_SECRET})


def test_standard_webhooks_valid() -> None:
    body, now = b'{"type":"invoice.paid"}', int(time.time())
    delivery = sw().verify_webhook("events", sw_headers(body, now), body)
    assert delivery.event_id == "msg_1" and delivery.event_type == "invoice.paid"


@pytest.mark.parametrize("case,error", [
    ("stale", StaleDeliveryError), ("future", StaleDeliveryError), ("wrong_secret", SignatureMismatchError),
    ("altered_body", SignatureMismatchError), ("missing_header", MissingSignatureError),
    ("replayed_id", SignatureMismatchError),
])
def test_standard_webhooks_rejections(case: str, error: type) -> None:
    body, now = b'{"type":"invoice.paid"}', int(time.time())
    stamp = {"stale": now - 301, "future": now + 400}.get(case, now)
    headers = sw_headers(body, stamp, key=b"another-key" if case == "wrong_secret" else b"standard-webhooks-key-32-bytes!!")
    if case == "altered_body":
        body = b'{"type":"invoice.void"}'
    if case == "missing_header":
        del headers["webhook-signature"]
    if case == "replayed_id":
        headers["webhook-id"] = "msg_2"
    with pytest.raises(error):
        sw().verify_webhook("events", headers, body)


def test_hmac_over_a_body_field_form_encoded() -> None:
    spec = make_spec({"secrets": {"mac": {"description": "s"}}, "webhooks": {"d4": {
        "verify": {"type": "hmac", "secret": "{secrets.mac}", "headers": ["Content-Hmac"], "prefix": "sha256=",
                   "over_field": "uuid"},
        "event_id": {"composite": ["uuid", "type_post"]}, "event_type": {"body": "type_post"}}}})
    conn = Connector.open(spec, {"base_url": "http://127.0.0.1:1"}, {"mac": "d4sign-secret-mac"})
    body = b"uuid=5a1b&type_post=1&message=finished"
    good = {"Content-Hmac": "sha256=" + hmac_hex("d4sign-secret-mac", b"5a1b")}
    assert conn.verify_webhook("d4", good, body).event_id == "5a1b:1"
    with pytest.raises(SignatureMismatchError):
        conn.verify_webhook("d4", good, body.replace(b"5a1b", b"9999"))


# ------------------------------------------------------------------------------ property-based checks


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64).filter(lambda s: "{" not in s and "}" not in s))
def test_hmac_hex_accepts_exactly_its_own_signature(body: bytes, secret: str) -> None:
    from connectors.runtime.webhooks import check_hmac
    from connectors.spec.models import HmacVerify

    spec = HmacVerify(type="hmac", secret="x", headers=["Content-Hmac"], prefix="sha256=")
    check_hmac(spec, secret, {"content-hmac": "sha256=" + hmac_hex(secret, body)}, body, None)
    with pytest.raises(SignatureMismatchError):
        check_hmac(spec, secret, {"content-hmac": "sha256=" + hmac_hex(secret + "x", body)}, body, None)
    with pytest.raises(SignatureMismatchError):
        check_hmac(spec, secret, {"content-hmac": "sha256=" + hmac_hex(secret, body)}, body + b"!", None)


@given(body=st.binary(max_size=1024), key=st.binary(min_size=1, max_size=64))
def test_standard_webhooks_accepts_exactly_its_own_signature(body: bytes, key: bytes) -> None:
    from connectors.runtime.webhooks import check_standard
    from connectors.spec.models import StandardWebhooksVerify

    spec = StandardWebhooksVerify(type="standard_webhooks", secret="x")
    now = datetime.now(UTC)
    headers = sw_headers(body, int(now.timestamp()), key=key)
    check_standard(spec, "whsec_" + base64.b64encode(key).decode(), headers, body, now)
    with pytest.raises(SignatureMismatchError):
        check_standard(spec, "whsec_" + base64.b64encode(key + b"x").decode(), headers, body, now)

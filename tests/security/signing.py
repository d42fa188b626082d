"""Signing deliveries the way each provider does, for the fuzz tests (the secrets come from the connector)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from connectors.runtime.client import Connector


def hmac_digest(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def sign_sienge(conn: Connector, body: bytes, event_id: str = "evt-1",
                event: str = "CUSTOMER_UPDATED") -> tuple[dict[str, str], dict[str, str]]:
    return {"Authorization": f"Bearer {conn.secrets['webhook_token']}", "x-sienge-id": event_id,
            "x-sienge-event": event}, {}


def sign_cvcrm(conn: Connector, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    return {}, {"secret": conn.secrets["webhook_secret"]}


def sign_docusign(conn: Connector, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    good = base64.b64encode(hmac_digest(conn.secrets["connect_hmac_key"], body)).decode()
    rotated = base64.b64encode(hmac_digest("a-rotated-out-key", body)).decode()
    return {"X-DocuSign-Signature-1": rotated, "X-DocuSign-Signature-2": good}, {}


def sign_clicksign(conn: Connector, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    return {"Content-Hmac": "sha256=" + hmac_digest(conn.secrets["webhook_secret"], body).hex(), "Event": "sign"}, {}


def sign_whatsapp(conn: Connector, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    return {"X-Hub-Signature-256": "sha256=" + hmac_digest(conn.secrets["app_secret"], body).hex()}, {}


def sign_zapsign(conn: Connector, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    return {"X-Ponte-Secret": conn.secrets["webhook_secret"]}, {}


#: the demo tenant's webhook routes: connector key -> (webhook name, signer)
DEMO_ROUTES = {
    "sienge": ("hooks", sign_sienge),
    "cvcrm": ("events", sign_cvcrm),
    "docusign": ("connect", sign_docusign),
    "clicksign": ("events", sign_clicksign),
    "whatsapp": ("messages", sign_whatsapp),
}

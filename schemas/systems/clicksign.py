"""Clicksign API v3 payloads: JSON:API request bodies Ponte sends and the webhook body it receives.

Every v3 body is ``{"data": {"type": ..., "attributes": {...}}}`` with ``Content-Type:
application/vnd.api+json``. Signing order is the signer's ``group`` (1 signs first). Creating an
envelope is several requests; :class:`ClicksignEnvelopeRequests` bundles the bodies one mapping
produces (envelope, document, one per signer) so the dispatch pipeline sends them in order.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.systems.base import Payload, RequestBody


class CsEnvelopeAttributes(RequestBody):
    name: str
    locale: str = "pt-BR"
    auto_close: bool = True
    remind_interval: int | None = None
    block_after_refusal: bool = True
    deadline_at: str | None = Field(None, description="ISO datetime with offset")
    metadata: dict[str, Any] | None = None


class CsEnvelopeData(RequestBody):
    type: Literal["envelopes"] = "envelopes"
    attributes: CsEnvelopeAttributes


class ClicksignEnvelopeCreate(RequestBody):
    """``POST /api/v3/envelopes``."""

    data: CsEnvelopeData


class CsDocumentAttributes(RequestBody):
    filename: str
    content_base64: str = Field(description="data:application/pdf;base64,...")
    metadata: dict[str, Any] | None = None


class CsDocumentData(RequestBody):
    type: Literal["documents"] = "documents"
    attributes: CsDocumentAttributes


class ClicksignDocumentCreate(RequestBody):
    """``POST /api/v3/envelopes/{id}/documents``."""

    data: CsDocumentData


class CsCommunicateEvents(RequestBody):
    document_signed: Literal["email", "whatsapp", "sms", "none"] = "email"
    signature_request: Literal["email", "whatsapp", "sms", "none"] = "email"
    signature_reminder: Literal["email", "whatsapp", "sms", "none"] = "email"


class CsSignerAttributes(RequestBody):
    name: str
    email: str | None = None
    birthday: str | None = None
    phone_number: str | None = Field(None, description="Digits with area code, no country code")
    has_documentation: bool = True
    documentation: str | None = Field(None, description="CPF formatted 000.000.000-00")
    refusable: bool = False
    group: int = Field(ge=1)
    communicate_events: CsCommunicateEvents | None = None


class CsSignerData(RequestBody):
    type: Literal["signers"] = "signers"
    attributes: CsSignerAttributes


class ClicksignSignerCreate(RequestBody):
    """``POST /api/v3/envelopes/{id}/signers``."""

    data: CsSignerData


class ClicksignEnvelopeRequests(RequestBody):
    """The bodies to create one envelope, in sending order (requirements need the ids the first calls
    return, so the pipeline builds those)."""

    envelope: ClicksignEnvelopeCreate
    document: ClicksignDocumentCreate
    signers: list[ClicksignSignerCreate] = Field(min_length=1)


class CsWebhookSigner(Payload):
    id: str | None = None
    key: str | None = None
    name: str | None = None
    email: str | None = None
    group: int | None = None
    documentation: str | None = None
    phone_number: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    geolocation: dict[str, Any] | None = None
    selfie_url: str | None = None
    document_photo_url: str | None = None
    role: str | None = Field(None, description="sign, approve, ... when Clicksign tells it")


class CsWebhookEventData(Payload):
    signer: CsWebhookSigner | None = None
    reason: str | None = None
    deadline_at: str | None = None


class CsWebhookEvent(Payload):
    name: str = Field(description="sign, close, auto_close, refusal, deadline, cancel, upload, ...")
    occurred_at: str
    data: CsWebhookEventData | None = None


class CsWebhookEnvelope(Payload):
    id: str
    name: str | None = None
    status: str | None = None
    metadata: dict[str, Any] | None = None


class ClicksignWebhook(Payload):
    """A webhook delivery (headers ``Event`` and ``Content-Hmac`` are checked by the gateway)."""

    event: CsWebhookEvent
    envelope: CsWebhookEnvelope
    document: dict[str, Any] | None = None
    documents: list[dict[str, Any]] = Field(default_factory=list)

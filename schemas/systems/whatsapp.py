"""WhatsApp Cloud API payloads: the template message Ponte sends and the webhook Meta delivers.

Phone numbers travel as digits with the country code and no ``+`` (``5548991234567``); webhook times are
Unix epoch seconds as strings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.systems.base import Payload, RequestBody


class WaTextParameter(RequestBody):
    type: Literal["text"] = "text"
    text: str


class WaComponent(RequestBody):
    type: Literal["header", "body", "button"]
    sub_type: str | None = None
    index: str | None = None
    parameters: list[WaTextParameter] = Field(default_factory=list)


class WaLanguage(RequestBody):
    code: str


class WaTemplate(RequestBody):
    name: str
    language: WaLanguage
    components: list[WaComponent] = Field(default_factory=list)


class WhatsappTemplateMessage(RequestBody):
    """``POST /{version}/{phone-number-id}/messages`` with a template."""

    messaging_product: Literal["whatsapp"] = "whatsapp"
    recipient_type: Literal["individual"] | None = None
    to: str = Field(pattern=r"^\d{8,15}$")
    type: Literal["template"] = "template"
    template: WaTemplate


class WaError(Payload):
    code: int | None = None
    title: str | None = None
    message: str | None = None


class WaStatus(Payload):
    id: str = Field(description="The message id the send call returned (wamid....)")
    status: Literal["sent", "delivered", "read", "failed"]
    timestamp: str = Field(description="Unix epoch seconds")
    recipient_id: str
    errors: list[WaError] = Field(default_factory=list)
    conversation: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None


class WaMetadata(Payload):
    display_phone_number: str | None = None
    phone_number_id: str


class WaValue(Payload):
    messaging_product: str | None = None
    metadata: WaMetadata
    statuses: list[WaStatus] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)


class WaChange(Payload):
    field: str
    value: WaValue


class WaEntry(Payload):
    id: str
    changes: list[WaChange] = Field(default_factory=list)


class WhatsappWebhook(Payload):
    object: Literal["whatsapp_business_account"]
    entry: list[WaEntry] = Field(default_factory=list)

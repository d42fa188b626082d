"""Contracts, envelopes, signers, signing events and the evidence signers leave."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import CanonicalModel
from schemas.documents import PhoneE164, TaxId
from schemas.emails import EmailAddress


class EnvelopeStatus(StrEnum):
    draft = "draft"
    sent = "sent"
    delivered = "delivered"
    completed = "completed"
    declined = "declined"
    voided = "voided"
    expired = "expired"


class SignerStatus(StrEnum):
    created = "created"
    waiting = "waiting"  # an earlier routing order has not signed yet
    sent = "sent"
    delivered = "delivered"  # viewed
    signed = "signed"
    declined = "declined"
    expired = "expired"


class Override(StrEnum):
    yes = "yes"
    no = "no"
    default = "default"


class Contract(CanonicalModel):
    """A sale contract in the CRM, ready (or not) to be signed."""

    source_id: str = Field(description="CV CRM contract id (idreservacontrato)")
    reservation_id: str
    title: str
    document_source: Literal["crm_pdf", "template"] = "crm_pdf"
    template: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    value: Decimal | None = Field(None, ge=0)
    monthly_fee: Decimal | None = Field(None, ge=0)
    duration_months: int | None = Field(None, ge=0)
    people: dict[str, TaxId] = Field(
        default_factory=dict, description="role -> document of who signs in that role"
    )
    selfie: Override = Override.default
    document_photo: Override = Override.default
    signature_pages: Literal["all", "first", "last"] | list[int] | None = None

    @model_validator(mode="after")
    def _template_named(self) -> Contract:
        if self.document_source == "template" and not self.template:
            raise ValueError("document_source is 'template' but no template is named")
        return self


class Signer(CanonicalModel):
    role: str
    routing_order: int = Field(ge=1)
    name: str = Field(min_length=1)
    document: TaxId
    email: EmailAddress | None = None
    phone: PhoneE164 | None = None
    channel: Literal["email", "whatsapp"] = "email"
    interaction: Literal["sign", "approve", "receive_copy"] = Field(
        "sign", description="sign, approve, or only receive a copy (the tenant's chain, per role)"
    )
    selfie_required: bool = False
    document_photo_required: bool = False
    status: SignerStatus = SignerStatus.created

    @model_validator(mode="after")
    def _channel_reachable(self) -> Signer:
        if self.channel == "email" and not self.email:
            raise ValueError(f"signer {self.role} uses the e-mail channel but has no e-mail")
        if self.channel == "whatsapp" and not self.phone:
            raise ValueError(f"signer {self.role} uses the WhatsApp channel but has no mobile phone")
        return self


class SignaturePosition(CanonicalModel):
    role: str
    page: int = Field(ge=1)
    x: float = Field(ge=0, description="points from the left edge")
    y: float = Field(ge=0, description="points from the top edge")
    width: float = Field(gt=0)
    height: float = Field(gt=0)


class Envelope(CanonicalModel):
    tenant: str
    contract_id: str
    provider: str
    document_name: str
    document_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    idempotency_key: str
    signers: list[Signer] = Field(min_length=1)
    positions: list[SignaturePosition] = Field(default_factory=list)
    expires_in_days: int = Field(ge=1)
    status: EnvelopeStatus = EnvelopeStatus.draft
    provider_envelope_id: str | None = None
    email_subject: str | None = None
    summary: dict[str, str] = Field(
        default_factory=dict,
        description="What the invitation summarises (valor_total, parcela, prazo_meses), from the sale's "
        "payment conditions; empty when the CRM has none",
    )

    @model_validator(mode="after")
    def _orders(self) -> Envelope:
        orders = sorted(signer.routing_order for signer in self.signers)
        if orders[0] != 1:
            raise ValueError("the first signer must have routing_order 1")
        return self


class IdentityCheck(CanonicalModel):
    """An identity check the provider ran on the signer, as the provider reported it."""

    provider: str
    method: str = Field(description="id_verification: DocuSign's ID Verification (document photo, selfie)")
    workflow_id: str | None = None
    status: str = Field(description="the provider's result, lower case (passed, failed, ...)")
    checked_at: datetime | None = None
    failure: str | None = None


class Evidence(CanonicalModel):
    """What a signer left at signing: proof of who signed, where and how."""

    ip: str | None = None
    user_agent: str | None = None
    device: str | None = None
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    selfie_ref: str | None = None
    document_photo_ref: str | None = None
    face_match: bool | None = None
    identity_checks: list[IdentityCheck] | None = None
    email: EmailAddress | None = None
    phone: PhoneE164 | None = None
    document: TaxId | None = None


class SigningEventKind(StrEnum):
    sent = "sent"
    view = "view"
    signature = "signature"
    approval = "approval"
    refusal = "refusal"
    expiry = "expiry"
    cancellation = "cancellation"
    completion = "completion"
    delivery_failure = "delivery_failure"


class SigningEvent(CanonicalModel):
    """A provider webhook (or poll result) in the hub's words."""

    provider: str
    event_id: str
    kind: SigningEventKind
    provider_envelope_id: str
    occurred_at: datetime
    recipient_id: str | None = None
    signer_email: EmailAddress | None = None
    routing_order: int | None = Field(None, ge=1)
    evidence: Evidence | None = None
    raw_status: str | None = None

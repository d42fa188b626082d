"""Canonical records: the hub's own vocabulary, independent of any outside system.

Mappings translate each system's payloads to and from these; pipelines work only with these.
"""

from schemas.canonical.assistance import TERMINAL_ASSISTANCE, Assistance, AssistanceStatus, MaintenanceItem
from schemas.canonical.notification import Notification
from schemas.canonical.people import Address, Person
from schemas.canonical.real_estate import Enterprise, Unit
from schemas.canonical.sales import Sale, SaleBuyer
from schemas.canonical.signing import (
    Contract,
    Envelope,
    EnvelopeStatus,
    Evidence,
    IdentityCheck,
    SignaturePosition,
    Signer,
    SignerStatus,
    SigningEvent,
    SigningEventKind,
)

#: entity name -> model; the JSON Schema of each is committed as schemas/json/canonical/<name>.schema.json
CANONICAL = {
    "person": Person,
    "enterprise": Enterprise,
    "unit": Unit,
    "sale": Sale,
    "contract": Contract,
    "envelope": Envelope,
    "signer": Signer,
    "signing_event": SigningEvent,
    "evidence": Evidence,
    "assistance": Assistance,
    "notification": Notification,
}

__all__ = [
    "CANONICAL",
    "TERMINAL_ASSISTANCE",
    "Address",
    "Assistance",
    "AssistanceStatus",
    "Contract",
    "Enterprise",
    "Envelope",
    "EnvelopeStatus",
    "Evidence",
    "IdentityCheck",
    "MaintenanceItem",
    "Notification",
    "Person",
    "Sale",
    "SaleBuyer",
    "SignaturePosition",
    "Signer",
    "SignerStatus",
    "SigningEvent",
    "SigningEventKind",
    "Unit",
]

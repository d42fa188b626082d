"""Technical-assistance (warranty repair) requests, opened in the CRM, handled in Sienge."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.base import CanonicalModel
from schemas.documents import TaxId


class AssistanceStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    finished = "finished"
    cancelled = "cancelled"
    deleted = "deleted"


#: states a request never leaves; a late "in progress" after these changes nothing
TERMINAL_ASSISTANCE = frozenset(
    {AssistanceStatus.finished, AssistanceStatus.cancelled, AssistanceStatus.deleted}
)


class MaintenanceItem(CanonicalModel):
    source_id: str
    description: str = Field(min_length=1)
    minimum_completion_days: int | None = Field(
        None, ge=1, description="Sienge rejects an item without it; Ponte checks before sending"
    )


class Attachment(CanonicalModel):
    name: str
    content_type: str = "application/octet-stream"
    url: str | None = None
    sha256: str | None = None
    content_base64: str | None = Field(
        None, description="The file itself, when a pipeline downloaded it for a system that needs the bytes"
    )


class Assistance(CanonicalModel):
    crm_id: str
    sienge_id: str | None = None
    protocol: str | None = None
    enterprise_source_id: str | None = None
    unit_source_id: str | None = None
    customer_document: TaxId | None = None
    customer_source_id: str | None = Field(None, description="Sienge customer id (Sienge needs it)")
    description: str = ""
    opened_at: datetime | None = None
    status: AssistanceStatus = AssistanceStatus.open
    items: list[MaintenanceItem] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)

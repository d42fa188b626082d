"""Notifications Ponte sends itself (SMTP e-mail, WhatsApp template) and their delivery status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import CanonicalModel
from schemas.documents import PhoneE164
from schemas.emails import EmailAddress


class NotificationStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"


class Notification(CanonicalModel):
    tenant: str
    channel: Literal["email", "whatsapp"]
    purpose: Literal["signing_invitation", "package_warning", "email_verification", "other"]
    to_email: EmailAddress | None = None
    to_phone: PhoneE164 | None = None
    subject: str | None = None
    template: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    provider_message_id: str | None = None
    status: NotificationStatus = NotificationStatus.queued
    status_at: datetime | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _address(self) -> Notification:
        if self.channel == "email" and not self.to_email:
            raise ValueError("an e-mail notification needs to_email")
        if self.channel == "whatsapp" and not self.to_phone:
            raise ValueError("a WhatsApp notification needs to_phone")
        return self

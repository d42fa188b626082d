"""SMTP stand-in: a real SMTP server (aiosmtpd) that keeps every message for inspection.

The e-mail channel is exercised over the wire (EHLO, optional AUTH, MAIL/RCPT/DATA), so a connector
that works here works against a real relay; what it sent is then readable from tests
(``Sandbox.smtp.messages``) or over HTTP (``GET /_sandbox/smtp/messages`` on the sink).
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from connectors.sandbox.config import SandboxConfig

# aiosmtpd logs every SMTP line (whole addresses) at DEBUG/INFO under "mail.log": a stand-in's chatter,
# useless to an operator and personal data in clear; its warnings and errors still show
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class StoredMessage:
    """One received message with its SMTP envelope."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    authenticated_as: str | None
    at: float = field(default_factory=time.time)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def subject(self) -> str:
        return str(self.message.get("subject", ""))

    def text(self) -> str:
        """The plain-text body (or the HTML one when there is no text part)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    def to_dict(self) -> dict[str, Any]:
        msg = self.message
        return {"mail_from": self.mail_from, "rcpt_tos": self.rcpt_tos, "subject": self.subject,
                "from": str(msg.get("from", "")), "to": str(msg.get("to", "")), "text": self.text(),
                "attachments": [p.get_filename() for p in msg.iter_attachments()],
                "authenticated_as": self.authenticated_as, "at": self.at}


class SmtpSandbox:
    """The aiosmtpd handler plus the inbox it fills."""

    name = "smtp"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.host = "127.0.0.1"
        self.port = 0
        self._cond = threading.Condition()
        self.messages: list[StoredMessage] = []

    # aiosmtpd handler hook
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        stored = StoredMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw if isinstance(raw, bytes) else raw.encode(),
            authenticated_as=login.decode() if isinstance(login, bytes) else login,
        )
        with self._cond:
            self.messages.append(stored)
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.config.smtp_user
              and auth_data.password.decode() == self.config.smtp_password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def factory(self) -> SMTP:
        return SMTP(self, hostname="sandbox.ponte.local", authenticator=self.authenticate,
                    auth_require_tls=False, auth_required=False)

    def inbox(self, to: str | None = None) -> list[StoredMessage]:
        with self._cond:
            return [m for m in self.messages if to is None or to in m.rcpt_tos]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def wait_for(self, to: str | None = None, count: int = 1, timeout: float = 10.0) -> list[StoredMessage]:
        """Block until ``count`` messages to ``to`` (any recipient if None) arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [m for m in self.messages if to is None or to in m.rcpt_tos]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"smtp: {len(hits)}/{count} messages after {timeout}s")
                self._cond.wait(left)

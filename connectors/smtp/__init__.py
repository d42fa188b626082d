"""SMTP: a connector of its own kind. Sends multipart e-mail (text + HTML) with attachments.

Same contract as the HTTP runtime where it applies: values and secrets from the tenant, the spec's rate
budget and retry policy, errors on the one tree (a refused login is an AuthError, a refused recipient a
DataError, a dropped connection a TransientError), and ``api_calls`` counting messages sent.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from connectors.runtime.ratelimit import InMemoryRateBudget, Limiter, RateBudget, buckets_for
from connectors.runtime.retry import retrying
from connectors.spec.models import SmtpConnectorSpec
from connectors.spec.templates import render
from ponte import AuthError, ConfigurationError, DataError, TransientError, get_logger, register_secret

log = get_logger("connectors.smtp")
_PROCESS_BUDGET = InMemoryRateBudget()


@dataclass
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass
class Email:
    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[Attachment] = field(default_factory=list)
    cc: Sequence[str] = field(default_factory=list)
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class SmtpTransientError(TransientError):
    """The server is unreachable, dropped us, or answered 4xx (try later)."""


def _log_retry(state: Any) -> None:
    """A send about to be tried again, in the log (the reason names the server, never a recipient)."""
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0
    log.warning("smtp: attempt %d failed (%s); trying again in %.1f s", state.attempt_number, error, wait)


def _goodbye(client: smtplib.SMTP) -> None:
    """QUIT, whatever it answers: once the server said 250 after DATA the message is delivered, and a
    goodbye that fails (421, a reset) must not make the caller send it again."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


class SmtpConnector:
    def __init__(
        self,
        spec: SmtpConnectorSpec,
        *,
        values: Mapping[str, str],
        secrets: Mapping[str, str],
        tenant: str = "default",
        budget: RateBudget | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        from connectors.runtime.client import resolve_values

        self.spec = spec
        self.name = spec.name
        self.tenant = tenant
        self.values = resolve_values(spec, values)
        self.secrets = dict(secrets)
        for secret in self.secrets.values():
            register_secret(secret)
        ctx = {"values": self.values, "secrets": self.secrets}
        try:
            self.host = str(render(spec.host, ctx))
            self.port = int(render(spec.port, ctx))
            self.security = str(render(spec.security, ctx)).lower()
            self.from_address = str(render(spec.from_address, ctx))
            username = render(spec.username, ctx) if spec.username else None
            password = render(spec.password, ctx) if spec.password else None
        except (DataError, ValueError) as exc:
            raise ConfigurationError(f"smtp connector: {exc}", tenant=tenant,
                                     hint="set host, port, security and from in the tenant's values") from None
        if self.security not in ("starttls", "tls", "none"):
            raise ConfigurationError(f"smtp security {self.security!r} is not starttls, tls or none", tenant=tenant)
        self.username = None if username in (None, "") else str(username)
        self.password = None if password in (None, "") else str(password)
        self.api_calls = 0
        self._sleep = sleep
        self.limiter = Limiter(budget or _PROCESS_BUDGET, buckets_for(spec.rate_limit, f"{tenant}:{spec.name}"),
                               sleep=sleep)

    def build(self, email: Email) -> EmailMessage:
        if not email.to:
            raise DataError("e-mail has no recipient", field="to", hint="the person needs an e-mail address")
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = ", ".join(email.to)
        if email.cc:
            message["Cc"] = ", ".join(email.cc)
        if email.reply_to:
            message["Reply-To"] = email.reply_to
        message["Subject"] = email.subject
        # RFC 5322 §3.6: Date is required, Message-ID expected; smtplib adds neither. The id's right side
        # is the sender's domain (make_msgid would otherwise ask the machine's DNS for its own name).
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self._sender_domain())
        for key, value in email.headers.items():
            if key in message:  # a caller's own Date or Message-ID replaces the default, never doubles it
                message.replace_header(key, value)
            else:
                message[key] = value
        message.set_content(email.text)
        if email.html:
            message.add_alternative(email.html, subtype="html")
        for item in email.attachments:
            maintype, _, subtype = item.content_type.partition("/")
            message.add_attachment(item.content, maintype=maintype, subtype=subtype or "octet-stream",
                                   filename=item.filename)
        return message

    def _sender_domain(self) -> str:
        address = parseaddr(self.from_address)[1]
        domain = address.rpartition("@")[2].strip().strip(">")
        return domain or "ponte.invalid"

    def _connect(self) -> smtplib.SMTP:
        timeout = self.spec.timeout_seconds
        if self.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=timeout)
        if self.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if self.username and self.password:
            client.login(self.username, self.password)
        return client

    def _send_once(self, message: EmailMessage) -> None:
        self.limiter.acquire()
        self.api_calls += 1
        try:
            client = self._connect()
            try:
                client.send_message(message)
            finally:
                _goodbye(client)
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthError(f"SMTP login refused ({exc.smtp_code})", tenant=self.tenant, source=self.name,
                            hint="check the tenant's SMTP username and password") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DataError(f"SMTP server refused the recipients: {', '.join(exc.recipients)}",
                            tenant=self.tenant, source=self.name, field="to") from None
        except smtplib.SMTPResponseException as exc:
            kind = SmtpTransientError if 400 <= exc.smtp_code < 500 else DataError
            raise kind(f"SMTP server answered {exc.smtp_code}", tenant=self.tenant, source=self.name) from None
        except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            raise SmtpTransientError(f"SMTP {self.host}:{self.port} unreachable: {type(exc).__name__}",
                                     tenant=self.tenant, source=self.name) from None

    def send(self, email: Email) -> str:
        """Send one e-mail; returns its Message-ID. Transient failures are retried per the spec."""
        message = self.build(email)
        for attempt in retrying(self.spec.retry, should_retry=lambda e: isinstance(e, SmtpTransientError),
                                sleep=self._sleep, before_sleep=_log_retry):
            with attempt:
                self._send_once(message)
        log.info("smtp: sent %s to %d recipient(s)", message["Message-ID"], len(email.to))
        return str(message["Message-ID"])

    def check(self) -> list[Any]:
        from connectors.runtime.client import CheckResult

        try:
            with self._connect() as client:
                client.noop()
            return [CheckResult("connection", True, f"ok ({self.security} {self.host}:{self.port})")]
        except smtplib.SMTPAuthenticationError:
            return [CheckResult("connection", False, "auth: login refused")]
        except (smtplib.SMTPException, OSError) as exc:
            return [CheckResult("connection", False, f"transient: {type(exc).__name__}")]

    def close(self) -> None:
        pass

    def __enter__(self) -> SmtpConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

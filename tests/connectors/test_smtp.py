"""SMTP connector against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors import bind_spec
from connectors.smtp import Attachment, Email, SmtpConnector
from ponte.errors import AuthError, DataError, TransientError
from tests.connectors.conftest import Sleeps


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"ponte", b"smtp-secret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd needs a concrete port to probe its own readiness
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def connector(controller: Controller, password: str = "smtp-secret") -> SmtpConnector:
    conn = bind_spec("smtp", {"host": "127.0.0.1", "port": str(controller.port),
                                   "security": "none", "from": "Assinaturas <assinaturas@demo.example.com>"},
                          {"username": "ponte", "password": password}, sleep=Sleeps())
    assert isinstance(conn, SmtpConnector)
    return conn


def test_sends_multipart_with_attachment(smtp_server: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtp_server
    conn = connector(controller)
    message_id = conn.send(Email(to=["ana@example.com"], subject="Contrato para assinatura",
                                 text="Olá Ana, assine em https://sign/1", html="<p>Olá Ana</p>",
                                 attachments=[Attachment("contrato.pdf", b"%PDF-1.7 test", "application/pdf")]))
    (rcpts, raw), = inbox.messages
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert rcpts == ["ana@example.com"] and parsed["Message-ID"] == message_id
    assert parsed["From"] == "Assinaturas <assinaturas@demo.example.com>"
    assert parsed.get_body(("plain",)).get_content().startswith("Olá Ana")
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Olá Ana</p>"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "contrato.pdf" and attachment.get_content() == b"%PDF-1.7 test"
    assert conn.api_calls == 1


def test_wrong_password_is_an_auth_error_and_not_retried(smtp_server: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtp_server
    conn = connector(controller, password="wrong-password")
    with pytest.raises(AuthError):
        conn.send(Email(to=["ana@example.com"], subject="x", text="y"))
    assert conn.api_calls == 1 and inbox.messages == []


def test_no_recipient_is_a_data_error() -> None:
    conn = bind_spec("smtp", {"host": "127.0.0.1", "from": "a@example.com"}, {})
    with pytest.raises(DataError):
        conn.send(Email(to=[], subject="x", text="y"))  # type: ignore[union-attr]


def test_unreachable_server_is_transient_and_retried() -> None:
    conn = bind_spec("smtp", {"host": "127.0.0.1", "port": "9", "security": "none", "from": "a@example.com"}, {},
                          sleep=Sleeps())
    with pytest.raises(TransientError):
        conn.send(Email(to=["ana@example.com"], subject="x", text="y"))  # type: ignore[union-attr]
    assert conn.api_calls == 5  # the spec's default max_attempts


def test_a_failed_goodbye_after_the_server_accepted_the_message_sends_it_once(
        smtp_server: tuple[Controller, Inbox], monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's 250 after DATA is the delivery: a QUIT answered with an error afterwards (421, the
    server shutting down) must not send the e-mail again. Nothing doubled: one invitation, not two."""
    import smtplib

    controller, inbox = smtp_server
    real_docmd = smtplib.SMTP.docmd

    def closing_on_quit(self: smtplib.SMTP, cmd: str, args: str = "") -> tuple[int, bytes]:
        if cmd.upper() == "QUIT":
            real_docmd(self, cmd, args)
            return 421, b"Service not available, closing transmission channel"
        return real_docmd(self, cmd, args)

    monkeypatch.setattr(smtplib.SMTP, "docmd", closing_on_quit)
    conn = connector(controller)
    message_id = conn.send(Email(to=["ana@example.com"], subject="Contrato", text="assine"))
    (rcpts, raw), = inbox.messages
    assert rcpts == ["ana@example.com"] and message_id in raw.decode()
    assert conn.api_calls == 1

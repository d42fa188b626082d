"""Every e-mail Ponte sends carries the headers RFC 5322 asks for: ``Date`` (required, §3.6.1) and a
``Message-ID`` (§3.6.4: ``<id-left@id-right>``), checked on what the sandbox's real SMTP server
received over the wire."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from connectors import bind_spec
from connectors.sandbox import Sandbox, start_sandbox
from connectors.smtp import Email, SmtpConnector
from tests.connectors.conftest import Sleeps

MESSAGE_ID = re.compile(r"^<[^<>@\s]+@([^<>@\s]+)>$")


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start_sandbox(customers=1, seed=3, rate_limits=False) as sandbox:
        yield sandbox


def _connector(sb: Sandbox, sender: str) -> SmtpConnector:
    credentials = sb.credentials()["smtp"]
    conn = bind_spec("smtp", {"host": sb.smtp.host, "port": str(sb.smtp.port), "security": "none",
                                   "from": sender},
                          {"username": credentials["user"], "password": credentials["password"]}, sleep=Sleeps())
    assert isinstance(conn, SmtpConnector)
    return conn


@pytest.mark.parametrize("sender", ["Assinaturas <assinaturas@demo.example.com>", "contratos@demo.example.com"])
def test_date_and_message_id_are_on_the_wire_and_well_formed(sb: Sandbox, sender: str) -> None:
    to = f"headers-{len(sender)}@example.com"
    before = datetime.now(UTC).replace(microsecond=0)
    message_id = _connector(sb, sender).send(Email(to=[to], subject="Contrato para assinar", text="Olá."))
    after = datetime.now(UTC)
    received = sb.smtp.wait_for(to=to)[0].message

    assert len(received.get_all("Date") or []) == 1, "RFC 5322 §3.6: exactly one Date header"
    sent_at = parsedate_to_datetime(str(received["Date"]))
    assert sent_at.tzinfo is not None, "the Date header names its zone"
    assert before - timedelta(seconds=1) <= sent_at <= after + timedelta(seconds=1)

    assert len(received.get_all("Message-ID") or []) == 1
    found = MESSAGE_ID.match(str(received["Message-ID"]).strip())
    assert found, f"Message-ID {received['Message-ID']!r} is not <left@domain>"
    assert found.group(1) == "demo.example.com", "the id's right side is the sender's domain"
    assert str(received["Message-ID"]).strip() == message_id


def test_headers_a_caller_sets_replace_the_defaults_instead_of_doubling_them(sb: Sandbox) -> None:
    to = "headers-override@example.com"
    own_id = "<convite-801@demo.example.com>"
    _connector(sb, "Assinaturas <assinaturas@demo.example.com>").send(Email(
        to=[to], subject="Convite", text="Olá.", headers={"Message-ID": own_id, "X-Ponte-Envelope": "k1"}))
    received = sb.smtp.wait_for(to=to)[0].message
    assert received.get_all("Message-ID") == [own_id]
    assert len(received.get_all("Date") or []) == 1
    assert received["X-Ponte-Envelope"] == "k1"

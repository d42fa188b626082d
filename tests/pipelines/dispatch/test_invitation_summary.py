"""The sale's summary (amount, monthly instalment, duration) in signing invitations.

- Ponte invites (``notifications.by: ponte``): the e-mail the SMTP stand-in receives carries the
  tenant's ``summary_text`` filled in; a WhatsApp invitation goes through the tenant's
  ``whatsapp_summary_template`` with the three values as body text parameters (after name and link),
  held to the WhatsApp Cloud API spec by the session's spec check. No summary (or part of it missing):
  no summary line at all, and the plain template.
- The provider invites: DocuSign's ``emailBlurb`` and Clicksign's notification ``message`` carry it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from connectors.sandbox.base import EXCHANGE_OBSERVERS, Exchange
from connectors.sandbox.config import Template
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.notify import notify_next_signers
from pipelines.store.db import Store
from pipelines.store.models import Envelope, EnvelopeSigner, utcnow
from tests.pipelines.dispatch.support import cpf, seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant
from tests.support.vendor_specs import check_request

SUMMARY = {"valor_total": "R$ 450.000,00", "parcela": "R$ 3.750,00", "prazo_meses": "120"}
NO_ID_EVIDENCE = {"selfie": "not_required", "document_photo": "not_required"}
GATEWAY = "https://assinar.demo.example.com"


@pytest.fixture(autouse=True)
def signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", "test-only signing-link secret, 0123456789abcdef")


@pytest.fixture
def exchanges() -> Iterator[list[Exchange]]:
    seen: list[Exchange] = []
    EXCHANGE_OBSERVERS.append(seen.append)
    try:
        yield seen
    finally:
        EXCHANGE_OBSERVERS.remove(seen.append)


@pytest.fixture
def summary_template(sb) -> Iterator[str]:
    """The tenant's summary template, approved at the WhatsApp stand-in: five body text parameters."""
    name = "ponte_convite_assinatura_resumo"
    templates = sb.whatsapp.config.whatsapp_templates
    templates[name] = Template(languages=["pt_BR"], body_params=5)
    try:
        yield name
    finally:
        templates.pop(name, None)


def _ponte_tenant(sb, **notifications):
    return sandbox_tenant(sb, unthrottled=True, options={
        "notifications": {"by": "ponte", **notifications}, "verification_base_url": GATEWAY,
        "evidence": NO_ID_EVIDENCE})


def _sent_envelope(store: Store, tenant, summary: dict[str, str], channel: str = "email") -> tuple[int, str, str]:
    """A DocuSign envelope as dispatch records it (one embedded signer, order 1): e-mail and phone."""
    n = uuid.uuid4().int % 10**6
    email, phone = f"comprador{n}.{uuid.uuid4().hex[:8]}@example.com", f"+554899{n:07d}"
    with store.session() as session:
        row = Envelope(
            tenant=tenant.id, contract_id=str(90000 + n), document_name=f"Contrato {n}.pdf", document_hash="0" * 64,
            idempotency_key=f"{tenant.id}:contract:{n}:{uuid.uuid4().hex}", provider="docusign",
            provider_envelope_id=str(uuid.uuid4()), status="sent", sent_at=utcnow(),
            expires_at=utcnow() + timedelta(days=30), details={"summary": summary},
        )
        row.signers.append(EnvelopeSigner(
            role="client", routing_order=1, name=f"Maria Teste{n} da Silva", email=email, document=cpf(n),
            phone=phone, channel=channel, provider_recipient_id="1", status="sent"))
        session.add(row)
        session.flush()
        return row.id, email, phone


# ------------------------------------------------------------------------------------ Ponte invites


def test_email_invitation_carries_the_three_values(sb, store: Store) -> None:
    tenant = _ponte_tenant(sb)
    envelope_id, email, _ = _sent_envelope(store, tenant, SUMMARY)
    assert [i.channel for i in notify_next_signers(store, tenant, envelope_id)] == ["email"]
    (message,) = sb.smtp.wait_for(to=email)
    text = message.text()
    assert "Valor: R$ 450.000,00 · 120 parcelas de R$ 3.750,00" in text
    assert f"Assine em: {GATEWAY}/sign/" in text


def test_email_summary_follows_the_tenants_text(sb, store: Store) -> None:
    tenant = _ponte_tenant(sb, summary_text="Total {valor_total}; parcela {parcela} por {prazo_meses} meses")
    envelope_id, email, _ = _sent_envelope(store, tenant, SUMMARY)
    notify_next_signers(store, tenant, envelope_id)
    (message,) = sb.smtp.wait_for(to=email)
    assert "Total R$ 450.000,00; parcela R$ 3.750,00 por 120 meses" in message.text()


@pytest.mark.parametrize(
    ("summary", "line"),
    [({}, None), ({"valor_total": "R$ 450.000,00", "parcela": "", "prazo_meses": "120"}, "Valor: R$ 450.000,00")],
)
def test_without_the_whole_summary_no_half_filled_line(
    sb, store: Store, summary: dict[str, str], line: str | None
) -> None:
    """No summary: no line; the amount alone: the fallback line with it (never "parcelas de " blank)."""
    tenant = _ponte_tenant(sb)
    envelope_id, email, _ = _sent_envelope(store, tenant, summary)
    notify_next_signers(store, tenant, envelope_id)
    (message,) = sb.smtp.wait_for(to=email)
    text = message.text()
    assert "parcelas" not in text
    assert (line in text) if line else ("Valor" not in text)
    assert f"Assine em: {GATEWAY}/sign/" in text


def test_whatsapp_invitation_parameters_carry_the_three_values(sb, store: Store, summary_template: str) -> None:
    tenant = _ponte_tenant(sb, whatsapp_summary_template=summary_template)
    envelope_id, _, phone = _sent_envelope(store, tenant, SUMMARY, channel="whatsapp")
    assert [i.channel for i in notify_next_signers(store, tenant, envelope_id)] == ["whatsapp"]
    (message,) = [m for m in sb.whatsapp.messages() if m["to"].endswith(phone.lstrip("+"))]
    assert message["template"] == summary_template
    name, link, *values = message["parameters"]
    assert name.startswith("Maria Teste")
    assert link.startswith(f"{GATEWAY}/sign/")
    assert values == ["R$ 450.000,00", "R$ 3.750,00", "120"]


def test_whatsapp_without_the_summary_uses_the_plain_template(sb, store: Store, summary_template: str) -> None:
    tenant = _ponte_tenant(sb, whatsapp_summary_template=summary_template)
    envelope_id, _, phone = _sent_envelope(store, tenant, {"valor_total": "R$ 450.000,00"}, channel="whatsapp")
    notify_next_signers(store, tenant, envelope_id)
    (message,) = [m for m in sb.whatsapp.messages() if m["to"].endswith(phone.lstrip("+"))]
    assert message["template"] == "ponte_convite_assinatura"
    assert len(message["parameters"]) == 2  # name and link: the plain template's own


# -------------------------------------------------------------------------------- the provider invites


def _created(seen: list[Exchange], system: str, suffix: str) -> Exchange:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [e for e in seen if e.system == system and e.method == "POST" and e.path.endswith(suffix)]
        if found:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no POST …{suffix} reached {system}")


def test_docusign_email_blurb_and_clicksign_message_carry_the_summary(sb, store: Store, exchanges) -> None:
    # the seeded sale has a value and no instalments: a tenant text that uses the value only
    options = {"notifications": {"by": "provider", "summary_text": "Valor do contrato: {valor_total}"},
               "signer_chain": [{"role": "client", "order": 1}], "evidence": NO_ID_EVIDENCE}
    docusign = sandbox_tenant(sb, unthrottled=True, options=options)
    sale = seed_sale(sb, docusign, roles=("titular",))
    verify_manager(store, docusign)
    outcome = run_dispatch(store, docusign, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    created = _created(exchanges, "docusign", "/envelopes")
    body = json.loads(created.request_body)
    assert body["emailBlurb"] == "Valor do contrato: R$ 612.345,67"
    assert check_request("docusign", "POST", created.path, body) == []

    clicksign = sandbox_tenant(sb, unthrottled=True, options={**options, "signing_provider": "clicksign"})
    sale = seed_sale(sb, clicksign, roles=("titular",))
    outcome = run_dispatch(store, clicksign, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    notice = _created(exchanges, "clicksign", "/notifications")
    body = json.loads(notice.request_body)
    assert body["data"]["attributes"]["message"] == "Valor do contrato: R$ 612.345,67"
    assert check_request("clicksign", "POST", notice.path, body) == []

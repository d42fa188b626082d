"""A CRM contract becomes exactly one envelope at the provider, with the right chain and positions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.notify import notify_next_signers
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import AuditEntry, Envelope, EnvelopeSigner, PackageLedgerEntry
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant

A4_W, A4_H = 595.28, 841.89


def _mark_signed(store: Store, envelope_id: int, order: int) -> None:
    """What back-sync does when the provider reports a signature."""
    with store.session() as session:
        for row in session.scalars(select(EnvelopeSigner).where(EnvelopeSigner.envelope_id == envelope_id)):
            if row.routing_order == order:
                row.status = "signed"


def test_docusign_envelope_has_chain_positions_and_is_sent_once(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True)
    sale = seed_sale(sb, tenant, pdf_pages=3)
    verify_manager(store, tenant)

    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    again = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref], reservations=[str(sale.reservation_id)]))

    outcome = report.outcomes[0]
    assert outcome.result == "sent"
    assert [o.result for o in again.outcomes] == ["already_sent"]
    at_provider = [e for e in sb.state.docusign.envelopes.values()
                   if any(f["value"].endswith(outcome.document_sha256 or "") for f in
                          e["customFields"]["textCustomFields"] if f["name"] == "ponte_key")]
    assert len(at_provider) == 1
    signers = at_provider[0]["recipients"]["signers"]
    assert [(s["roleName"], s["routingOrder"]) for s in signers] == [("client", "1"), ("spouse", "2"), ("witness", "3")]
    assert [s["status"] for s in signers] == ["sent", "created", "created"]  # chained: only the client now
    tabs = [s["tabs"]["signHereTabs"][0] for s in signers]
    assert {t["pageNumber"] for t in tabs} == {"3"}  # tenant: last page
    xs = [int(t["xPosition"]) for t in tabs]
    assert xs == sorted(xs, reverse=True)  # right to left in routing order
    assert all(int(t["xPosition"]) >= 0 and int(t["xPosition"]) + 160 <= A4_W for t in tabs)
    assert all(int(t["yPosition"]) > A4_H / 2 and int(t["yPosition"]) + 48 <= A4_H for t in tabs)

    with store.session() as session:
        row = session.scalars(select(Envelope)).one()
        assert (row.status, row.provider, row.provider_envelope_id) == ("sent", "docusign", at_provider[0]["envelopeId"])
        assert [(s.role, s.status, s.provider_recipient_id) for s in row.signers] == [
            ("client", "sent", "1"), ("spouse", "waiting", "2"), ("witness", "waiting", "3")]
        assert row.expires_at is not None and (row.expires_at - row.sent_at).days == 30
        assert session.scalar(select(func.count()).select_from(PackageLedgerEntry)) == 1
        sent = session.scalars(select(AuditEntry).where(AuditEntry.action == "envelope_sent")).one()
        assert sent.details["provider_envelope_id"] == row.provider_envelope_id
        assert [s["channel"] for s in sent.details["signers"]] == ["email", "email", "email"]


#: evidence DocuSign checks only through an ID Verification workflow, left out where it is not the point
NO_ID_EVIDENCE = {"selfie": "not_required", "document_photo": "not_required"}


def test_ponte_invitations_in_chain_order(sb, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ponte invites each signer itself, in chain order, by e-mail and WhatsApp, with a link that exists:
    DocuSign's signers are embedded and the link is the gateway's /sign/<token> (test_sign_endpoint.py
    follows it). Clicksign has no such link, so it is refused (test_signing_links.py)."""
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", "test-only signing-link secret, 0123456789abcdef")
    chain = [{"role": "client", "order": 1}, {"role": "spouse", "order": 2, "required": False},
             {"role": "witness", "order": 3, "required": False, "channel": "whatsapp"}]
    gateway = "https://assinar.demo.example.com"
    tenant = sandbox_tenant(sb, unthrottled=True, options={"notifications": {"by": "ponte"}, "signer_chain": chain,
                                                           "evidence": NO_ID_EVIDENCE,
                                                           "verification_base_url": gateway})
    sale = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    outcome = report.outcomes[0]
    assert outcome.result == "sent", outcome.reason

    envelope = sb.state.docusign.envelopes[outcome.provider_envelope_id]
    signers = envelope["recipients"]["signers"]
    assert [s["routingOrder"] for s in signers] == ["1", "2", "3"]
    assert all(s.get("clientUserId") for s in signers)  # embedded: DocuSign sends them nothing

    client_mail = sale.people["titular"]["email"]
    spouse_mail = sale.people["Cônjuge"]["email"]
    sb.smtp.wait_for(to=client_mail)
    assert not sb.smtp.inbox(to=spouse_mail)  # the spouse waits for the client
    first = sb.smtp.inbox(to=client_mail)[0]
    assert f"Assine em: {gateway}/sign/" in first.text() and "Valor: R$ 612.345,67" in first.text()

    sb.sign(outcome.provider_envelope_id, "1")
    _mark_signed(store, outcome.envelope_id, 1)
    assert [i.role for i in notify_next_signers(store, tenant, outcome.envelope_id)] == ["spouse"]
    assert notify_next_signers(store, tenant, outcome.envelope_id) == []  # idempotent
    sb.smtp.wait_for(to=spouse_mail)
    phone = sale.people["testemunha"]["celular"]
    assert not [m for m in sb.whatsapp.messages() if m["to"].endswith(phone)]

    sb.sign(outcome.provider_envelope_id, "2")
    _mark_signed(store, outcome.envelope_id, 2)
    assert [i.channel for i in notify_next_signers(store, tenant, outcome.envelope_id)] == ["whatsapp"]
    sent = [m for m in sb.whatsapp.messages() if m["to"].endswith(phone)]
    assert len(sent) == 1 and sent[0]["template"] == "ponte_convite_assinatura"
    assert sent[0]["parameters"][0] == sale.people["testemunha"]["nome"]
    assert sent[0]["parameters"][1].startswith(f"{gateway}/sign/")


@pytest.mark.parametrize(
    ("role", "override", "channel", "expected"),
    [
        ("Cônjuge", {"email": None}, None, "signer spouse João Teste"),
        ("testemunha", {"celular": None}, "whatsapp", "is invited by WhatsApp but has no mobile phone"),
        ("titular", {"documento": None}, None, "has no CPF/CNPJ"),
    ],
)
def test_missing_contact_or_cpf_dead_letters_the_contract(sb, store: Store, role, override, channel, expected) -> None:
    chain = [{"role": "client", "order": 1}, {"role": "spouse", "order": 2, "required": False},
             {"role": "witness", "order": 3, "required": False, **({"channel": channel} if channel else {})}]
    tenant = sandbox_tenant(sb, unthrottled=True, options={"signer_chain": chain})
    sale = seed_sale(sb, tenant, overrides={role: override})
    good = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    before = len(sb.state.docusign.envelopes)
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref, good.ref]))
    assert [o.result for o in report.outcomes] == ["dead_lettered", "sent"]  # the batch goes on
    assert expected in (report.outcomes[0].reason or "")
    assert len(sb.state.docusign.envelopes) == before + 1
    letter = deadletters.list_open(store, tenant.id, "dispatch")[0]
    assert letter.record_key == f"contract:{sale.contract_id}" and letter.error_kind == "data"
    assert expected in letter.reason

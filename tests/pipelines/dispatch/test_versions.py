"""A changed document is a new version: the live envelope is voided first, the new one sent to the same
chain, both kept in the history; a signed version stands; a refused or expired one is sent again on a
changed document or on `--resend`. The rules themselves (pipelines/dispatch/versions.py) are
property-tested; the flow runs against the sandboxes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from pipelines.dispatch import versions
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.documents.render import text_to_pdf
from pipelines.store.db import Store
from pipelines.store.models import AuditEntry, DeadLetter, Envelope, PackageLedgerEntry
from ponte.errors import TransientError
from tests.pipelines.dispatch.support import Sale, seed_sale, verify_manager
from tests.pipelines.dispatch.test_yaml_provider import zapsign_tenant
from tests.support.tenants import sandbox_tenant

NO_ID_EVIDENCE = {"selfie": "not_required", "document_photo": "not_required"}

# ------------------------------------------------------------------------------------ the rules

SHAS = st.sampled_from(["a" * 64, "b" * 64, "c" * 64])
STATUSES = st.sampled_from(["sent", "delivered", "completed", "declined", "voided", "expired"])
BASE = "t:contract:1:"


@st.composite
def histories(draw: Any) -> list[versions.Sent]:
    """A contract's recorded envelopes as the rules can leave them: at most one live, and the last one."""
    out: list[versions.Sent] = []
    for sha in draw(st.lists(SHAS, max_size=5)):
        status = draw(st.sampled_from(["declined", "voided", "expired"]))
        out.append(versions.Sent(versions.next_key(out, BASE + sha), sha, status, len(out) + 1))
    if out and draw(st.booleans()):
        last = out[-1]
        out[-1] = versions.Sent(last.key, last.sha256, draw(STATUSES), last.id)
    return out


@given(histories(), SHAS, st.booleans())
def test_rules_keep_one_live_envelope_and_never_reuse_a_key(history: list[versions.Sent], sha: str,
                                                             resend: bool) -> None:
    decision = versions.decide(history, sha, BASE + sha, resend=resend)
    live = [s for s in history if s.status in versions.LIVE]
    signed = [s for s in history if s.status in versions.SIGNED]
    if decision.action in ("send", "replace"):
        assert decision.key is not None and decision.key not in {s.key for s in history}
        assert versions.base_of(decision.key) == BASE + sha
        assert not signed  # a signed version stands
        # a live envelope of another version is voided first; one of this version is never sent twice
        assert (decision.action == "replace") == bool(live)
        if live:
            assert decision.current == live[-1] and live[-1].sha256 != sha
    if decision.action == "signed_stands":
        assert signed and signed[-1].sha256 != sha
    if decision.action == "already_sent":
        assert decision.current is not None and decision.current.sha256 == sha
    if live and live[-1].sha256 == sha:
        assert decision.action == "already_sent"
    if not history:
        assert (decision.action, decision.key) == ("send", BASE + sha)
    dead_same = history and history[-1].status in versions.DEAD and history[-1].sha256 == sha
    if dead_same:  # the same document after a refusal or expiry: only on an operator's --resend
        assert decision.action == ("send" if resend else "already_sent")


@given(histories(), SHAS)
def test_rules_resume_an_unrecorded_create_of_the_same_document(history: list[versions.Sent], sha: str) -> None:
    first = versions.decide(history, sha, BASE + sha, resend=True)
    if first.action not in ("send", "replace"):
        return
    assert first.key is not None
    # the create was sent, then the process died before recording it: the next run, even without
    # --resend, resumes it under the same key (the outbox looks it up before sending anything)
    again = versions.decide(history, sha, BASE + sha, unrecorded=[first.key])
    assert (again.action, again.key) == (first.action, first.key)
    # another version's unrecorded create may be live at the provider: a person checks
    other = next(s for s in ("a" * 64, "b" * 64, "c" * 64) if s != sha)
    assert versions.decide(history, other, BASE + other, unrecorded=[first.key]).action in (
        "unfinished", "already_sent", "signed_stands")


@given(st.lists(st.sampled_from(["declined", "voided", "expired"]), min_size=1, max_size=6))
def test_resend_keys_count_up(statuses: list[str]) -> None:
    history: list[versions.Sent] = []
    for status in statuses:
        history.append(versions.Sent(versions.next_key(history, BASE + "a" * 64), "a" * 64, status))
    keys = [s.key for s in history]
    assert keys == [BASE + "a" * 64] + [f"{BASE}{'a' * 64}:resend:{n}" for n in range(1, len(keys))]
    assert all(versions.index_in(BASE + "a" * 64, k) == n for n, k in enumerate(keys))
    assert versions.index_in(BASE + "a" * 64, BASE + "b" * 64) is None


def test_provider_state_and_reason() -> None:
    assert versions.provider_state(["sent", "signature", "completion"]) == "completed"
    assert versions.provider_state(["sent", "cancellation"]) == "voided"
    assert versions.provider_state(["refusal"]) == "declined"
    assert versions.provider_state(["sent", "view"]) == "live"
    assert versions.void_reason("0123456789" + "f" * 54) == "replaced by version 01234567"


# --------------------------------------------------------------------------------- the flow


def change_document(sb: Any, sale: Sale, text: str = "alterado") -> None:
    """A CRM user uploads a new file for the contract: its stored file changes (a new SHA-256)."""
    entry = next(c for c in sb.state.cvcrm.contratos[sale.reservation_id]
                 if c["idreservacontrato"] == sale.contract_id)
    token = entry["link"].rsplit("/", 1)[-1]
    pdf, _ = text_to_pdf(f"Contrato {sale.contract_id} ({text})", f"Cláusula 1: {text}.")
    sb.state.cvcrm.files[token] = pdf


def rows(store: Store, sale: Sale) -> list[Envelope]:
    with store.session() as session:
        found = list(session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))
                                     .order_by(Envelope.id)))
        session.expunge_all()
        return found


def docusign_of(sb: Any, sale: Sale) -> list[dict[str, Any]]:
    marker = f":contract:{sale.contract_id}:"
    return [e for e in sb.state.docusign.envelopes.values()
            if any(f["name"] == "ponte_key" and marker in f["value"] for f in e["customFields"]["textCustomFields"])]


def test_changed_document_voids_the_live_envelope_then_sends_the_new_version(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, tenant_id="versions", unthrottled=True, options={"evidence": NO_ID_EVIDENCE})
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1)
    first = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    change_document(sb, sale)
    plan = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref], plan=True)).outcomes[0]
    assert plan.result == "would_send" and f"would void envelope {first.provider_envelope_id}" in str(plan.reason)

    second = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert second.result == "sent" and second.replaced_envelope_id == first.provider_envelope_id
    assert second.document_sha256 != first.document_sha256
    at_provider = {e["envelopeId"]: e for e in docusign_of(sb, sale)}
    old = at_provider[str(first.provider_envelope_id)]
    assert (old["status"], old["voidedReason"]) == ("voided", f"replaced by version {second.document_sha256[:8]}")
    assert at_provider[str(second.provider_envelope_id)]["status"] == "sent"
    new_signers = at_provider[str(second.provider_envelope_id)]["recipients"]["signers"]
    assert [(s["roleName"], s["routingOrder"]) for s in new_signers] == [("client", "1"), ("spouse", "2")]

    history = rows(store, sale)  # both kept; one live
    assert [(r.status, r.document_hash) for r in history] == [("voided", first.document_sha256),
                                                              ("sent", second.document_sha256)]
    assert history[0].details["void"]["reason"] == f"replaced by version {second.document_sha256[:8]}"
    assert run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0].result == "already_sent"
    with store.session() as session:  # the voided envelope stays counted, as the provider counts it
        keys = set(session.scalars(select(PackageLedgerEntry.envelope_key)))
        assert {r.idempotency_key for r in history} <= keys
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "envelope_voided", AuditEntry.tenant == "versions")) == 1


def test_a_signed_version_stands(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, tenant_id="versions-signed", unthrottled=True, options={"evidence": NO_ID_EVIDENCE})
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular",), pdf_pages=1)
    first = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    sb.sign(str(first.provider_envelope_id), "client")  # completed at DocuSign; Ponte has not heard yet
    change_document(sb, sale)
    outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "dead_lettered" and "already completed" in str(outcome.reason)
    assert len(docusign_of(sb, sale)) == 1 and len(rows(store, sale)) == 1
    with store.session() as session:
        letter = session.scalars(select(DeadLetter).where(DeadLetter.tenant == "versions-signed")).one()
        assert (letter.field, letter.status) == (versions.SIGNED_FIELD, "open")


def test_a_void_that_fails_transiently_defers_and_sends_nothing(sb, store: Store,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.runtime.client import Connector

    tenant = sandbox_tenant(sb, tenant_id="versions-defer", unthrottled=True, options={"evidence": NO_ID_EVIDENCE})
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular",), pdf_pages=1)
    run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    change_document(sb, sale)
    real = Connector.call

    def flaky(self: Connector, action: str, *args: Any, **kwargs: Any) -> Any:
        if action == "void_envelope":
            raise TransientError("DocuSign is down")
        return real(self, action, *args, **kwargs)

    monkeypatch.setattr(Connector, "call", flaky)
    assert run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0].result == "deferred"
    assert [e["status"] for e in docusign_of(sb, sale)] == ["sent"] and len(rows(store, sale)) == 1
    monkeypatch.setattr(Connector, "call", real)
    assert run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0].result == "sent"
    assert sorted(e["status"] for e in docusign_of(sb, sale)) == ["sent", "voided"]


def test_refused_contract_is_sent_again_on_resend_or_a_changed_document(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, tenant_id="versions-refused", unthrottled=True, options={"evidence": NO_ID_EVIDENCE})
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular",), pdf_pages=1)
    first = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    sb.sign(str(first.provider_envelope_id), "client", "refuse")
    with store.session() as session:  # what back-sync records from the provider's refusal
        session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))).one().status = "declined"

    again = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert again.result == "already_sent" and "--resend" in str(again.reason)
    resent = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref], resend=True)).outcomes[0]
    assert resent.result == "sent" and resent.replaced_envelope_id is None  # nothing voided: already dead
    history = rows(store, sale)
    assert [r.status for r in history] == ["declined", "sent"]
    assert history[1].idempotency_key == history[0].idempotency_key + ":resend:1"
    assert [e["status"] for e in docusign_of(sb, sale)] == ["declined", "sent"]
    # a resend of a live one is refused; the live one stays
    live = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref], resend=True)).outcomes[0]
    assert live.result == "already_sent" and "still out for signature" in str(live.reason)

    sb.sign(str(resent.provider_envelope_id), "client", "expire")
    with store.session() as session:
        session.get(Envelope, history[1].id).status = "expired"
    change_document(sb, sale, "nova versão")
    changed = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert changed.result == "sent" and changed.replaced_envelope_id is None
    assert [r.status for r in rows(store, sale)] == ["declined", "expired", "sent"]


def test_clicksign_cancels_and_ponte_tells_who_signed(sb, store: Store) -> None:
    """Clicksign's cancel notice to signers is UNCONFIRMED, so Ponte e-mails who signed the old version."""
    chain = [{"role": "client", "order": 1}, {"role": "spouse", "order": 2, "required": False}]
    tenant = sandbox_tenant(sb, tenant_id="versions-cs", unthrottled=True, options={
        "signing_provider": "clicksign", "signer_chain": chain, "evidence": NO_ID_EVIDENCE})
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1)
    first = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    sb.sign(str(first.provider_envelope_id), sale.people["titular"]["nome"], provider="clicksign")
    with store.session() as session:  # back-sync's record of the signature
        env = session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))).one()
        next(s for s in env.signers if s.role == "client").status = "signed"
    change_document(sb, sale)
    second = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert second.result == "sent", second.reason
    old = sb.state.clicksign.envelopes[str(first.provider_envelope_id)]
    assert old["attributes"]["status"] == "canceled"
    assert sb.state.clicksign.envelopes[str(second.provider_envelope_id)]["attributes"]["status"] == "running"
    client = sale.people["titular"]["email"]
    notice = [m for m in sb.smtp.wait_for(to=client) if m.subject.startswith("Documento alterado")]
    assert len(notice) == 1 and second.document_sha256[:8] in notice[0].text()
    spouse = sale.people["Cônjuge"]["email"]
    assert not [m for m in sb.smtp.messages if spouse in m.rcpt_tos and m.subject.startswith("Documento alterado")]
    run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))  # told once, whatever the reruns
    assert len([m for m in sb.smtp.messages if client in m.rcpt_tos and m.subject.startswith("Documento alterado")]) == 1


def test_yaml_provider_voids_through_signing_void(sb, store: Store, tmp_path: Path) -> None:
    tenant = zapsign_tenant(sb, tmp_path, "versions-zs", evidence=NO_ID_EVIDENCE)
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular",), pdf_pages=1)
    first = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    change_document(sb, sale)
    second = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert second.result == "sent", second.reason
    assert sb.state.zapsign.docs[str(first.provider_envelope_id)]["status"] == "deleted"
    assert sb.state.zapsign.docs[str(second.provider_envelope_id)]["status"] == "pending"
    assert [r.status for r in rows(store, sale)] == ["voided", "sent"]
    assert re.fullmatch(r"versions-zs:contract:\d+:[0-9a-f]{64}", rows(store, sale)[1].idempotency_key)

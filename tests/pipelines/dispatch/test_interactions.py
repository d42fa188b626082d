"""Interaction type per signer (sign, approve, receive a copy), end to end at each provider.

- DocuSign (the eSignature swagger's EnvelopeRecipients): sign -> ``signers`` (the only kind with
  tabs), approve -> ``certifiedDeliveries``, receive_copy -> ``carbonCopies``; one routing order and one
  set of recipientIds across the three kinds.
- Clicksign (the Postman collection): sign -> a signer with the qualification ``{action: agree, role:
  sign}``, approve -> the same with role ``approve`` (UNCONFIRMED, connector value approve_role),
  receive_copy -> a signature watcher ``{email, kind: all_steps}`` ("Criar Observador da Assinatura"),
  not a signer.
- Back-sync ends each row as what the person did: signed, approved, copy_delivered. A copy recipient
  never holds the chain up, is never invited by Ponte and is not a pending signature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from connectors.sandbox.base import EXCHANGE_OBSERVERS, Exchange
from pipelines.backsync.apply import apply_events
from pipelines.backsync.flow import read_provider
from pipelines.backsync.machine import next_signer_status, signer_after_envelope
from pipelines.connections import open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.notify import notify_next_signers
from pipelines.store.db import Store
from pipelines.store.models import EnvelopeSigner
from schemas.canonical.signing import SigningEventKind as K
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant
from tests.support.vendor_specs import check_request

NO_ID_EVIDENCE = {"selfie": "not_required", "document_photo": "not_required"}
#: client signs, spouse approves, witness only receives a copy
CHAIN = [
    {"role": "client", "order": 1},
    {"role": "spouse", "order": 2, "interaction": "approve"},
    {"role": "witness", "order": 3, "interaction": "receive_copy"},
]


@pytest.fixture
def exchanges() -> Iterator[list[Exchange]]:
    seen: list[Exchange] = []
    EXCHANGE_OBSERVERS.append(seen.append)
    try:
        yield seen
    finally:
        EXCHANGE_OBSERVERS.remove(seen.append)


def _requests(seen: list[Exchange], system: str, method: str, suffix: str, count: int = 1) -> list[Exchange]:
    def found() -> list[Exchange]:
        return [e for e in seen if e.system == system and e.method == method and e.path.endswith(suffix)]

    deadline = time.monotonic() + 5  # a stand-in tells its observers just after its answer went out
    while len(found()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return found()


def _rows(store: Store, envelope_id: int) -> dict[str, EnvelopeSigner]:
    with store.session() as session:
        rows = session.scalars(select(EnvelopeSigner).where(EnvelopeSigner.envelope_id == envelope_id)).all()
        session.expunge_all()
    return {r.role: r for r in rows}


def _backsync(store: Store, tenant, provider: str, pid: str) -> None:
    with open_connector(tenant, provider, store=store) as conn:
        events = read_provider(conn, pid)
    apply_events(store, tenant.id, provider, pid, events, advance_waiting=True)


# ----------------------------------------------------------------------------- the state machine


def test_a_finished_signer_ends_as_what_it_was_asked_to_do() -> None:
    assert next_signer_status("sent", K.signature, "sign") == "signed"
    assert next_signer_status("delivered", K.approval, "approve") == "approved"
    # a provider that reports an approval or a copy as a plain completion: still what was asked
    assert next_signer_status("sent", K.signature, "approve") == "approved"
    assert next_signer_status("waiting", K.signature, "receive_copy") == "copy_delivered"
    assert next_signer_status("approved", K.signature, "approve") is None  # terminal
    assert signer_after_envelope("waiting", "completed", "receive_copy") == "copy_delivered"
    assert signer_after_envelope("sent", "completed", "approve") == "approved"
    assert signer_after_envelope("sent", "voided", "receive_copy") == "expired"


# ------------------------------------------------------------------------------------ DocuSign


def test_docusign_recipient_kinds_and_backsync(sb, store: Store, exchanges) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": CHAIN, "notifications": {"by": "provider"}, "evidence": NO_ID_EVIDENCE})
    sale = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    outcome = report.outcomes[0]
    assert outcome.result == "sent", outcome.reason

    (created,) = _requests(exchanges, "docusign", "POST", "/envelopes")
    body = json.loads(created.request_body)
    assert check_request("docusign", "POST", created.path, body) == []
    recipients = body["recipients"]
    (client,) = recipients["signers"]
    (spouse,) = recipients["certifiedDeliveries"]
    (witness,) = recipients["carbonCopies"]
    assert (client["roleName"], spouse["roleName"], witness["roleName"]) == ("client", "spouse", "witness")
    assert [r["routingOrder"] for r in (client, spouse, witness)] == ["1", "2", "3"]
    assert len({client["recipientId"], spouse["recipientId"], witness["recipientId"]}) == 3
    assert client["tabs"]["signHereTabs"]  # only signers carry tabs
    assert "tabs" not in spouse and "tabs" not in witness
    assert spouse["email"] == sale.people["Cônjuge"]["email"]

    pid = outcome.provider_envelope_id
    sb.sign(pid, "client")
    sb.sign(pid, "spouse")  # the certified delivery opens and acknowledges
    held = sb.state.docusign.envelopes[pid]
    assert held["status"] == "completed"
    assert held["recipients"]["carbonCopies"][0]["status"] == "completed"  # the copy went out

    _backsync(store, tenant, "docusign", pid)
    rows = _rows(store, outcome.envelope_id)
    assert {role: (r.interaction, r.status) for role, r in rows.items()} == {
        "client": ("sign", "signed"), "spouse": ("approve", "approved"), "witness": ("receive_copy", "copy_delivered")}
    assert rows["witness"].provider_recipient_id == witness["recipientId"]


def test_docusign_a_copy_recipient_never_holds_the_chain_up_nor_gets_a_ponte_invitation(
        sb, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_SIGNING_LINK_SECRET", "test-only signing-link secret, 0123456789abcdef")
    chain = [{"role": "client", "order": 1}, {"role": "witness", "order": 2, "interaction": "receive_copy"},
             {"role": "spouse", "order": 3}]
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": chain, "notifications": {"by": "ponte"}, "evidence": NO_ID_EVIDENCE,
        "verification_base_url": "https://assinar.demo.example.com"})
    sale = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    held = sb.state.docusign.envelopes[outcome.provider_envelope_id]["recipients"]
    assert "clientUserId" not in held["carbonCopies"][0]  # DocuSign e-mails the copy itself

    client_mail, spouse_mail = sale.people["titular"]["email"], sale.people["Cônjuge"]["email"]
    witness_mail = sale.people["testemunha"]["email"]
    sb.smtp.wait_for(to=client_mail)
    assert not sb.smtp.inbox(to=spouse_mail) and not sb.smtp.inbox(to=witness_mail)

    sb.sign(outcome.provider_envelope_id, "client")
    _backsync(store, tenant, "docusign", outcome.provider_envelope_id)
    invited = notify_next_signers(store, tenant, outcome.envelope_id)
    assert [i.role for i in invited] == ["spouse"]  # straight past the copy recipient
    sb.smtp.wait_for(to=spouse_mail)
    assert not sb.smtp.inbox(to=witness_mail)  # Ponte never invites a copy recipient
    rows = _rows(store, outcome.envelope_id)
    assert rows["witness"].notified_at is None


# ------------------------------------------------------------------------------------ Clicksign


def test_clicksign_approver_role_and_copy_watcher_and_backsync(sb, store: Store, exchanges) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={
        "signer_chain": CHAIN, "signing_provider": "clicksign", "notifications": {"by": "provider"},
        "evidence": NO_ID_EVIDENCE})
    sale = seed_sale(sb, tenant)
    verify_manager(store, tenant)
    outcome = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    pid = outcome.provider_envelope_id

    signers = _requests(exchanges, "clicksign", "POST", "/signers", 2)
    assert sorted(json.loads(e.request_body)["data"]["attributes"]["email"] for e in signers) == sorted(
        [sale.people["titular"]["email"], sale.people["Cônjuge"]["email"]])  # the copy recipient is no signer
    (watcher,) = _requests(exchanges, "clicksign", "POST", "/signature_watchers")
    watch = json.loads(watcher.request_body)
    assert watch["data"]["attributes"] == {"email": sale.people["testemunha"]["email"], "kind": "all_steps"}
    assert check_request("clicksign", "POST", watcher.path, watch) == []
    agrees = [json.loads(e.request_body)["data"]["attributes"]
              for e in _requests(exchanges, "clicksign", "POST", "/requirements", 4)]
    assert sorted(a["role"] for a in agrees if a["action"] == "agree") == ["approve", "sign"]

    sb.sign(pid, sale.people["titular"]["email"], provider="clicksign")
    sb.sign(pid, sale.people["Cônjuge"]["email"], provider="clicksign")
    assert sb.state.clicksign.envelopes[pid]["attributes"]["status"] == "closed"
    assert [c["email"] for c in sb.clicksign.state.copies if c["envelope_id"] == pid] == [
        sale.people["testemunha"]["email"]]

    _backsync(store, tenant, "clicksign", pid)
    rows = _rows(store, outcome.envelope_id)
    assert {role: r.status for role, r in rows.items()} == {
        "client": "signed", "spouse": "approved", "witness": "copy_delivered"}

"""After every signer signed, the CRM contract is complete: the original contract marked signed (and
validated when the tenant says so), the stamped PDF attached once, the evidence summary attached once,
the reservation moved to the tenant's "signed" situation; each step once, whatever crashed, and a
redelivered completion changes nothing. Real dispatch, the sandbox over loopback HTTP, SQLite and
PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from connectors.sandbox import Sandbox
from connectors.sandbox.signing import Evidence
from orchestration.gateway.app import create_app
from orchestration.gateway.verify import verify_routes
from pipelines.backsync import crm_contract
from pipelines.backsync.flow import BacksyncReport, drain_inbox, poll_stale, resync
from pipelines.backsync.history import contract_history
from pipelines.connections import open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store.db import Store
from pipelines.store.models import AuditEntry, DeadLetter, Envelope, InboxEvent, OutboxItem
from schemas.tenant import TenantConfig
from tests.pipelines.backsync.helpers import CVCRM_HEADERS, crm_contracts, register_gateway
from tests.pipelines.dispatch.support import Sale, seed_sale, verify_manager
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

SIGNED_SITUATION = 13  # the sandbox's RS workflow: "Contrato assinado"
EVIDENCE_TYPE = 7  # the sandbox's document type "Evidências da assinatura eletrônica"
ON_SIGNED = {"reservation_situation": SIGNED_SITUATION, "validate_contract": True,
             "evidence_document_type": EVIDENCE_TYPE}
LEFT = {"client": Evidence(ip="200.160.2.3", device="Mozilla/5.0 (iPhone) Mobile Safari/604.1"),
        "spouse": Evidence(ip="177.71.4.9", device="Mozilla/5.0 (Windows NT 10.0) Chrome/128.0")}
STEP_ACTIONS = ("crm_contract_uploaded", "crm_original_contract_signed", "evidence_summary_stored",
                "crm_evidence_attached", "crm_reservation_moved", "crm_contract_complete")


class Killed(BaseException):
    """Stands for SIGKILL: no except clause of the flow catches it, nothing is cleaned up."""


@dataclass
class World:
    sb: Sandbox
    store: Store
    url: str
    holder: dict[str, TenantConfig]

    def tenant(self, **options: Any) -> TenantConfig:
        tenant = sandbox_tenant(self.sb, tenant_id="complete", unthrottled=True, options={
            "verification_base_url": self.url, "signature_pages": "all", **options})
        self.holder[tenant.id] = tenant
        return tenant

    def opener(self, tenant: TenantConfig):
        return lambda key: open_connector(tenant, key, store=self.store)


@pytest.fixture
def world(sb: Sandbox, store: Store) -> Iterator[World]:
    holder: dict[str, TenantConfig] = {}
    app = create_app(store, holder, extra_routes=verify_routes(store))
    with serve_asgi(app) as url:
        yield World(sb, store, url, holder)


def _dispatch(w: World, tenant: TenantConfig, *, unvalidate: bool = False) -> tuple[Sale, Envelope]:
    register_gateway(w.sb, tenant, w.store, w.url)
    sale = seed_sale(w.sb, tenant, roles=("titular", "Cônjuge"))
    verify_manager(w.store, tenant)
    outcome = run_dispatch(w.store, tenant, DispatchRequest(contracts=[sale.ref])).outcomes[0]
    assert outcome.result == "sent", outcome.reason
    if unvalidate:  # as a CRM user unchecking "validado" after dispatch: the tenant asks Ponte to validate it
        original = next(c for c in w.sb.state.cvcrm.contratos[sale.reservation_id]
                        if c["idreservacontrato"] == sale.contract_id)
        original["validado"] = "N"
    with w.store.session() as session:
        env = session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))).one()
        session.expunge(env)
    return sale, env


def _sign_all(w: World, env: Envelope) -> None:
    for role in ("client", "spouse"):
        w.sb.sign(str(env.provider_envelope_id), role, evidence=LEFT[role])


def _wait_completed(w: World, env: Envelope) -> None:
    w.sb.dispatcher.wait_for(lambda attempts: any(
        a.event == "envelope-completed" and a.outcome == "delivered" and str(env.provider_envelope_id) in
        a.body.decode("utf-8", "replace") for a in attempts), timeout=15)


def _drain(w: World, tenant: TenantConfig, **kwargs: Any) -> None:
    for _ in range(10):
        if drain_inbox(w.store, tenant, w.opener(tenant), **kwargs).events == 0:
            return


def _reservation(w: World, reservation: int) -> dict[str, Any]:
    response = httpx.get(f"{w.sb.api['cvcrm']}/v1/comercial/reservas/{reservation}", headers=CVCRM_HEADERS)
    response.raise_for_status()
    return dict(response.json())


def _documents(w: World, reservation: int) -> list[dict[str, Any]]:
    response = httpx.get(f"{w.sb.api['cvcrm']}/v1/comercial/reservas/{reservation}/documentos",
                         headers=CVCRM_HEADERS)
    response.raise_for_status()
    return list(response.json()["documentos"])


def _pdftotext(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def _crm_snapshot(w: World, sale: Sale) -> dict[str, Any]:
    reserva = _reservation(w, sale.reservation_id)
    return {
        "contracts": [(c["idreservacontrato"], c["assinado"], c["validado"])
                      for c in crm_contracts(w.sb, sale.reservation_id)],
        "documents": [d["iddocumento"] for d in _documents(w, sale.reservation_id)],
        "situation": reserva["idsituacao"],
        "moves": len(reserva.get("historico_situacoes") or []),
    }


def _store_counts(w: World) -> tuple[Counter[str], Counter[str]]:
    with w.store.session() as session:
        audits = Counter(a.action for a in session.scalars(select(AuditEntry)) if a.action in STEP_ACTIONS)
        outbox = Counter(o.action for o in session.scalars(select(OutboxItem))
                         if o.connector == "cvcrm" and o.status != "dead")  # a refused write: a dead item
    return audits, outbox


def _assert_complete(w: World, tenant: TenantConfig, sale: Sale, env: Envelope, *, validated: bool = True) -> None:
    """The CRM shows the contract complete, each piece once; the store recorded each step once."""
    contracts = crm_contracts(w.sb, sale.reservation_id)
    original = next(c for c in contracts if c["idreservacontrato"] == sale.contract_id)
    assert original["assinado"] == "S"
    if validated:
        assert original["validado"] == "S"
    stamped = [c for c in contracts if c["idreservacontrato"] != sale.contract_id]
    assert len(stamped) == 1 and stamped[0]["assinado"] == "S" and " - assinado " in stamped[0]["contrato"]

    with w.store.session() as session:
        done = session.get(Envelope, env.id)
        assert done is not None
        signers = [(s.role, s.signed_at) for s in done.signers]
        code, details, signed_path = done.verification_code, dict(done.details), str(done.signed_path)
    with open(signed_path, "rb") as stored:
        assert httpx.get(stamped[0]["link"]).content == stored.read()

    documents = _documents(w, sale.reservation_id)
    assert len(documents) == 1 and documents[0]["idtipo"] == EVIDENCE_TYPE
    text = _pdftotext(httpx.get(documents[0]["link"]).content)
    zone = ZoneInfo(tenant.options.timezone)
    for role, signed_at in signers:
        assert signed_at is not None
        assert signed_at.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S") in text, role
        assert LEFT[role].ip in text
    assert str(code) in text and "id_verification: passed" in text
    for person in sale.people.values():  # CPFs masked: staff see their last digits only
        assert person["documento"] not in text and f"-{person['documento'][-2:]}" in text

    assert _reservation(w, sale.reservation_id)["idsituacao"] == SIGNED_SITUATION
    audits, outbox = _store_counts(w)
    assert audits == Counter({a: 1 for a in STEP_ACTIONS}), audits
    assert outbox == Counter({"upload_contrato": 1, "update_contrato": 1, "attach_documento": 1,
                              "alterar_situacao_reserva": 1}), outbox
    with w.store.session() as session:
        assert all(o.status in ("done", "dead") for o in session.scalars(select(OutboxItem)) if o.connector == "cvcrm")

    (history,) = contract_history(w.store, tenant.id, str(sale.contract_id), w.url)
    assert history["crm"]["complete"] and history["crm"]["warnings"] == []
    steps = history["crm"]["steps"]
    assert all(steps[s]["done"] for s in crm_contract.STEPS)
    assert steps["original_contract"]["assinado"] == "S"
    assert steps["reservation_situation"]["to"] == SIGNED_SITUATION
    assert steps["evidence"]["crm_document"] == str(documents[0]["iddocumento"])
    assert details["crm"]["sha256"] == details["completion"]["signed_pdf"]["sha256"]


# ----------------------------------------------------------------------------------------- the paths


def test_webhook_path_completes_the_crm_contract_and_a_redelivered_completion_changes_nothing(world: World) -> None:
    tenant = world.tenant(on_signed=ON_SIGNED)
    sale, env = _dispatch(world, tenant, unvalidate=True)
    assert _reservation(world, sale.reservation_id)["idsituacao"] != SIGNED_SITUATION
    _sign_all(world, env)
    _wait_completed(world, env)
    _drain(world, tenant)
    _assert_complete(world, tenant, sale, env)

    before, counts = _crm_snapshot(world, sale), _store_counts(world)
    # the provider posts its completion again: the gateway stores it once (same event id) ...
    completed = next(a for a in world.sb.dispatcher.records("docusign")
                     if a.event == "envelope-completed" and a.outcome == "delivered"
                     and str(env.provider_envelope_id) in a.body.decode("utf-8", "replace"))
    again = httpx.post(completed.url, content=completed.body, headers=completed.headers)
    assert again.status_code < 300
    _drain(world, tenant)
    # ... and even processed once more (its inbox row made new again, as a replay does) nothing moves
    with world.store.session() as session:
        session.execute(update(InboxEvent).values(status="new", available_at=datetime.now(UTC) - timedelta(seconds=1)))
    _drain(world, tenant)
    poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0))
    assert _crm_snapshot(world, sale) == before
    assert _store_counts(world) == counts


def test_poll_path_completes_the_crm_contract(world: World) -> None:
    tenant = world.tenant(on_signed={**ON_SIGNED, "validate_contract": False})
    sale, env = _dispatch(world, tenant)
    _sign_all(world, env)
    # no inbox drained: the poll reads the envelope (webhooks lost) and finishes everything
    report = poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0))
    assert report.completed == [str(sale.contract_id)]
    _assert_complete(world, tenant, sale, env)
    assert poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0)).completed == []


def test_unset_options_mark_the_original_signed_keep_the_evidence_and_move_nothing(world: World) -> None:
    tenant = world.tenant()
    sale, env = _dispatch(world, tenant)
    situation = _reservation(world, sale.reservation_id)["idsituacao"]
    _sign_all(world, env)
    poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0))

    original = next(c for c in crm_contracts(world.sb, sale.reservation_id) if c["idreservacontrato"] == sale.contract_id)
    assert original["assinado"] == "S"
    assert _reservation(world, sale.reservation_id)["idsituacao"] == situation
    assert _documents(world, sale.reservation_id) == []
    (history,) = contract_history(world.store, tenant.id, str(sale.contract_id))
    steps = history["crm"]["steps"]
    assert history["crm"]["complete"]
    assert steps["reservation_situation"]["how"] == "not_configured"
    assert steps["evidence"]["how"] == "kept" and "evidence_document_type" in steps["evidence"]["warning"]
    with world.store.session() as session:
        details = session.get(Envelope, env.id).details
    with open(details["completion"]["evidence"]["path"], "rb") as kept:
        assert LEFT["client"].ip in _pdftotext(kept.read())


def test_an_original_contract_cv_would_not_change_falls_back_with_a_warning(world: World) -> None:
    """contrato_update: off stands for a CV CRM that has no such route: the original stays as it was,
    the history warns, the stamped PDF marked signed is the proof, the rest completes."""
    tenant = world.tenant(on_signed=ON_SIGNED)
    data = tenant.model_dump(mode="json", exclude_none=True)
    data["connectors"]["cvcrm"]["values"]["contrato_update"] = "off"
    tenant = TenantConfig.model_validate(data)
    world.holder[tenant.id] = tenant
    sale, env = _dispatch(world, tenant)
    _sign_all(world, env)
    poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0))

    contracts = crm_contracts(world.sb, sale.reservation_id)
    original = next(c for c in contracts if c["idreservacontrato"] == sale.contract_id)
    assert original["assinado"] == "N"
    assert [c["assinado"] for c in contracts if c is not original] == ["S"]
    (history,) = contract_history(world.store, tenant.id, str(sale.contract_id))
    assert history["crm"]["complete"]
    assert [w.split(":")[0] for w in history["crm"]["warnings"]] == ["original_contract"]
    assert _reservation(world, sale.reservation_id)["idsituacao"] == SIGNED_SITUATION
    assert len(_documents(world, sale.reservation_id)) == 1


def test_a_situation_the_crm_refuses_is_a_dead_letter_until_the_tenant_fixes_it(world: World) -> None:
    tenant = world.tenant(on_signed={**ON_SIGNED, "reservation_situation": 99})
    sale, env = _dispatch(world, tenant)
    _sign_all(world, env)
    report = poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0))
    assert report.failed == 1
    with world.store.session() as session:
        letter = session.scalars(select(DeadLetter).where(DeadLetter.record_key == f"envelope:{env.id}")).one()
        assert letter.status == "open" and "situation 99" in letter.reason
    # the steps before it are done, once
    assert len(_documents(world, sale.reservation_id)) == 1
    (history,) = contract_history(world.store, tenant.id, str(sale.contract_id))
    assert not history["crm"]["complete"] and not history["crm"]["steps"]["reservation_situation"]["done"]

    with world.store.session() as session:
        refused = session.scalars(select(OutboxItem).where(OutboxItem.action == "alterar_situacao_reserva")).one()
        assert refused.status == "dead" and refused.idempotency_key.endswith(":situation:99")
    fixed = world.tenant(on_signed=ON_SIGNED)
    poll_stale(world.store, fixed, world.opener(fixed), quiet_for=timedelta(0))
    _assert_complete(world, fixed, sale, env)
    with world.store.session() as session:
        assert session.get(DeadLetter, letter.id).status != "open"


# ------------------------------------------------------------------------------------------ crashes

POINTS = ["signed_pdf_sent", "after_signed_pdf", "original_contract_sent", "after_original_contract",
          "evidence_stored", "evidence_sent", "after_evidence", "situation_sent", "after_situation"]


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_each_step_then_a_rerun_does_each_step_once(
    world: World, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = world.tenant(on_signed=ON_SIGNED)
    sale, env = _dispatch(world, tenant, unvalidate=True)
    _sign_all(world, env)
    _wait_completed(world, env)

    def die(where: str) -> None:
        if where == point:
            raise Killed(where)

    monkeypatch.setattr(crm_contract, "crash", die)
    with pytest.raises(Killed):
        _drain(world, tenant, worker="worker-a", lease_seconds=60)
    with world.store.session() as session:
        row = session.get(Envelope, env.id)
        assert row.status == "completed" and "crm" not in row.details  # not finished: the poll will come back
        # the process is gone: its leases run out (the finalization's, the outbox's, the inbox's)
        details = dict(row.details)
        details["finalizing"] = {**details["finalizing"], "until": "2000-01-01T00:00:00+00:00"}
        row.details = details
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(OutboxItem).values(claimed_until=past))
        session.execute(update(InboxEvent).values(claimed_until=past))
    monkeypatch.setattr(crm_contract, "crash", lambda where: None)

    poll_stale(world.store, tenant, world.opener(tenant), quiet_for=timedelta(0))
    _drain(world, tenant, worker="worker-b")
    _assert_complete(world, tenant, sale, env)


@pytest.mark.parametrize("action", ["refuse", "expire"])
def test_a_refusal_or_an_expiry_shows_in_the_crm_once(world: World, action: str) -> None:
    """The CRM tells the whole story: a refused or expired envelope sets the original contract back to
    not validated (the CRM team acts; the poll leaves it), once, in the contract's history."""
    w = world
    tenant = w.tenant(on_signed=ON_SIGNED)
    sale, env = _dispatch(w, tenant)
    w.sb.sign(str(env.provider_envelope_id), "client", action=action)
    for _ in range(2):  # the second pass (a redelivery, a poll) changes nothing
        resync(w.store, tenant, env.id, w.opener(tenant), BacksyncReport(tenant.id))
    original = next(c for c in crm_contracts(w.sb, sale.reservation_id) if c["idreservacontrato"] == sale.contract_id)
    assert (original["assinado"], original["validado"]) == ("N", "N")
    (row,) = contract_history(w.store, tenant.id, str(sale.contract_id))
    assert row["status"] == ("declined" if action == "refuse" else "expired")
    with w.store.session() as session:
        done = session.scalars(select(AuditEntry).where(
            AuditEntry.entity_id == str(env.id), AuditEntry.action.like("crm_contract_%"))).all()
        updates = session.scalars(select(OutboxItem).where(
            OutboxItem.idempotency_key == f"{tenant.id}:contract:{sale.contract_id}:crm-stopped:{env.id}")).all()
    assert [a.action for a in done] == [f"crm_contract_{row['status']}"] and len(updates) == 1

"""Reconciliation over the sandbox: one drift of each kind is found; envelope_status,
signed_pdf_missing and import_content are repaired exactly once (a second run finds nothing and writes
nothing); ready_not_sent is reported; a dry run repairs nothing."""

from __future__ import annotations

import copy

from pipelines.reconcile.report import (
    ENVELOPE_STATUS,
    IMPORT_CONTENT,
    READY_NOT_SENT,
    SIGNED_PDF_MISSING,
)
from pipelines.reconcile.runner import ReconcileRequest, run_reconcile
from pipelines.store.models import OutboxItem
from tests.pipelines.reconcile.conftest import World, crm_contracts, crm_person, seed_drift


def _records(report, kind: str) -> list[str]:
    return sorted(row.record for row in report.of(kind))


def _uploads(world: World) -> int:
    with world.store.session() as session:
        return sum(1 for item in session.query(OutboxItem) if item.action == "upload_contrato")


def test_every_kind_is_found_and_the_safe_ones_repaired_exactly_once(world: World) -> None:
    seed_drift(world)
    completed, declined, unfinished = world.completed, world.declined, world.unfinished
    assert completed and declined and unfinished and world.sale

    # a dry run finds each drift and changes nothing
    planned = run_reconcile(world.store, world.tenant, world.opener, ReconcileRequest(dry_run=True))
    assert planned.errors == {}
    assert planned.counts() == {ENVELOPE_STATUS: 2, SIGNED_PDF_MISSING: 1, READY_NOT_SENT: 1, IMPORT_CONTENT: 2}
    assert not any(row.repaired for row in planned.rows)
    assert all(row.action.startswith(("would", "reported only")) for row in planned.rows)
    assert _records(planned, ENVELOPE_STATUS) == sorted([f"envelope:{completed.id}", f"envelope:{declined.id}"])
    assert _records(planned, SIGNED_PDF_MISSING) == [f"envelope:{unfinished.id}"]
    assert _records(planned, READY_NOT_SENT) == [f"contract:{world.sale.contract_id}"]
    contents = {row.record: row.fields for row in planned.of(IMPORT_CONTENT)}
    assert contents == {f"customer:{world.person['id']}": ["nome"],
                        f"sale:{world.reservation['sale']}": ["valor_contrato"]}
    assert world.envelope(completed.id).status == "sent" and world.envelope(declined.id).status == "sent"
    assert world.envelope(unfinished.id).details.get("crm") is None
    assert crm_person(world, world.person["document"])["nome"] == "Nome Trocado no CRM"
    assert _uploads(world) == 0

    report = run_reconcile(world.store, world.tenant, world.opener)
    assert report.errors == {}
    assert report.counts() == planned.counts()
    assert report.repaired_counts() == {ENVELOPE_STATUS: 2, SIGNED_PDF_MISSING: 1, READY_NOT_SENT: 0,
                                        IMPORT_CONTENT: 2}
    # envelope_status: the provider's state applied through back-sync; the completion brought its PDF home
    done = world.envelope(completed.id)
    assert done.status == "completed" and done.details["crm"]["sha256"] == done.signed_sha256
    assert [c["assinado"] for c in crm_contracts(world, done.details["reservation_id"])] == ["S"]
    assert world.envelope(declined.id).status == "declined"
    # signed_pdf_missing: stamped and uploaded once
    finished = world.envelope(unfinished.id)
    assert finished.details["crm"]["sha256"] == finished.signed_sha256
    assert [c["assinado"] for c in crm_contracts(world, finished.details["reservation_id"])] == ["S"]
    # ready_not_sent: reported with the command that sends it, never sent by itself
    [unsent] = report.of(READY_NOT_SENT)
    assert not unsent.repaired and f"--contract {world.sale.ref}" in unsent.action
    assert world.sb.state.cvcrm.contratos[world.sale.reservation_id][0]["assinado"] == "N"
    # import_content: the person re-imported: Sienge's name is back, the CRM's own contacts stay
    assert crm_person(world, world.person["document"])["nome"] == world.person["name"]
    reserva = world.sb.state.cvcrm.reservas[world.reservation["id"]]
    assert reserva["valor_contrato"] == world.reservation["value"]
    assert reserva["observacoes"] == "cliente pediu desconto"
    assert _uploads(world) == 2

    # a second run finds only what is reported (the unsent contract) and repairs, uploads, writes nothing
    writes = copy.deepcopy(world.sb.state.cvcrm.pessoas)
    again = run_reconcile(world.store, world.tenant, world.opener)
    assert again.errors == {}
    assert again.counts() == {ENVELOPE_STATUS: 0, SIGNED_PDF_MISSING: 0, READY_NOT_SENT: 1, IMPORT_CONTENT: 0}
    assert not any(row.repaired for row in again.rows)
    assert _uploads(world) == 2
    assert len(crm_contracts(world, done.details["reservation_id"])) == 1
    assert len(crm_contracts(world, finished.details["reservation_id"])) == 1
    assert world.sb.state.cvcrm.pessoas == writes


def test_a_signed_pdf_removed_in_the_crm_is_reported_not_uploaded_again(world: World) -> None:
    seed_drift(world)
    run_reconcile(world.store, world.tenant, world.opener, ReconcileRequest(kinds=(ENVELOPE_STATUS,)))
    done = world.envelope(world.completed.id)  # type: ignore[union-attr]
    world.sb.state.cvcrm.contratos[int(done.details["reservation_id"])].clear()  # removed by a CRM user

    report = run_reconcile(world.store, world.tenant, world.opener,
                           ReconcileRequest(kinds=(SIGNED_PDF_MISSING,)))
    rows = {row.record: row for row in report.of(SIGNED_PDF_MISSING)}
    removed = rows[f"envelope:{done.id}"]
    assert not removed.repaired and removed.action.startswith("reported only")
    assert "no longer lists it" in removed.detail
    assert crm_contracts(world, done.details["reservation_id"]) == []  # not sent twice
    assert rows[f"envelope:{world.unfinished.id}"].repaired  # type: ignore[union-attr]

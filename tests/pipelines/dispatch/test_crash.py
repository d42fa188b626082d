"""Kill the dispatcher at random points (and right after the provider answered): one envelope each."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

from sqlalchemy import func, select

from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store import open_store
from pipelines.store.models import Envelope, PackageLedgerEntry
from tests.pipelines.dispatch import crash_worker
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant

POINTS = ["after_provider_call"] * 4 + ["after_outbox_done", "before_record", "after_record"] * 2


def _at_provider(sb, contract_id: int) -> int:
    marker = f":contract:{contract_id}:"
    return sum(
        1 for e in sb.state.docusign.envelopes.values()
        if any(f["name"] == "ponte_key" and marker in f["value"] for f in e["customFields"]["textCustomFields"])
    )


def _restart(store, tenant, conns, ref: str) -> str:
    """A new dispatcher after the crash; while the dead worker's lease lasts the contract is deferred
    (the run itself goes on), so it runs again like the next scheduled run would."""
    deadline = time.monotonic() + 10
    while True:
        report = run_dispatch(store, tenant, DispatchRequest(contracts=[ref], lease_seconds=crash_worker.LEASE),
                              conns)
        result = report.outcomes[0].result
        if result != "deferred" or time.monotonic() > deadline:
            return result
        time.sleep(crash_worker.LEASE / 2)


def test_killed_dispatcher_never_makes_a_second_envelope(sb, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = open_store(url)
    tenant = sandbox_tenant(sb, tenant_id="crash", unthrottled=True)
    verify_manager(store, tenant)
    conns = TenantConnectors(tenant, store)  # one set for every restart (opening parses specs)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.pipelines.dispatch.crash_worker"])
    rng = random.Random(20261123)
    plan = [(p, None) for p in POINTS] + [(None, rng.uniform(0.0, 0.5)) for _ in range(14)]
    assert len(plan) >= 20
    outcomes = []
    for crash_at, delay in plan:
        sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1)
        proc = ctx.Process(target=crash_worker.dispatch,
                           args=(url, tenant.model_dump_json(), sale.ref, crash_at))
        proc.start()
        if delay is not None:
            time.sleep(delay)
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
        proc.join(20)
        assert proc.exitcode is not None
        if crash_at:
            assert proc.exitcode == 137, f"the crash point {crash_at} was not reached"
        result = _restart(store, tenant, conns, sale.ref)
        outcomes.append((crash_at or f"kill@{delay:.2f}s", proc.exitcode, result))
        assert _at_provider(sb, sale.contract_id) == 1, outcomes[-1]
        with store.session() as session:
            rows = session.scalar(select(func.count()).select_from(Envelope)
                                  .where(Envelope.contract_id == str(sale.contract_id)))
            assert rows == 1, outcomes[-1]
    with store.session() as session:  # counted once per envelope, whatever the retries
        assert session.scalar(select(func.count()).select_from(PackageLedgerEntry)) == len(plan)
    # the crash right after the provider call was recovered by looking the envelope up, not re-sending
    assert {r for p, _, r in outcomes if p == "after_provider_call"} == {"found"}
    conns.close()
    store.dispose()


#: the steps of replacing a changed document's envelope: the void call, its record, the new create, its record
REPLACE_POINTS = ["after_void_call", "after_void_recorded", "after_provider_call", "after_record"]


def test_killed_dispatcher_replacing_a_version_leaves_one_live_envelope_and_one_void(sb, tmp_path: Path) -> None:
    from pipelines.store.models import OutboxItem
    from tests.pipelines.dispatch.test_versions import change_document

    url = f"sqlite:///{tmp_path / 'crash-versions.db'}"
    store = open_store(url)
    tenant = sandbox_tenant(sb, tenant_id="crash-versions", unthrottled=True)
    verify_manager(store, tenant)
    conns = TenantConnectors(tenant, store)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.pipelines.dispatch.crash_worker"])
    for crash_at in REPLACE_POINTS:
        sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1)
        first = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]), conns).outcomes[0]
        change_document(sb, sale, f"versão após {crash_at}")
        proc = ctx.Process(target=crash_worker.dispatch, args=(url, tenant.model_dump_json(), sale.ref, crash_at))
        proc.start()
        proc.join(20)
        assert proc.exitcode == 137, f"the crash point {crash_at} was not reached"
        result = _restart(store, tenant, conns, sale.ref)
        assert result in ("sent", "found", "already_sent"), (crash_at, result)
        marker = f":contract:{sale.contract_id}:"
        at_provider = [e for e in sb.state.docusign.envelopes.values()
                       if any(f["name"] == "ponte_key" and marker in f["value"]
                              for f in e["customFields"]["textCustomFields"])]
        statuses = sorted(e["status"] for e in at_provider)
        assert statuses == ["sent", "voided"], (crash_at, statuses)  # one live per version, one void
        voided = next(e for e in at_provider if e["status"] == "voided")
        assert voided["envelopeId"] == first.provider_envelope_id
        with store.session() as session:
            rows = list(session.scalars(select(Envelope).where(Envelope.contract_id == str(sale.contract_id))
                                        .order_by(Envelope.id)))
            assert [r.status for r in rows] == ["voided", "sent"], crash_at
            voids = session.scalars(select(OutboxItem).where(OutboxItem.idempotency_key.endswith(":void"),
                                                             OutboxItem.idempotency_key.contains(marker))).all()
            assert [v.status for v in voids] == ["done"], crash_at
            assert session.scalar(select(func.count()).select_from(PackageLedgerEntry)
                                  .where(PackageLedgerEntry.envelope_key.contains(marker))) == 2
    conns.close()
    store.dispose()

"""Every flow over the sandbox with ~20 % faulty HTTP and ~30 % faulty webhooks, against ground truth.

Each scenario runs the flow as its schedules would (webhook processing, scheduled re-runs, polling,
reconciliation) a bounded number of times and then checks: every record arrived once, no duplicate
envelope or upload, no lost assistance, no dead letter for what was only delayed, and the outside
systems' state equals what a fault-free run gives.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.sandbox import start_sandbox
from orchestration.gateway.app import create_app
from orchestration.gateway.verify import verify_routes
from pipelines.assistance import AssistanceRequest, run_assistance
from pipelines.backsync.flow import drain_inbox, poll_stale
from pipelines.connections import TenantConnectors, open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.imports.flow import run_import
from pipelines.imports.webhooks import process_sienge_events
from pipelines.store import Store, deadletters
from pipelines.store.models import Envelope, InboxEvent, OutboxItem, PackageLedgerEntry
from ponte.errors import PonteError
from tests.chaos.conftest import FAST_RETRIES, SIZE, BackoffClock, FaultCounter, converge, faults
from tests.pipelines.assistance.conftest import NoWaitBudget, _register_buyers
from tests.pipelines.backsync.helpers import crm_contracts, register_gateway, send_envelope
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.pipelines.imports.test_import_e2e import _crm_state
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant


def _duplicates(store: Store, tenant: str) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.coalesce(func.sum(InboxEvent.duplicates), 0))
                                  .where(InboxEvent.tenant == tenant)) or 0)


def _inbox_events(store: Store, tenant: str) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.tenant == tenant)))


def _settled(sb: Any, system: str, timeout: float = 20) -> None:
    """Wait until every webhook the system fired so far ended (delivered, failed or lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempts = sb.dispatcher.records(system)
        ids = {a.delivery_id for a in attempts}
        ended = {a.delivery_id for a in attempts if a.outcome in ("delivered", "failed", "lost")}
        if ids <= ended:
            time.sleep(0.3)  # a duplicate of a delivered event may still be on its way
            if len(sb.dispatcher.records(system)) == len(attempts):
                return
        time.sleep(0.05)
    raise AssertionError(f"{system} webhooks did not settle")


def _record(figures: Any, counter: FaultCounter, clock: BackoffClock | None = None, **values: float) -> None:
    figures.add(faults_injected=counter.http_faults, webhook_faults=counter.webhook_faults,
                requests=counter.counts["requests"], **values)
    if clock is not None:
        figures.add(backoff_seconds_simulated=round(clock.slept, 2))


# ------------------------------------------------------------------------------------------ import

def _mutate(sb: Any, ids: list[int]) -> None:
    for n, customer_id in enumerate(ids):
        sb.sienge.mutate_customer(customer_id, email=f"caos{customer_id}.{n}@example.com")


def test_import_under_faults_reaches_the_fault_free_crm_state(chaos_store: Store, figures) -> None:
    seed = 23
    with start_sandbox(customers=SIZE.customers, seed=seed, rate_limits=False) as clean:
        tenant = sandbox_tenant(clean, "clean", unthrottled=True)
        with open_connector(tenant, "sienge") as sienge, open_connector(tenant, "cvcrm") as cvcrm:
            run_import(chaos_store, tenant, sienge, cvcrm)
            changed = sorted(clean.state.sienge.customers)[: SIZE.mutations]
            _mutate(clean, changed)
            run_import(chaos_store, tenant, sienge, cvcrm)
        expected = _crm_state(clean)

    profile = {"sienge": faults(seed, webhooks=True), "cvcrm": faults(seed + 1)}
    clock = BackoffClock()
    with start_sandbox(customers=SIZE.customers, seed=seed, rate_limits=False, faults=profile,
                       sienge_retry_delays=FAST_RETRIES) as sb:
        counter = FaultCounter().attach(sb)
        tenant = sandbox_tenant(sb, "chaos-import", unthrottled=True)
        with serve_asgi(create_app(chaos_store, {tenant.id: tenant})) as gateway, \
                open_connector(tenant, "sienge", store=chaos_store, sleep=clock.sleep) as sienge, \
                open_connector(tenant, "cvcrm", store=chaos_store, sleep=clock.sleep) as cvcrm:
            sienge.register_webhook("hooks", f"{gateway}/webhooks/{tenant.id}/sienge/hooks")
            state: dict[str, Any] = {}

            def scheduled_import() -> None:  # the 15-minute schedule
                try:
                    state["report"] = run_import(chaos_store, tenant, sienge, cvcrm)
                except PonteError as exc:  # the step gave up; Dagster's retry policy / next tick runs it again
                    state["report"] = None
                    state.setdefault("errors", []).append(str(exc))

            def clean_report() -> bool:
                return state["report"] is not None and state["report"].total("failed") == 0

            runs = converge(scheduled_import, clean_report, SIZE.rounds, "first import")
            _mutate(sb, changed)  # fires CUSTOMER_UPDATED hooks: lost, doubled, late, out of order
            _settled(sb, "sienge")
            hook_runs = 0
            while True:  # the webhook sensor drains the inbox
                hook_runs += 1
                try:
                    if process_sienge_events(chaos_store, tenant, sienge, cvcrm).events == 0:
                        break
                except PonteError:
                    pass  # released with a retry time; the schedule below catches those records too
                assert hook_runs < 50
            runs += converge(scheduled_import, clean_report, SIZE.rounds, "incremental import")
        assert deadletters.list_open(chaos_store, tenant.id) == [], "delayed records must not be dead-lettered"
        assert _crm_state(sb) == expected, "the CRM differs from the fault-free run"
        events = _inbox_events(chaos_store, tenant.id)
        duplicates = _duplicates(chaos_store, tenant.id)
        assert counter.http_faults > 0 and counter.webhook_faults > 0
        _record(figures, counter, clock, records=len(expected[0]) + len(expected[1]), events=events,
                duplicates_prevented=duplicates, lost=0, dead_letters=0, runs=runs + hook_runs,
                import_records=len(expected[0]) + len(expected[1]))


# ------------------------------------------------------------------------------------------ dispatch

def _provider_shape(provider: str, envelope: dict[str, Any]) -> tuple:
    """What must be equal between a fault-free envelope and one sent under faults (ids and names aside)."""
    if provider == "clicksign":
        attrs = envelope["attributes"]
        return (attrs["status"], len(envelope["documents"]),
                tuple(sorted(s["attributes"]["group"] for s in envelope["signers"].values())),
                tuple(sorted((r["attributes"].get("action"), str(r["attributes"].get("role")),
                              str(r["attributes"].get("auth"))) for r in envelope["requirements"].values())))
    signers = envelope.get("recipients", {}).get("signers", [])
    return (envelope["status"], len(envelope.get("documents") or []),
            tuple(sorted((s["routingOrder"], s.get("roleName"), len(s.get("tabs", {}).get("signHereTabs", [])))
                         for s in signers)))


def _envelopes_for(sb: Any, provider: str, contract_id: int) -> list[dict[str, Any]]:
    marker = f":contract:{contract_id}:"
    if provider == "clicksign":
        return [e for e in sb.state.clicksign.envelopes.values()
                if marker in str(e["attributes"]["metadata"].get("ponte_key", ""))]
    return [e for e in sb.state.docusign.envelopes.values()
            if any(f["name"] == "ponte_key" and marker in f["value"] for f in e["customFields"]["textCustomFields"])]


@pytest.mark.parametrize("provider", ["docusign", "clicksign"])
def test_dispatch_under_faults_sends_one_envelope_per_contract_like_the_fault_free_run(
        chaos_store: Store, figures, provider: str) -> None:
    with start_sandbox(customers=10, seed=31, rate_limits=False) as sb:
        counter = FaultCounter().attach(sb)
        tenant = sandbox_tenant(sb, "chaos-dispatch", unthrottled=True, options={"signing_provider": provider})
        verify_manager(chaos_store, tenant)
        clean_sales = [seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1) for _ in range(2)]
        with TenantConnectors(tenant, chaos_store) as conns:
            run_dispatch(chaos_store, tenant, DispatchRequest(contracts=[s.ref for s in clean_sales]), conns)
        truth = {_provider_shape(provider, e) for s in clean_sales for e in _envelopes_for(sb, provider, s.contract_id)}
        assert len(truth) == 1, truth  # every fault-free envelope looks alike

        sales = [seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1) for _ in range(SIZE.sales)]
        before = counter.counts.copy()
        for system in ("cvcrm", provider):
            sb.set_faults(system, faults(40 + len(system)))
        results: list[str] = []
        ids = {str(s.contract_id) for s in sales}

        def scheduled_dispatch() -> None:  # the 10-minute schedule: every ready contract
            try:
                with TenantConnectors(tenant, chaos_store) as conns:
                    report = run_dispatch(chaos_store, tenant, DispatchRequest(all_ready=True, lease_seconds=0.3),
                                          conns)
                results.extend(o.result for o in report.outcomes if o.contract_id in ids)
                last[:] = [(o.contract_id, o.result, (o.reason or "")[:200]) for o in report.outcomes
                           if o.result != "skipped"]
                if report.count("deferred"):
                    time.sleep(0.3)  # a deferred contract may be held by the previous attempt's claim
            except PonteError as exc:
                last[:] = [("run", "error", str(exc)[:300])]
                aborted.append(type(exc).__name__)
                time.sleep(0.3)  # a claim held by the previous, failed attempt: wait out its lease

        def all_sent() -> bool:
            with chaos_store.session() as session:
                sent = set(session.scalars(select(Envelope.contract_id).where(Envelope.tenant == tenant.id)))
            return ids <= sent

        last: list[tuple[str, str, str]] = []
        aborted: list[str] = []
        try:
            runs = converge(scheduled_dispatch, all_sent, SIZE.rounds, "dispatch")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last run: {last}") from None
        for system in ("cvcrm", provider):
            sb.set_faults(system, {})
        for sale in sales:
            at_provider = _envelopes_for(sb, provider, sale.contract_id)
            assert len(at_provider) == 1, f"contract {sale.contract_id}: {len(at_provider)} envelopes"
            assert {_provider_shape(provider, e) for e in at_provider} == truth
        with chaos_store.session() as session:
            rows = session.scalar(select(func.count()).select_from(Envelope).where(Envelope.tenant == tenant.id))
            ledger = session.scalar(select(func.count()).select_from(PackageLedgerEntry)
                                    .where(PackageLedgerEntry.tenant == tenant.id))
            prevented = session.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.tenant == tenant.id, OutboxItem.attempts > 1, OutboxItem.status == "done"))
        assert rows == ledger == len(sales) + len(clean_sales)
        assert deadletters.list_open(chaos_store, tenant.id) == []
        http = counter.http_faults - sum(before[k] for k in ("http_error", "throttled", "dropped"))
        assert http > 0
        figures.add(faults_injected=http, requests=counter.counts["requests"] - before["requests"],
                    records=len(sales), envelopes=len(sales), lost=0, dead_letters=0, runs=runs,
                    dispatch_runs_aborted=len(aborted), contracts_deferred=results.count("deferred"),
                    duplicates_prevented=results.count("found") + results.count("already_sent") + int(prevented or 0))


# ------------------------------------------------------------------------------------------ back-sync

def test_backsync_under_faults_completes_every_envelope_and_uploads_each_once(chaos_store: Store, figures) -> None:
    with start_sandbox(customers=10, seed=37, rate_limits=False, docusign_retry_delays=FAST_RETRIES) as sb:
        counter = FaultCounter().attach(sb)
        clock = BackoffClock()
        holder: dict[str, Any] = {}
        app = create_app(chaos_store, holder, extra_routes=verify_routes(chaos_store))
        with serve_asgi(app) as url:
            tenant = sandbox_tenant(sb, "chaos-backsync", unthrottled=True,
                                    options={"verification_base_url": url, "signature_pages": "all"})
            holder[tenant.id] = tenant
            register_gateway(sb, tenant, chaos_store, url)
            envs = [send_envelope(sb, chaos_store, tenant, provider="docusign", signers=2, pages=1)
                    for _ in range(SIZE.envelopes)]
            sb.set_faults("docusign", faults(51, webhooks=True))
            sb.set_faults("cvcrm", faults(52))
            for env in envs:
                sb.sign(env.provider_envelope_id, "client")
                sb.sign(env.provider_envelope_id, "spouse")
            _settled(sb, "docusign", timeout=40)

            def opener(key: str) -> Any:
                return open_connector(tenant, key, store=chaos_store, sleep=clock.sleep)

            def backsync_round() -> None:  # the sensor drains the inbox; the poll re-reads quiet envelopes
                while drain_inbox(chaos_store, tenant, opener, lease_seconds=5).events:
                    pass
                poll_stale(chaos_store, tenant, opener, quiet_for=timedelta(0))

            def all_home() -> bool:
                with chaos_store.session() as session:
                    rows = list(session.scalars(select(Envelope).where(Envelope.tenant == tenant.id)))
                    uploads = session.scalar(select(func.count()).select_from(OutboxItem).where(
                        OutboxItem.tenant == tenant.id, OutboxItem.action == "upload_contrato",
                        OutboxItem.status == "done"))
                return all(r.status == "completed" for r in rows) and uploads == len(rows)

            runs = converge(backsync_round, all_home, SIZE.rounds, "back-sync")
        sb.set_faults("docusign", {})
        sb.set_faults("cvcrm", {})
        for env in envs:
            signed = [c for c in crm_contracts(sb, env.details["reservation_id"]) if c["assinado"] == "S"]
            assert len(signed) == 1, f"contract {env.contract_id}: {len(signed)} signed uploads"
        with chaos_store.session() as session:
            rows = list(session.scalars(select(Envelope).where(Envelope.tenant == tenant.id)))
            assert all(all(s.status == "signed" for s in r.signers) for r in rows)
        assert deadletters.list_open(chaos_store, tenant.id) == []
        assert counter.http_faults > 0 and counter.webhook_faults > 0
        _record(figures, counter, clock, records=len(envs), events=_inbox_events(chaos_store, tenant.id),
                duplicates_prevented=_duplicates(chaos_store, tenant.id), lost=0, dead_letters=0, runs=runs)


# ------------------------------------------------------------------------------------------ assistance

SITUATION = {"OPEN": 1, "IN_PROGRESS": 2, "FINISHED": 3, "CANCELED": 4}
ACTIONS = ["in-progress", "finish", "cancel", "delete", None]
FINAL = {"in-progress": "IN_PROGRESS", "finish": "FINISHED", "cancel": "CANCELED", "delete": "DELETED", None: "OPEN"}


def test_assistance_under_faults_loses_no_request_and_both_sides_agree(chaos_store: Store, figures) -> None:
    profile = {"cvcrm": faults(61, webhooks=True), "sienge": faults(62, webhooks=True)}
    clock = BackoffClock()
    with start_sandbox(rate_limits=False, assistances=0, sienge_retry_delays=FAST_RETRIES,
                       cvcrm_retry_delays=FAST_RETRIES) as sb:
        counter = FaultCounter().attach(sb)
        tenant = sandbox_tenant(sb, "chaos-assist")
        with serve_asgi(create_app(chaos_store, {tenant.id: tenant})) as gateway, \
                open_connector(tenant, "sienge", store=chaos_store, budget=NoWaitBudget(), sleep=clock.sleep) as sienge, \
                open_connector(tenant, "cvcrm", store=chaos_store, budget=NoWaitBudget(), sleep=clock.sleep) as cvcrm:
            secret = tenant.connector("cvcrm").resolve_credentials(tenant.id)["webhook_secret"]
            cvcrm.register_webhook("events", f"{gateway}/webhooks/{tenant.id}/cvcrm/events/{secret}",
                                   funcionalidade="AS", gatilho=tenant.options.assistance.situation_opened or 0)
            sienge.register_webhook("hooks", f"{gateway}/webhooks/{tenant.id}/sienge/hooks")
            buyers = _register_buyers(sb, cvcrm)
            for system, config in profile.items():
                sb.set_faults(system, config)

            def sync(**request: Any) -> Any:
                try:
                    return run_assistance(chaos_store, tenant, sienge, cvcrm, AssistanceRequest(**request))
                except PonteError:
                    return None

            crm_ids = []
            for n in range(SIZE.assistances):
                idpessoa, idunidade = buyers[n % len(buyers)]
                record = sb.cvcrm.open_assistencia(
                    idpessoa=idpessoa, unidade=idunidade, descricao=f"Reparo caótico {n}",
                    itens=[{"iditem": 5000 + n, "descricao": f"Item {n}", "prazo_minimo_dias": 5}], anexos=[])
                crm_ids.append(str(record["idassistencia"]))
            _settled(sb, "cvcrm")

            def linked() -> bool:
                return {a["externalId"] for a in sb.state.sienge.assistances.values()} >= set(crm_ids)

            # the CLI's default run: stored webhooks, then a poll of the CRM for requests never sent
            runs = converge(lambda: sync(poll=True), linked, SIZE.rounds, "assistance create")
            by_external = {a["externalId"]: a["id"] for a in sb.state.sienge.assistances.values()}
            expected = {}
            for n, crm_id in enumerate(crm_ids):
                action = ACTIONS[n % len(ACTIONS)]
                if action:
                    sb.sienge.move_assistance(by_external[crm_id], action)
                expected[crm_id] = FINAL[action]
            _settled(sb, "sienge")
            sync()
            drift: dict[str, int] = {}

            def reconcile() -> None:  # the nightly reconciliation
                report = sync(events=False, reconcile=True)
                if report is not None:
                    drift["found"] = drift.get("found", 0) + report.drift.total

            def agreed() -> bool:
                report = sync(events=False, reconcile=True, plan=True)
                return report is not None and report.drift.total == 0

            runs += converge(reconcile, agreed, SIZE.rounds, "assistance reconciliation")
        for system in profile:
            sb.set_faults(system, {})
        in_sienge = [a["externalId"] for a in sb.state.sienge.assistances.values()]
        assert sorted(in_sienge) == sorted(crm_ids), "a request is missing or doubled in Sienge"
        for crm_id in crm_ids:
            erp = next(a for a in sb.state.sienge.assistances.values() if a["externalId"] == crm_id)
            crm = sb.state.cvcrm.assistencias[int(crm_id)]
            assert erp["status"] == expected[crm_id]
            assert crm["idassistencia_erp"] == str(erp["id"])
            if erp["status"] == "DELETED":
                assert crm["ativo"] == "N"
            else:
                assert crm["idsituacao"] == SITUATION[erp["status"]], crm_id
        assert deadletters.list_open(chaos_store, tenant.id) == []
        assert counter.http_faults > 0 and counter.webhook_faults > 0
        _record(figures, counter, clock, records=len(crm_ids), events=_inbox_events(chaos_store, tenant.id),
                duplicates_prevented=_duplicates(chaos_store, tenant.id), lost=0, dead_letters=0,
                drift_repaired=drift.get("found", 0), runs=runs)

"""A provider down for hours (simulated time): Ponte stays polite, loses nothing, then drains.

The connectors run on a simulated clock: the shared rate budget (``SqlRateBudget(clock=)``) and the
retry/limiter waits (``sleep=``) advance it instead of the wall clock, so a two-hour outage with the
15-minute import schedule takes seconds. The sandbox notes the simulated time of every request it
receives; the suite checks each declared budget window against those times (a token bucket promises at
most the declared amount in *any* window), counts the retries per run, and after recovery compares the
CRM with a fault-free import.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from connectors.runtime.ratelimit import buckets_for
from connectors.sandbox import start_sandbox
from pipelines.connections import load_spec, open_connector
from pipelines.imports.flow import run_import
from pipelines.store import Store, deadletters
from pipelines.store.models import SyncCursor
from pipelines.store.rate_budget import SqlRateBudget
from ponte.errors import PonteError
from tests.chaos.conftest import FULL, SIZE, BackoffClock
from tests.pipelines.imports.test_import_e2e import _crm_state
from tests.support.tenants import sandbox_tenant

SCHEDULE = 15 * 60  # the import schedule, seconds
OUTAGE = (2 if FULL else 1) * 3600  # how long each provider stays down
WINDOWS = {"per_second": 1, "per_minute": 60, "per_hour": 3600, "per_day": 86400}


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _cursors(store: Store, tenant: str) -> dict[str, str | None]:
    with store.session() as session:
        return {row.stream: row.value for row in session.scalars(select(SyncCursor).where(SyncCursor.tenant == tenant))}


def test_long_outages_keep_ponte_polite_and_everything_drains_without_dead_letters(chaos_store: Store, figures) -> None:
    seed = 43
    with start_sandbox(customers=SIZE.customers, seed=seed, rate_limits=False) as clean:
        tenant = sandbox_tenant(clean, "clean", unthrottled=True)
        with open_connector(tenant, "sienge") as sienge, open_connector(tenant, "cvcrm") as cvcrm:
            run_import(chaos_store, tenant, sienge, cvcrm)
        expected = _crm_state(clean)

    clock = BackoffClock(cap=0.002)
    seen: dict[str, list[float]] = {"sienge": [], "cvcrm": []}
    with start_sandbox(customers=SIZE.customers, seed=seed, rate_limits=False) as sb:
        for name, times in seen.items():  # the simulated time of every request the system receives
            injector = sb.systems[name].faults
            decide = injector.decide

            def noted(decide: Any = decide, times: list[float] = times) -> Any:
                times.append(clock.now())
                return decide()

            injector.decide = noted
        tenant = sandbox_tenant(sb, "outage")  # the specs' real budgets, not unthrottled
        budget = SqlRateBudget(chaos_store, clock=clock.now)
        sienge = open_connector(tenant, "sienge", store=chaos_store, budget=budget, sleep=clock.sleep)
        cvcrm = open_connector(tenant, "cvcrm", store=chaos_store, budget=budget, sleep=clock.sleep)
        runs: list[dict[str, Any]] = []

        def scheduled_run() -> dict[str, Any]:
            before = {k: len(v) for k, v in seen.items()}
            started = clock.now()
            try:
                report = run_import(chaos_store, tenant, sienge, cvcrm)
                outcome = {"failed": report.total("failed"), "error": None}
            except PonteError as exc:  # the step gave up (HTTP retries exhausted); the schedule retries
                outcome = {"failed": None, "error": exc.kind}
            outcome.update(requests={k: len(v) - before[k] for k, v in seen.items()},
                           took=clock.now() - started)
            runs.append(outcome)
            clock.advance(max(0.0, SCHEDULE - outcome["took"]))  # until the next tick
            return outcome

        try:
            # 1. Sienge down: every run fails early, retries a bounded number of times, saves no cursor
            sb.set_faults("sienge", {"errors": {503: 1.0}})
            outage_start = clock.now()
            while clock.now() - outage_start < OUTAGE:
                outcome = scheduled_run()
                assert outcome["error"] == "transient" or outcome["failed"], outcome
                assert outcome["requests"]["sienge"] <= 5 * 4, "more than max_attempts per stream"
                assert outcome["requests"]["cvcrm"] == 0
            assert _cursors(chaos_store, tenant.id) == {}
            sienge_down_runs = len(runs)

            # 2. Sienge back, CV CRM down: reads go on, writes fail transiently, cursors stay behind
            sb.set_faults("sienge", {})
            sb.set_faults("cvcrm", {"errors": {503: 1.0}})
            outage_start = clock.now()
            while clock.now() - outage_start < OUTAGE:
                outcome = scheduled_run()
                assert outcome["error"] == "transient" or outcome["failed"], outcome
            assert deadletters.list_open(chaos_store, tenant.id) == [], "an outage must not dead-letter anything"
            assert _crm_state(sb)[1] == {}, "no sale was written while the CRM was down"

            # 3. everything back: the next run drains all that waited
            sb.set_faults("cvcrm", {})
            outcome = scheduled_run()
            assert outcome["error"] is None and outcome["failed"] == 0, outcome
            assert _crm_state(sb) == expected
            assert deadletters.list_open(chaos_store, tenant.id) == []
            assert _cursors(chaos_store, tenant.id), "the drained run saves its cursors"
            again = scheduled_run()
            assert again["requests"]["cvcrm"] == 0, "a drained import re-run writes nothing"
        finally:
            sienge.close()
            cvcrm.close()

    # politeness: every declared budget window holds at most the declared amount of requests
    windows_checked = 0
    for system, times in seen.items():
        spec_limit = load_spec(system).rate_limit
        for bucket in buckets_for(spec_limit, f"outage:{system}"):
            field = bucket.key.rsplit(":", 1)[1]
            allowed = getattr(spec_limit, field)
            assert _max_in_window(times, WINDOWS[field]) <= allowed, f"{system} exceeded {allowed} {field}"
            windows_checked += 1
    assert windows_checked >= 2
    outage_requests = sum(r["requests"]["sienge"] + r["requests"]["cvcrm"] for r in runs[:-2])
    with chaos_store.session() as session:
        cursors = session.scalar(select(func.count()).select_from(SyncCursor).where(SyncCursor.tenant == tenant.id))
    figures.add(outage_runs=len(runs) - 2, outage_simulated_hours=2 * OUTAGE / 3600,
                outage_requests=outage_requests, sienge_down_runs=sienge_down_runs,
                backoff_seconds_simulated=round(clock.slept, 1), records=len(expected[0]) + len(expected[1]),
                dead_letters=0, lost=0, budget_windows_checked=windows_checked,
                budget_windows_exceeded=0, cursors_saved=cursors)

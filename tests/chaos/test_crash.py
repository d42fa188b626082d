"""SIGKILL at random points of import, dispatch, back-sync and the webhook gateway, then restart.

Workers are forked processes (a fork server preloads specs and mappings so a worker starts hot) that
share a SQLite state store file with the test; each is killed after a random delay while it works.
After the kills a restarted run finishes the job and the same invariants as the fault suite hold.
Leases are compressed (production: minutes; here: under a second) so a restart does not wait them out
in real time.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors.sandbox import start_sandbox
from orchestration.gateway.app import create_app
from orchestration.gateway.verify import verify_routes
from pipelines import outbox
from pipelines.backsync import completion
from pipelines.backsync.flow import drain_inbox, poll_stale
from pipelines.connections import TenantConnectors, open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.imports.flow import run_import
from pipelines.store import deadletters, open_store
from pipelines.store.models import Envelope, InboxEvent, OutboxItem, PackageLedgerEntry
from ponte.errors import PonteError
from tests.chaos import crash_workers
from tests.chaos.conftest import REPO, SIZE, converge
from tests.pipelines.backsync.helpers import crm_contracts, register_gateway, send_envelope
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.pipelines.imports.test_import_e2e import _crm_state
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

SHORT_LEASE = timedelta(seconds=0.5)


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    open_store(url).dispose()  # migrated before any worker starts
    return url


@pytest.fixture(scope="module")
def forkserver() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.chaos.crash_workers"])
    return ctx


@pytest.fixture(autouse=True)
def _short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finalization and outbox leases of a killed worker expire in well under a second."""
    monkeypatch.setattr(completion, "LEASE", SHORT_LEASE)
    monkeypatch.setitem(outbox.write_once.__kwdefaults__, "lease_seconds", SHORT_LEASE.total_seconds())


def _worker_leases() -> None:
    completion.LEASE = SHORT_LEASE
    outbox.write_once.__kwdefaults__["lease_seconds"] = SHORT_LEASE.total_seconds()


def _killing(ctx: Any, target: Callable[..., None], args: tuple, kills: int, rng: random.Random,
             max_delay: float, more_work: Callable[[], None]) -> tuple[int, int]:
    """Start workers and SIGKILL each after a random delay until ``kills`` of them died working.

    When a worker finished a whole run by itself, ``more_work`` brings new work (new changes, contracts,
    signatures), as production would between two schedules. Returns (kills, workers started).
    """
    killed = started = 0
    while killed < kills:
        assert started < kills * 8, f"only {killed} of {started} workers were still working when killed"
        proc = ctx.Process(target=_run_with_short_leases, args=(target, args))
        proc.start()
        started += 1
        time.sleep(rng.uniform(0.05, max_delay))
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.join(30)
        assert proc.exitcode is not None
        if proc.exitcode == 0:
            more_work()
    return killed, started


def _run_with_short_leases(target: Callable[..., None], args: tuple) -> None:
    _worker_leases()
    target(*args)


# ------------------------------------------------------------------------------------------ import

def _mutate(sb: Any, batch: int, size: int) -> None:
    """Deterministic changes in Sienge: batch ``batch`` changes ``size`` customers' e-mail."""
    ids = sorted(sb.state.sienge.customers)
    for n in range(size):
        customer_id = ids[(batch * size + n) % len(ids)]
        sb.sienge.mutate_customer(customer_id, email=f"crash{customer_id}.{batch}@example.com")


def test_import_killed_at_random_points_ends_in_the_fault_free_crm_state(db_file, forkserver, figures) -> None:
    seed = 29
    rng = random.Random(2911)
    batches = [0]
    with start_sandbox(customers=SIZE.customers, seed=seed, rate_limits=False) as sb:
        tenant = sandbox_tenant(sb, "crash-import", unthrottled=True)
        store = open_store(db_file)
        def more_work() -> None:  # new changes in Sienge before the next schedule
            batches[0] += 1
            _mutate(sb, batches[0], SIZE.mutations)

        killed, started = _killing(forkserver, crash_workers.import_run, (db_file, tenant.model_dump_json()),
                                   SIZE.kills_import, rng, 1.5, more_work)
        with open_connector(tenant, "sienge", store=store) as sienge, open_connector(tenant, "cvcrm", store=store) as cvcrm:
            reports: list[Any] = []
            converge(lambda: reports.append(run_import(store, tenant, sienge, cvcrm)),
                     lambda: reports[-1].total("failed") == 0, 3, "import after the kills")
        crashed = _crm_state(sb)
        assert deadletters.list_open(store, tenant.id) == []
        store.dispose()
    # ground truth: the same seed and the same changes, imported without a crash
    with start_sandbox(customers=SIZE.customers, seed=seed, rate_limits=False) as clean:
        tenant = sandbox_tenant(clean, "clean", unthrottled=True)
        store = open_store(f"sqlite:///{Path(db_file.removeprefix('sqlite:///')).with_name('clean.db')}")
        with open_connector(tenant, "sienge") as sienge, open_connector(tenant, "cvcrm") as cvcrm:
            run_import(store, tenant, sienge, cvcrm)
            for batch in range(1, batches[0] + 1):
                _mutate(clean, batch, SIZE.mutations)
            run_import(store, tenant, sienge, cvcrm)
        expected = _crm_state(clean)
        store.dispose()
    assert crashed == expected, "a record was lost or doubled by a crash"
    figures.add(kills=killed, kills_import=killed, workers=started, change_batches=batches[0],
                records=len(expected[0]) + len(expected[1]), lost=0)


# ------------------------------------------------------------------------------------------ dispatch

def _envelopes_for(sb: Any, contract_id: int) -> int:
    marker = f":contract:{contract_id}:"
    return sum(1 for e in sb.state.docusign.envelopes.values()
               if any(f["name"] == "ponte_key" and marker in f["value"] for f in e["customFields"]["textCustomFields"]))


def test_dispatch_killed_at_random_points_sends_each_envelope_once(db_file, forkserver, figures) -> None:
    rng = random.Random(3301)
    with start_sandbox(customers=10, seed=33, rate_limits=False) as sb:
        store = open_store(db_file)
        tenant = sandbox_tenant(sb, "crash-dispatch", unthrottled=True)
        verify_manager(store, tenant)
        sales = [seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1) for _ in range(SIZE.sales)]

        def more_work() -> None:  # contracts validated in the CRM since the last schedule
            sales.extend(seed_sale(sb, tenant, roles=("titular", "Cônjuge"), pdf_pages=1) for _ in range(2))

        killed, started = _killing(forkserver, crash_workers.dispatch_run, (db_file, tenant.model_dump_json()),
                                   SIZE.kills_dispatch, rng, 0.8, more_work)
        results: list[str] = []

        def restart() -> None:
            try:
                with TenantConnectors(tenant, store) as conns:
                    report = run_dispatch(store, tenant,
                                          DispatchRequest(all_ready=True, lease_seconds=crash_workers.LEASE), conns)
                results.extend(o.result for o in report.outcomes)
                if report.count("deferred"):  # a killed worker's claim: wait out its lease
                    time.sleep(crash_workers.LEASE)
            except PonteError:
                time.sleep(crash_workers.LEASE)

        def recorded() -> bool:
            with store.session() as session:
                rows = set(session.scalars(select(Envelope.contract_id).where(Envelope.tenant == tenant.id)))
            return {str(s.contract_id) for s in sales} <= rows

        converge(restart, recorded, 10, "dispatch after the kills")
        for sale in sales:
            assert _envelopes_for(sb, sale.contract_id) == 1, f"contract {sale.contract_id}"
        with store.session() as session:
            rows = session.scalar(select(func.count()).select_from(Envelope))
            ledger = session.scalar(select(func.count()).select_from(PackageLedgerEntry))
            # writes a killed worker left unsure: a later worker finished them with a single effect
            retried = int(session.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.attempts > 1, OutboxItem.status == "done")) or 0)
        assert rows == ledger == len(sales)
        assert deadletters.list_open(store, tenant.id) == []
        store.dispose()
    figures.add(kills=killed, kills_dispatch=killed, workers=started, records=len(sales), envelopes=len(sales),
                duplicates_prevented=results.count("found") + retried, lost=0)


# ------------------------------------------------------------------------------------------ back-sync

def test_backsync_killed_at_random_points_uploads_each_signed_contract_once(
        db_file, forkserver, figures, tmp_path: Path) -> None:
    rng = random.Random(3701)
    store = open_store(db_file)
    with start_sandbox(customers=10, seed=37, rate_limits=False, docusign_retry_delays=[0.05, 0.1, 0.2]) as sb:
        holder: dict[str, Any] = {}
        with serve_asgi(create_app(store, holder, extra_routes=verify_routes(store))) as url:
            tenant = sandbox_tenant(sb, "crash-backsync", unthrottled=True,
                                    options={"verification_base_url": url, "signature_pages": "all"})
            holder[tenant.id] = tenant
            register_gateway(sb, tenant, store, url)
            envs: list[Any] = []

            def more_work(count: int = 2) -> None:  # more contracts signed since the last run
                batch = [send_envelope(sb, store, tenant, provider="docusign", signers=2, pages=1)
                         for _ in range(count)]
                for env in batch:
                    sb.sign(env.provider_envelope_id, "client")
                    sb.sign(env.provider_envelope_id, "spouse")
                envs.extend(batch)

            def uploads() -> int:
                with store.session() as session:
                    return int(session.scalar(select(func.count()).select_from(OutboxItem).where(
                        OutboxItem.action == "upload_contrato", OutboxItem.status == "done")))

            more_work(SIZE.envelopes)
            killed, started = _killing(forkserver, crash_workers.backsync_run, (db_file, tenant.model_dump_json()),
                                       SIZE.kills_backsync, rng, 1.0, more_work)

            def opener(key: str) -> Any:
                return open_connector(tenant, key, store=store)

            def restart() -> None:
                time.sleep(SHORT_LEASE.total_seconds())
                while drain_inbox(store, tenant, opener, lease_seconds=crash_workers.LEASE).events:
                    pass
                poll_stale(store, tenant, opener, quiet_for=timedelta(0))

            converge(restart, lambda: uploads() == len(envs), 6, "back-sync after the kills")
        for env in envs:
            signed = [c for c in crm_contracts(sb, env.details["reservation_id"]) if c["assinado"] == "S"]
            assert len(signed) == 1, f"contract {env.contract_id}: {len(signed)} signed uploads"
        with store.session() as session:
            assert all(r.status == "completed" for r in session.scalars(select(Envelope)))
            events = session.scalar(select(func.count()).select_from(InboxEvent))
            retried = int(session.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.attempts > 1, OutboxItem.status == "done")) or 0)
            assert session.scalar(select(func.count()).select_from(InboxEvent)
                                  .where(InboxEvent.status.notin_(["done"]))) == 0
        assert deadletters.list_open(store, tenant.id) == []
    store.dispose()
    figures.add(kills=killed, kills_backsync=killed, workers=started, records=len(envs), events=events,
                duplicates_prevented=retried, lost=0)


# ------------------------------------------------------------------------------------------ gateway

HOOK_TOKEN = "sienge-hook-token-demo"  # tenants/demo.yaml's sandbox default


def _start_gateway(sock: socket.socket, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "orchestration.gateway.factory:app_from_environment",
               "--factory", "--fd", str(sock.fileno()), "--log-level", "warning", "--no-access-log",
               "--lifespan", "off"]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),),
                                start_new_session=True)


def test_gateway_killed_while_deliveries_are_in_flight_stores_each_event_once(
        db_file, tmp_path: Path, figures) -> None:
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    demo = (REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8")
    (tenants / "chaos-gw.yaml").write_text(demo.replace("id: demo", "id: chaos-gw", 1), encoding="utf-8")
    env = {"PONTE_DATABASE_URL": db_file, "PONTE_TENANTS_DIR": str(tenants), "PONTE_HOME": str(tmp_path / "home")}
    rng = random.Random(4101)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/chaos-gw/sienge/hooks"
    log = tmp_path / "gateway.log"
    holder = {"proc": _start_gateway(sock, env, log)}
    events = [(str(uuid.uuid4()), rng.randrange(1, 40)) for _ in range(SIZE.gateway_events)]
    resend = {event_id for event_id, _ in events if rng.random() < 0.15}  # providers' own duplicates
    acked: dict[str, int] = {}
    attempts = {"total": 0, "failed": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def send(client: httpx.Client, event_id: str, customer: int) -> None:
        """Send one event until the gateway answers 2xx, as Sienge's hook retries do."""
        while True:
            with lock:
                attempts["total"] += 1
            try:
                answer = client.post(url, json={"customerId": customer}, headers={
                    "authorization": f"Bearer {HOOK_TOKEN}", "x-sienge-event": "CUSTOMER_UPDATED",
                    "x-sienge-id": event_id, "x-sienge-tenant": "demo", "user-agent": "sienge-hooks"})
                if answer.status_code == 200:
                    with lock:
                        acked[event_id] = acked.get(event_id, 0) + 1
                    return
            except httpx.HTTPError:
                pass
            with lock:
                attempts["failed"] += 1
            time.sleep(0.05)

    def provider(chunk: list[tuple[str, int]], seed: int) -> None:
        """Each event once (twice for the provider's own duplicates), then re-sends until the kills end."""
        pick = random.Random(seed)
        with httpx.Client(timeout=5) as client:
            for event_id, customer in chunk:
                for _ in range(2 if event_id in resend else 1):
                    send(client, event_id, customer)
                time.sleep(pick.uniform(0, 0.01))
            while not stop.is_set():  # late retries of deliveries the provider thinks failed
                send(client, *pick.choice(chunk))
                time.sleep(pick.uniform(0, 0.02))

    def healthy() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url.split("/webhooks/")[0] + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("gateway did not come back:\n" + log.read_text(errors="replace")[-3000:])

    killed = [0]
    senders = [threading.Thread(target=provider, args=(events[i::4], i)) for i in range(4)]
    try:
        for thread in senders:
            thread.start()
        while killed[0] < SIZE.kills_gateway:  # kill a serving gateway while deliveries are in flight
            healthy()
            time.sleep(rng.uniform(0.05, 0.5))
            proc = holder["proc"]
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed[0] += 1
            holder["proc"] = _start_gateway(sock, env, log)
        healthy()
        while len(acked) < len(events):
            time.sleep(0.05)
        stop.set()
        for thread in senders:
            thread.join(60)
    finally:
        stop.set()
        proc = holder["proc"]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        sock.close()
    assert set(acked) == {event_id for event_id, _ in events}
    store = open_store(db_file)
    with store.session() as session:
        rows = list(session.execute(select(InboxEvent.event_id, InboxEvent.duplicates)
                                    .where(InboxEvent.tenant == "chaos-gw")))
    store.dispose()
    stored = [event_id for event_id, _ in rows]
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(stored) == {event_id for event_id, _ in events}, "an acknowledged event is missing"
    duplicates = sum(d or 0 for _, d in rows)
    assert duplicates >= len(resend)
    assert killed[0] >= SIZE.kills_gateway
    # every acknowledged copy is stored or counted; a copy committed just before a kill (its answer lost)
    # is resent by the provider and counted too
    assert duplicates >= sum(acked.values()) - len(events), "an acknowledged copy was neither stored nor counted"
    figures.add(kills=killed[0], kills_gateway=killed[0], events=len(events), duplicates_prevented=duplicates,
                gateway_attempts=attempts["total"], gateway_attempts_failed=attempts["failed"], lost=0)

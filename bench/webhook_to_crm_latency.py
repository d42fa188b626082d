"""Webhook-to-CRM latency through Dagster: the completing signature's webhook to the stamped PDF on the CRM.

Issue #8's third figure (goal: p95 under 15 s). Everything on the measured path is the production path,
on loopback:

- the sandbox stand-ins (CV CRM, DocuSign, ...) in this process (one background thread);
- the webhook gateway as `ponte serve` in its own process group;
- a real Dagster daemon (`dagster-daemon run -m orchestration.definitions`) in its own process group,
  DAGSTER_HOME a temp directory: the sensor `signing_webhook_backsync` ticks (its minimum interval is
  1 s, but Dagster's sensor daemon loops every 5 s) and requests a `signature_backsync` run, which the
  instance's run launcher starts (Dagster's default: one `dagster api execute_run` subprocess per run,
  spawned by the daemon's code server; the job itself uses the in-process executor);
- a temp state store (a SQLite file, or with --database-url a fresh PostgreSQL database created on that
  server and dropped at the end) and a temp tenants folder holding one tenant pointing at this sandbox
  and gateway (PONTE_DATABASE_URL, PONTE_TENANTS_DIR and PONTE_HOME are set for both processes).

Method: N DocuSign envelopes are sent the way dispatch records them (tests/pipelines/backsync/helpers.py), with a
signer chain (default 2 signers); the first signers sign during a warm-up that ends when the daemon has
drained the inbox and no run is active. Then each envelope's final signer signs, one every --interval
seconds, so latency is measured per envelope and not on a flood. For each envelope:

- t0 = when the gateway accepted (answered 2xx to) the first webhook of the final signature that says
  the envelope is complete (`recipient-completed` of the last signer or `envelope-completed`): the time
  the sandbox's webhook dispatcher records on receiving the 2xx;
- t1 = when a PDF marked signed appears on the CV CRM reservation in the sandbox's state (polled every
  50 ms); afterwards the bench checks that it is the stamped file (its SHA-256 is the envelope's
  `signed_sha256`) and that it arrived exactly once.

Latency = t1 - t0. The second table splits it with Dagster's run records and event log and the store's
audit rows (the run that uploaded each PDF is in its `crm_contract_uploaded` row), at the milestones of
that run: created by the sensor, dequeued (RUN_STARTING), run process executing (RUN_START), step
started, this envelope's first state change in the run, PDF stamped, PDF on the CRM. A milestone
already past at t0 (the run was started for earlier webhooks) counts zero, so the parts add up to
t1 - t0 for every envelope.

Dagster instances (--instance; the run launcher is Dagster's DefaultRunLauncher in all three):
- default: no instance settings, what `ponte ui` gets: SQLite storage in DAGSTER_HOME and Dagster's
  default run coordinator, the QueuedRunCoordinator (the daemon dequeues every 5 s, up to 10 runs);
- deploy: deploy/dagster.yaml.example as docs/deploy.md recommends: Dagster's storage on PostgreSQL (a
  fresh database on the --database-url server) and the QueuedRunCoordinator limited to one run per
  tenant partition at a time (max 8 runs). Needs --database-url;
- direct: SQLite storage and the DefaultRunCoordinator (the sensor daemon launches each run as soon as
  it requests it, no queue): what removing the queue would gain.

    .venv/bin/python bench/webhook_to_crm_latency.py [--envelopes 20] [--interval 1.5] [--signers 2]
    .venv/bin/python bench/webhook_to_crm_latency.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/webhook_to_crm_latency.py --instance deploy --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints the figures (p50, p95, max, count, the breakdown, Dagster's runs and sensor ticks); exits 1 when
the goal is missed or an envelope never reached the CRM. Takes about 1.5-2 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.process_groups import group_alive  # noqa: E402

GOAL_P95_S = 15.0
JOB = "signature_backsync"
SENSOR = "signing_webhook_backsync"
TENANT = "latency"
COMPLETING = ("recipient-completed", "envelope-completed")


# ------------------------------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _s(value: float) -> str:
    return "-" if value != value else f"{value:.2f} s"  # NaN → "-"


def _epoch(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, datetime) else float(value)


class Group:
    """A child process in its own session (process group); stopping it stops everything it started."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 25) -> str:
        from ponte.redaction import redact

        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return redact("\n".join(text))

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after 15 s."""
        pgid = self.proc.pid  # the session leader's pid is the group id (start_new_session)
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            if self._gone(pgid, wait):
                break
        self._out.close()

    def _gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not group_alive(pgid):
                return True
            time.sleep(0.1)
        return False


# ------------------------------------------------------------------------------------------ databases


@dataclass
class Databases:
    store_url: str
    dagster_url: str | None = None  # psycopg2 URL for the deploy instance
    created: list[str] = field(default_factory=list)
    admin_url: str | None = None

    def drop(self) -> None:
        if not self.created or not self.admin_url:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _databases(args: argparse.Namespace, tmp: Path) -> Databases:
    if not args.database_url:
        return Databases(store_url=f"sqlite:///{tmp / 'ponte.db'}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    suffix = uuid.uuid4().hex[:8]
    dbs = Databases(store_url="", admin_url=args.database_url)
    names = {"store": f"ponte_bench_latency_{suffix}"}
    if args.instance == "deploy":
        names["dagster"] = f"ponte_bench_latency_dagster_{suffix}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            dbs.created.append(name)
    admin.dispose()
    base = make_url(args.database_url)
    dbs.store_url = base.set(database=names["store"]).render_as_string(hide_password=False)
    if "dagster" in names:
        dbs.dagster_url = (base.set(drivername="postgresql+psycopg2", database=names["dagster"])
                           .render_as_string(hide_password=False))
    return dbs


# ------------------------------------------------------------------------------------------ setup


def _dagster_home(tmp: Path, instance: str) -> Path:
    home = tmp / "dagster"
    home.mkdir()
    (tmp / "artifacts").mkdir()
    if instance == "deploy":
        text = (ROOT / "deploy" / "dagster.yaml.example").read_text(encoding="utf-8")
    elif instance == "direct":
        text = ("run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
                "telemetry:\n  enabled: false\n")
    else:  # Dagster's defaults (what `dagster dev` and `ponte ui` use), telemetry off
        text = "telemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(text, encoding="utf-8")
    return home


def _write_tenant(sb: Any, tmp: Path, gateway_url: str) -> Any:
    from tests.support.tenants import sandbox_tenant

    tenant = sandbox_tenant(sb, TENANT, options={"verification_base_url": gateway_url})
    folder = tmp / "tenants"
    folder.mkdir()
    (folder / f"{TENANT}.yaml").write_text(yaml.safe_dump(tenant.model_dump(mode="json")), encoding="utf-8")
    return tenant


def _wait_http(url: str, what: str, group: Group, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group.alive():
            raise RuntimeError(f"{what} exited:\n{group.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer in {timeout:.0f} s:\n{group.tail()}")


# ------------------------------------------------------------------------------------------ measuring


@dataclass
class Sample:
    envelope_id: int
    contract: str
    provider_id: str
    reservation: int
    signed_at: float = 0.0  # the final sign call
    t0: float | None = None  # gateway accepted the completing webhook
    t1: float | None = None  # signed PDF on the CRM reservation
    run_id: str | None = None
    begun_at: float | None = None  # the uploading run's first state change of this envelope
    stamped_at: float | None = None
    verified: str = ""

    @property
    def latency(self) -> float | None:
        return None if self.t0 is None or self.t1 is None else self.t1 - self.t0


def _watch_crm(sb: Any, samples: list[Sample], stop: threading.Event, period: float = 0.05) -> None:
    """Poll the sandbox's CV CRM state; stamp t1 when a PDF marked signed lands on a sample's reservation."""
    pending = {s.reservation: s for s in samples}
    contratos = sb.state.cvcrm.contratos
    while pending and not stop.is_set():
        with sb.cvcrm.lock:
            arrived = [r for r in pending if any(c.get("assinado") == "S" for c in contratos.get(r, ()))]
        now = time.time()
        for reservation in arrived:
            pending.pop(reservation).t1 = now
        stop.wait(period)


def _inbox_busy(store: Any) -> tuple[int, int]:
    """(events new or being processed, events failed and waiting for a retry) of the bench tenant."""
    from sqlalchemy import func, select

    from pipelines.store.models import InboxEvent

    with store.session() as session:
        rows = dict(session.execute(
            select(InboxEvent.status, func.count()).where(InboxEvent.tenant == TENANT).group_by(InboxEvent.status)
        ).all())
    return rows.get("new", 0) + rows.get("processing", 0), rows.get("failed", 0)


def _active_runs(instance: Any) -> int:
    from dagster import DagsterRunStatus, RunsFilter

    busy = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    return instance.get_runs_count(filters=RunsFilter(job_name=JOB, statuses=busy))


def _settle(store: Any, instance: Any, daemon: Group, timeout: float) -> float:
    """Wait until the inbox is drained and no run is active (twice in a row, 1 s apart)."""
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < timeout:
        if not daemon.alive():
            raise RuntimeError(f"the Dagster daemon exited:\n{daemon.tail()}")
        busy, _failed = _inbox_busy(store)
        quiet = quiet + 1 if busy == 0 and _active_runs(instance) == 0 else 0
        if quiet >= 2:
            return time.monotonic() - start
        time.sleep(1.0)
    raise RuntimeError(f"the inbox was not drained in {timeout:.0f} s (daemon log tail):\n{daemon.tail()}")


# ------------------------------------------------------------------------------------------ analysis


@dataclass
class RunInfo:
    run_id: str
    trigger: str
    status: str
    created: float
    starting: float | None  # RUN_STARTING: the coordinator took it and the launcher was called
    started: float | None  # RUN_START: the run process is up and executing
    step_start: float | None
    step_end: float | None
    ended: float | None
    events: int | None = None


def _runs(instance: Any, since: float) -> list[RunInfo]:
    from dagster import DagsterEventType, RunsFilter

    out = []
    for record in instance.get_run_records(filters=RunsFilter(job_name=JOB)):
        created = _epoch(record.create_timestamp)
        if created is None or created < since:
            continue
        run = record.dagster_run
        stamps: dict[str, float] = {}
        events = None
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type
            if kind in (DagsterEventType.RUN_STARTING, DagsterEventType.RUN_START, DagsterEventType.STEP_START):
                stamps.setdefault(kind.value, entry.timestamp)
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                stamps["step_end"] = entry.timestamp
            elif kind == DagsterEventType.STEP_OUTPUT:
                with contextlib.suppress(Exception):
                    meta = event.event_specific_data.metadata
                    events = int(meta["events"].value) if "events" in meta else None
        out.append(RunInfo(
            run.run_id, run.tags.get("ponte/trigger", "manual"), run.status.value, created,
            stamps.get(DagsterEventType.RUN_STARTING.value), stamps.get(DagsterEventType.RUN_START.value),
            stamps.get(DagsterEventType.STEP_START.value), stamps.get("step_end"), _epoch(record.end_time), events,
        ))
    return sorted(out, key=lambda r: r.created)


def _sensor_ticks(instance: Any, since: float) -> list[Any]:
    for state in instance.all_instigator_state():
        if state.name == SENSOR:
            return sorted(instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since, limit=100000),
                          key=lambda t: t.timestamp)
    return []


def _fill_from_store(store: Any, sb: Any, samples: list[Sample]) -> None:
    from sqlalchemy import select

    from pipelines.store.models import AuditEntry, Envelope

    by_id = {str(s.envelope_id): s for s in samples}
    changes: dict[tuple[str, str | None], float] = {}
    with store.session() as session:
        for row in session.scalars(select(AuditEntry).where(
                AuditEntry.tenant == TENANT, AuditEntry.entity == "envelope",
                AuditEntry.action.in_(("status_changed", "signed_document_stored", "crm_contract_uploaded")))):
            sample = by_id.get(row.entity_id)
            if sample is None:
                continue
            at = row.at.timestamp()
            if row.action == "status_changed":
                key = (row.entity_id, row.run_id)
                changes[key] = min(changes.get(key, at), at)
            elif row.action == "signed_document_stored":
                sample.stamped_at = at
            else:
                sample.run_id = row.run_id
        for key, sample in by_id.items():
            sample.begun_at = changes.get((key, sample.run_id)) if sample.run_id else None
        envelopes = {str(e.id): e for e in session.scalars(select(Envelope).where(Envelope.tenant == TENANT))}
    for key, sample in by_id.items():
        env = envelopes.get(key)
        with sb.cvcrm.lock:
            signed = [c for c in sb.state.cvcrm.contratos.get(sample.reservation, ()) if c.get("assinado") == "S"]
            files = [sb.state.cvcrm.files.get(c["link"].rsplit("/", 1)[1], b"") for c in signed]
        if env is None or not signed:
            sample.verified = "missing"
        elif len(signed) > 1:
            sample.verified = f"{len(signed)} copies"
        elif hashlib.sha256(files[0]).hexdigest() != env.signed_sha256:
            sample.verified = "not the stamped file"
        else:
            sample.verified = "ok"


def _t0_from_deliveries(sb: Any, samples: list[Sample]) -> None:
    records = sb.dispatcher.records("docusign")
    for sample in samples:
        prefix = f"{sample.provider_id}:"
        accepted = [a.at for a in records if a.outcome == "delivered" and a.event in COMPLETING
                    and a.event_id.startswith(prefix) and a.at >= sample.signed_at]
        sample.t0 = min(accepted) if accepted else None


PARTS = [
    ("sensor: webhook accepted -> run created (queued)", "created"),
    ("queue: -> dequeued, launch called (RUN_STARTING)", "starting"),
    ("launch: -> run process executing (RUN_START)", "started"),
    ("run set-up: -> step started", "step_start"),
    ("step: claim, earlier envelopes of the run", "begun"),
    ("step: this envelope: apply, provider read, download, stamp", "stamped"),
    ("step: CRM upload -> PDF on the contract", None),
]


def _breakdown(sample: Sample, run: RunInfo | None) -> dict[str, float] | None:
    """Split t1 - t0 at the run's milestones; a milestone before t0 (a run already going) adds nothing."""
    if run is None or sample.t0 is None or sample.t1 is None:
        return None
    stamps = {"created": run.created, "starting": run.starting, "started": run.started,
              "step_start": run.step_start, "begun": sample.begun_at, "stamped": sample.stamped_at}
    cursor, out = sample.t0, {}
    for label, key in PARTS:
        mark = sample.t1 if key is None else stamps[key]
        if mark is None:
            out[label] = 0.0
            continue
        mark = min(mark, sample.t1)
        out[label] = max(0.0, mark - cursor)
        cursor = max(cursor, mark)
    return out


def _max_concurrency(runs: list[RunInfo]) -> int:
    points = []
    for run in runs:
        if run.started is not None:
            points += [(run.started, 1), (run.ended or run.started, -1)]
    best = live = 0
    for _, delta in sorted(points):
        live += delta
        best = max(best, live)
    return best


# ------------------------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dagster import DagsterInstance

    from connectors.sandbox.launcher import start_sandbox
    from pipelines.store import open_store
    from tests.pipelines.backsync.helpers import register_gateway, send_envelope

    roles = ["client", "spouse", "witness"][: args.signers]
    groups: list[Group] = []
    dbs: Databases | None = None
    instance = store = sb = None
    stop = threading.Event()
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="ponte-bench-latency-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            load_start = os.getloadavg()[0]
            dbs = _databases(args, tmp)
            store = open_store(dbs.store_url)  # migrated before the gateway and the daemon start
            sb = start_sandbox(customers=10, seed=11, rate_limits=False)
            gateway_port = _free_port()
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            tenant = _write_tenant(sb, tmp, gateway_url)
            home = _dagster_home(tmp, args.instance)
            env = {**os.environ, "PONTE_DATABASE_URL": dbs.store_url, "PONTE_TENANTS_DIR": str(tmp / "tenants"),
                   "PONTE_HOME": str(tmp / "home"), "DAGSTER_HOME": str(home),
                   "DAGSTER_ARTIFACT_DIR": str(tmp / "artifacts"), "PYTHONUNBUFFERED": "1"}
            if dbs.dagster_url:
                env["DAGSTER_POSTGRES_URL"] = dbs.dagster_url
            os.environ.update({k: env[k] for k in ("PONTE_HOME", "DAGSTER_HOME", "DAGSTER_ARTIFACT_DIR")})
            if dbs.dagster_url:
                os.environ["DAGSTER_POSTGRES_URL"] = dbs.dagster_url

            # create Dagster's storage here, once: the daemon and its code server would otherwise race to
            # initialize the same SQLite files (two alembic heads)
            instance = DagsterInstance.from_config(str(home))
            instance.all_instigator_state()
            instance.get_runs_count()

            gateway = Group("gateway", [sys.executable, "-c", "from orchestration.cli.app import main; main()",
                                        "serve", "--port", str(gateway_port)], env, tmp / "gateway.log")
            groups.append(gateway)
            daemon_started = time.monotonic()
            daemon = Group("daemon", [sys.executable, "-m", "dagster._daemon", "run", "-m",
                                      "orchestration.definitions"], env, tmp / "daemon.log")
            groups.append(daemon)
            _wait_http(f"{gateway_url}/health", "the gateway", gateway)
            register_gateway(sb, tenant, store, gateway_url)

            # the envelopes, as dispatch leaves them; the first signers sign during the warm-up
            samples = []
            for _ in range(args.envelopes):
                env_row = send_envelope(sb, store, tenant, provider="docusign", signers=args.signers)
                samples.append(Sample(env_row.id, env_row.contract_id, str(env_row.provider_envelope_id),
                                      int(env_row.details["reservation_id"])))
            for role in roles[:-1]:
                for sample in samples:
                    sb.sign(sample.provider_id, role)
            warm = _settle(store, instance, daemon, timeout=args.warmup_timeout)
            warmup_s = time.monotonic() - daemon_started
            print(f"warm-up: daemon up and inbox drained {warmup_s:.1f} s after start "
                  f"(last {warm:.1f} s waiting for runs)", flush=True)

            # the measurement: one final signature every --interval seconds
            measure_from = time.time()
            watcher = threading.Thread(target=_watch_crm, args=(sb, samples, stop), daemon=True)
            watcher.start()
            begin = time.monotonic()
            for i, sample in enumerate(samples):
                delay = begin + i * args.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sample.signed_at = time.time()
                sb.sign(sample.provider_id, roles[-1])
            watcher.join(args.timeout)
            stop.set()
            _settle(store, instance, daemon, timeout=60)
            load_end = os.getloadavg()[0]
            _busy, failed = _inbox_busy(store)
            if failed:
                print(f"note: {failed} inbox event(s) left 'failed', waiting for a retry", flush=True)

            _t0_from_deliveries(sb, samples)
            _fill_from_store(store, sb, samples)
            runs = _runs(instance, measure_from)
            ticks = _sensor_ticks(instance, measure_from)
            return _report(args, samples, runs, ticks, load_start, load_end, _describe(instance))
        finally:
            stop.set()
            for group in reversed(groups):
                group.stop()
                if args.logs:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    (args.logs / group.log.name).write_bytes(group.log.read_bytes())
            if instance is not None:
                instance.dispose()
            if sb is not None:
                sb.stop()
            if store is not None:
                store.dispose()
            if dbs is not None:
                dbs.drop()
            os.environ.clear()
            os.environ.update(saved_env)


def _describe(instance: Any) -> str:
    """The instance's storage, run coordinator and run launcher, as configured (not as assumed)."""
    coordinator = instance.run_coordinator
    text = f"{type(instance.run_storage).__name__}, {type(coordinator).__name__}"
    interval = getattr(coordinator, "dequeue_interval_seconds", None)
    if interval is not None:
        limits = getattr(coordinator, "get_run_queue_config", lambda: None)()
        text += f" (dequeue every {interval} s"
        if limits is not None:
            text += f", max_concurrent_runs {limits.max_concurrent_runs}"
            if limits.tag_concurrency_limits:
                text += ", one run per tenant partition"
        text += ")"
    return text + f", {type(instance.run_launcher).__name__}"


def _report(args: argparse.Namespace, samples: list[Sample], runs: list[RunInfo], ticks: list[Any],
            load_start: float, load_end: float, dagster: str) -> dict[str, Any]:
    by_run = {r.run_id: r for r in runs}
    latencies = [s.latency for s in samples if s.latency is not None]
    from_sign = [s.t1 - s.signed_at for s in samples if s.t1 is not None]
    p50, p95 = _pct(latencies, 50), _pct(latencies, 95)
    arrived = sum(1 for s in samples if s.t1 is not None)
    bad = [s for s in samples if s.verified != "ok"]
    met = arrived == len(samples) and not bad and p95 < GOAL_P95_S

    store_kind = "PostgreSQL" if args.database_url else "SQLite"
    print()
    print(f"webhook-to-CRM latency: {len(samples)} DocuSign envelopes, {args.signers} signer(s), one final "
          f"signature every {args.interval:g} s; store {store_kind}")
    print(f"Dagster instance '{args.instance}': {dagster}; sensor {SENSOR} (minimum_interval_seconds=1); "
          "job executor in_process")
    print(f"machine: {os.cpu_count()} cores, load average {load_start:.2f} at the start, {load_end:.2f} at the end")
    print()
    print("| from -> to | count | p50 | p95 | max |")
    print("|---|---|---|---|---|")
    print(f"| completing webhook accepted by the gateway -> stamped PDF on the CRM contract | {len(latencies)} | "
          f"{_s(p50)} | {_s(p95)} | {_s(max(latencies, default=float('nan')))} |")
    print(f"| final signature (sandbox sign call) -> stamped PDF on the CRM contract | {len(from_sign)} | "
          f"{_s(_pct(from_sign, 50))} | {_s(_pct(from_sign, 95))} | {_s(max(from_sign, default=float('nan')))} |")
    print()
    print(f"reached the CRM: {arrived}/{len(samples)}; stamped file, exactly once: "
          f"{len(samples) - len(bad)}/{len(samples)}" + (f" (problems: {sorted({s.verified for s in bad})})"
                                                         if bad else ""))
    print(f"goal p95 < {GOAL_P95_S:g} s: {'met' if met else 'NOT met'} (p95 = {_s(p95)})")

    parts = [b for s in samples if (b := _breakdown(s, by_run.get(s.run_id or ""))) is not None]
    print()
    print(f"where the time goes ({len(parts)} envelopes whose uploading run is known):")
    print()
    print("| part | p50 | p95 | max | share of the total |")
    print("|---|---|---|---|---|")
    total = sum(sum(p.values()) for p in parts) or 1.0
    for label, _ in PARTS:
        values = [p[label] for p in parts]
        print(f"| {label} | {_s(_pct(values, 50))} | {_s(_pct(values, 95))} | {_s(max(values, default=0.0))} | "
              f"{100 * sum(values) / total:.0f} % |")

    webhook_runs = [r for r in runs if r.trigger == "webhook"]
    queue = [r.starting - r.created for r in runs if r.starting is not None]
    launch = [r.started - r.starting for r in runs if r.started is not None and r.starting is not None]
    setup = [r.step_start - r.started for r in runs if r.started is not None and r.step_start is not None]
    step = [r.step_end - r.step_start for r in runs if r.step_end is not None and r.step_start is not None]
    uploading = {s.run_id for s in samples if s.run_id}
    empty = sum(1 for r in runs if r.events == 0)
    intervals = [b.timestamp - a.timestamp for a, b in itertools.pairwise(ticks)]
    print()
    print(f"runs during the measurement: {len(runs)} ({len(webhook_runs)} from the sensor, "
          f"{len(runs) - len(webhook_runs)} other), statuses {sorted({r.status for r in runs})}; "
          f"{len(uploading)} uploaded at least one PDF, {empty} found no event to drain; "
          f"at most {_max_concurrency(runs)} at once")
    print(f"per run: created -> RUN_STARTING p50 {_s(_pct(queue, 50))}, p95 {_s(_pct(queue, 95))}; "
          f"RUN_STARTING -> RUN_START p50 {_s(_pct(launch, 50))}, p95 {_s(_pct(launch, 95))}; "
          f"RUN_START -> STEP_START p50 {_s(_pct(setup, 50))}; step p50 {_s(_pct(step, 50))}, "
          f"p95 {_s(_pct(step, 95))}")
    print(f"sensor ticks: {len(ticks)}, {sum(1 for t in ticks if t.run_ids)} requested runs; interval between "
          f"ticks p50 {_s(_pct(intervals, 50))}, p95 {_s(_pct(intervals, 95))}, max "
          f"{_s(max(intervals, default=float('nan')))}")
    return {
        "goal_met": met, "envelopes": len(samples), "arrived": arrived, "verified": len(samples) - len(bad),
        "p50_s": p50, "p95_s": p95, "max_s": max(latencies, default=None), "instance": args.instance,
        "dagster": dagster,
        "store": store_kind, "runs": len(runs), "runs_uploading": len(uploading), "runs_empty": empty,
        "max_concurrent_runs": _max_concurrency(runs), "launch_p50_s": _pct(launch, 50),
        "tick_interval_p50_s": _pct(intervals, 50),
        "breakdown_p50_s": {label: _pct([p[label] for p in parts], 50) for label, _ in PARTS},
        "samples": [{"contract": s.contract, "latency_s": s.latency, "from_sign_s": None if s.t1 is None
                     else s.t1 - s.signed_at, "run_id": s.run_id, "verified": s.verified} for s in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envelopes", type=int, default=20, help="envelopes measured (default 20)")
    parser.add_argument("--interval", type=float, default=1.5,
                        help="seconds between two final signatures (default 1.5)")
    parser.add_argument("--signers", type=int, default=2, choices=(1, 2, 3),
                        help="signers per envelope; all but the last sign during the warm-up (default 2)")
    parser.add_argument("--instance", choices=("default", "deploy", "direct"), default="default",
                        help="Dagster instance: default (Dagster's defaults: SQLite, queued runs), deploy "
                             "(deploy/dagster.yaml.example: PostgreSQL, queued runs, one per tenant; needs "
                             "--database-url) or direct (SQLite, DefaultRunCoordinator: no queue)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server URL (postgresql+psycopg://...): the state store (and the deploy "
                             "instance's Dagster storage) go in fresh databases created there and dropped "
                             "at the end (default: SQLite files in a temp directory)")
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="seconds to wait, after the last signature, for the PDFs to reach the CRM")
    parser.add_argument("--warmup-timeout", type=float, default=120.0,
                        help="seconds to wait for the daemon to drain the warm-up webhooks")
    parser.add_argument("--logs", type=Path, default=None,
                        help="copy the gateway's and the Dagster daemon's logs into this folder at the end")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    args = parser.parse_args()
    if args.instance == "deploy" and not args.database_url:
        parser.error("--instance deploy needs --database-url (Dagster's storage goes on PostgreSQL)")
    # SIGTERM (e.g. a CI timeout) must still stop the child process groups and drop the databases
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary = run(args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return 0 if summary["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

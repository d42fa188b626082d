"""Issue #6: customer import throughput and API efficiency, side by side with dlt in the same run.

What is measured, against ONE Sienge sandbox running in its own process (so its event loop does not
compete with the measured code for the GIL):

* **Ponte, stage path**: the real ``ImportRun`` (``pipelines/imports/flow.py``) over the customers
  stream, page by page (200 a page) → ``sienge/customer_to_person`` + Person validation →
  ``cvcrm/person_to_cliente`` → content hash → batch upsert of the id map (+ audit rows) in a fresh state
  store. The CRM write is replaced by a stand-in that sends nothing (``NoCrm``): the flow has no
  "stage only" option yet, so that is the one line that differs from production. Everything else is
  the production default: pages read ahead in a thread, mapping in ``PONTE_IMPORT_WORKERS`` worker
  processes (default: the cores, at most 4). A production run (one process per run) starts the
  workers' fork server every time, so the benchmark stops it after each Ponte run: every run pays
  that start (~0.6 s of CPU), not only the first.
* **dlt**: ``rest_api_source`` on the same endpoint of the same server (HTTP basic auth, offset
  paginator limit 200 with the total at ``resultSetMetadata.count``, ``data_selector: results``,
  ``primary_key: id``, ``write_disposition: merge``) into SQLite through dlt's SQLAlchemy destination,
  timed over ``pipeline.run`` (extract + normalize + load). Defaults otherwise.
* **API efficiency**: Sienge read calls per imported record in the Ponte run above; then a full
  ``run_import`` with CRM writes on a smaller sandbox, and the CRM calls of an immediate re-run with
  nothing changed (incremental, and forced full).

The sides run interleaved (Ponte, dlt, dlt, Ponte, ...) ``--repeat`` times; the table shows medians.

**Data.** ``--profile realistic`` (the default) seeds the sandbox with people as real ERPs hold them
(docs/sandbox.md): about a third of the customers must fail, so Ponte validates, refuses and
dead-letters them (each with its reason) while dlt loads every record as it comes. ``--profile clean``
is the data of the figures before the realistic profile existed (every record valid). Both sides
always read the same server, so the same records. Ponte logs each dead letter at WARNING on stderr, as
in production: redirect stderr (``2>import.log``) to keep the table readable.

    .venv/bin/python bench/import_vs_dlt.py [--customers 50000] [--repeat 3] [--postgres]
        [--profile realistic|clean] [--pyinstrument FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# dlt: no usage reports leave this machine, and its working files stay in our temp dirs
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("PONTE_LOG_LEVEL", "WARNING")
# dlt 1.31's SQLAlchemy merge job trips SQLAlchemy 2.1 deprecation warnings; they are not ours to fix
warnings.filterwarnings("ignore", module=r"dlt\.")

SANDBOX_USER, SANDBOX_PASSWORD = "ponte-sandbox", "sandbox-secret"
PAGE = 200
#: issue #17: at least 3× dlt on the realistic (dirty) profile, 4× on the clean one (SQLite)
GOALS = {"realistic": 3.0, "clean": 4.0}
POSTGRES_ADMIN = os.environ.get("PONTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_CHILD = r"""
import json, os, sys
from collections import Counter
from connectors.sandbox import start_sandbox
sb = start_sandbox(customers=int(sys.argv[1]), seed=int(sys.argv[2]), rate_limits=False, profile=sys.argv[3])
truth = sb.seed_data
info = {"urls": sb.urls, "api": sb.api, "smtp": [sb.smtp.host, sb.smtp.port], "pid": os.getpid(),
        "customers": len(sb.state.sienge.customers), "contracts": len(sb.state.sienge.contracts),
        "profile": truth.profile, "expected_failures": len(truth.expected_failures),
        "expected_by_reason": dict(Counter(truth.expected_failures.values()).most_common()),
        "expected_sale_failures": len(truth.expected_sale_failures)}
print("SANDBOX " + json.dumps(info), flush=True)
sys.stdin.read()   # until the parent closes our stdin
sb.stop()
"""


# ------------------------------------------------------------------------------------ the sandbox

@contextlib.contextmanager
def sandbox_process(customers: int, seed: int = 7, profile: str = "clean") -> Iterator[SimpleNamespace]:
    """A sandbox in a child process (its own GIL, its own memory); yields what ``sandbox_tenant`` needs,
    and the ground truth's counts (``expected_failures``: customers that must fail; 0 for ``clean``)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(customers), str(seed), profile],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        info: dict[str, Any] | None = None
        for line in proc.stdout:
            if line.startswith("SANDBOX "):
                info = json.loads(line[len("SANDBOX "):])
                break
        if info is None:
            raise RuntimeError(f"the sandbox process exited ({proc.wait()}) before it was ready")
        yield SimpleNamespace(
            urls=info["urls"], api=info["api"], smtp=SimpleNamespace(host=info["smtp"][0], port=info["smtp"][1]),
            pid=info["pid"], customers=info["customers"], contracts=info["contracts"],
            profile=info["profile"], expected_failures=info["expected_failures"],
            expected_by_reason=info["expected_by_reason"], expected_sale_failures=info["expected_sale_failures"],
            seeded_in=time.perf_counter() - started,
        )
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------ stores

@contextlib.contextmanager
def fresh_store(kind: str, workdir: Path) -> Iterator[Any]:
    """A migrated, empty state store: a new SQLite file, or a new PostgreSQL database (dropped after)."""
    from pipelines.store import open_store

    if kind == "sqlite":
        path = workdir / f"ponte-{uuid.uuid4().hex[:8]}.db"
        store = open_store(f"sqlite:///{path}")
        try:
            yield store
        finally:
            store.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ponte_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = open_store(make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False))
    try:
        yield store
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ------------------------------------------------------------------------------------ Ponte

class NoCrm:
    """Stands in for the CV CRM connector on the stage path: counts the writes it was asked for, sends none."""

    name = "cvcrm"

    def __init__(self) -> None:
        self.api_calls = 0
        self.skipped_writes = 0

    def call(self, action: str, record: Any = None, **_kwargs: Any) -> Any:
        self.skipped_writes += 1
        return SimpleNamespace(id=None, data={}, status=200)

    def close(self) -> None:
        pass


def _stop_fork_server() -> None:
    """The next run starts the workers' fork server again, as a run in its own process would."""
    import multiprocessing.forkserver

    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)  # private; without it later runs are a little faster
    if stop is not None:
        stop()


def ponte_stage(sandbox: SimpleNamespace, store: Any, profile: Path | None = None) -> dict[str, Any]:
    """The import's customer stage into ``store``: read, map, validate, hash, store; no CRM writes."""
    from sqlalchemy import func, select

    from pipelines.connections import open_connector
    from pipelines.imports.flow import ImportRequest, ImportRun
    from pipelines.store.models import IdMap
    from tests.support.tenants import sandbox_tenant

    tenant = sandbox_tenant(sandbox, unthrottled=True)
    sienge = open_connector(tenant, "sienge", store=store)
    crm = NoCrm()
    request = ImportRequest(full=True, entities=("customer",), run_id=f"bench-{uuid.uuid4().hex[:8]}")
    run = ImportRun(store, tenant, sienge, crm, request)  # type: ignore[arg-type]
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    started = time.perf_counter()
    try:
        report = run.run()
    finally:
        seconds = time.perf_counter() - started
        _stop_fork_server()
        if profiler is not None:
            profiler.stop()
            profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        sienge.close()
    counts = report.entities["customer"]
    with store.session() as session:
        stored = session.scalar(select(func.count()).select_from(IdMap).where(IdMap.entity == "person"))
    return {
        "records": counts.read,
        "stored": stored,
        "failed": counts.failed,
        "dead_lettered": counts.dead_lettered,
        "seconds": seconds,
        "rps": counts.read / seconds,
        "sienge_calls": report.api_calls["sienge"],
        "crm_calls": report.api_calls["cvcrm"],
        "crm_writes_skipped": crm.skipped_writes,
    }


# ------------------------------------------------------------------------------------ dlt

def dlt_config(sienge_api: str) -> dict[str, Any]:
    return {
        "client": {
            "base_url": sienge_api.rstrip("/") + "/",
            "auth": {"type": "http_basic", "username": SANDBOX_USER, "password": SANDBOX_PASSWORD},
            "paginator": {
                "type": "offset",
                "limit": PAGE,
                "offset_param": "offset",
                "limit_param": "limit",
                "total_path": "resultSetMetadata.count",
            },
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [{"name": "customers", "endpoint": {"path": "customers", "data_selector": "results"}}],
    }


def dlt_load(sandbox: SimpleNamespace, workdir: Path) -> dict[str, Any]:
    """dlt's rest_api source, same endpoint and server, merged into a fresh SQLite file."""
    import sqlite3

    import dlt
    from dlt.sources.rest_api import rest_api_source

    run_dir = Path(tempfile.mkdtemp(prefix="dlt-", dir=workdir))
    database = run_dir / "dlt.db"
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{uuid.uuid4().hex[:8]}",
        pipelines_dir=str(run_dir / "pipelines"),
        destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{database}"),
        dataset_name="sienge",
        progress=None,
    )
    source = rest_api_source(dlt_config(sandbox.api["sienge"]))
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    trace = pipeline.last_trace
    rows = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    records = int(rows.get("customers", 0))
    stored = None
    for candidate in run_dir.glob("*.db"):  # dlt attaches one SQLite file per dataset
        with contextlib.closing(sqlite3.connect(candidate)) as conn:
            found = conn.execute("select name from sqlite_master where type='table' and name='customers'").fetchone()
            if found:
                stored = conn.execute("select count(*) from customers").fetchone()[0]
    child_rows = sum(v for k, v in rows.items() if k.startswith("customers__"))
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"records": records, "stored": stored, "child_rows": child_rows, "seconds": seconds,
            "rps": records / seconds if seconds else 0.0}


# ------------------------------------------------------------------------------------ re-run

def unchanged_rerun(customers: int, store_kind: str, workdir: Path, profile: str = "clean") -> dict[str, Any]:
    """Full import with CRM writes, then an immediate re-run (incremental, then full) with nothing changed."""
    from pipelines.connections import open_connector
    from pipelines.imports.flow import ImportRequest, run_import
    from tests.support.tenants import sandbox_tenant

    with sandbox_process(customers, seed=11, profile=profile) as sandbox, fresh_store(store_kind, workdir) as store:
        tenant = sandbox_tenant(sandbox, unthrottled=True)
        sienge = open_connector(tenant, "sienge", store=store)
        cvcrm = open_connector(tenant, "cvcrm", store=store)
        try:
            out: dict[str, Any] = {"customers": sandbox.customers, "contracts": sandbox.contracts,
                                   "expected_failures": sandbox.expected_failures,
                                   "expected_sale_failures": sandbox.expected_sale_failures}
            for label, request in (
                ("first", ImportRequest()),
                ("rerun_incremental", ImportRequest()),
                ("rerun_full", ImportRequest(full=True)),
            ):
                s0, c0 = sienge.api_calls, cvcrm.api_calls
                started = time.perf_counter()
                report = run_import(store, tenant, sienge, cvcrm, request)
                out[label] = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "read": report.total("read"),
                    "created": report.total("created"),
                    "updated": report.total("updated"),
                    "unchanged": report.total("unchanged"),
                    "dead_lettered": report.total("dead_lettered"),
                    "sienge_calls": sienge.api_calls - s0,
                    "crm_calls": cvcrm.api_calls - c0,
                }
            return out
        finally:
            sienge.close()
            cvcrm.close()


# ------------------------------------------------------------------------------------ main

def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="also run Ponte against a fresh PostgreSQL db")
    parser.add_argument("--rerun-customers", type=int, default=2_000,
                        help="sandbox size of the unchanged re-run check (0 skips it)")
    parser.add_argument("--profile", choices=("realistic", "clean"), default="realistic",
                        help="sandbox data: realistic (dirty, a third must fail; default) or clean (all valid)")
    parser.add_argument("--pyinstrument", type=Path, default=None,
                        help="write a pyinstrument text profile of one extra Ponte run to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    ponte: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    dlt_runs: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="ponte-bench-"))
    try:
        with sandbox_process(args.customers, profile=args.profile) as sandbox:
            print(f"sandbox: {sandbox.customers:,} customers, profile {sandbox.profile}, seeded in "
                  f"{sandbox.seeded_in:.1f} s (pid {sandbox.pid}); load average {load_before[0]:.2f}", flush=True)
            expected = sandbox.expected_failures
            if expected:
                print(f"  ground truth: {expected:,} customers must fail ("
                      + ", ".join(f"{k} {v:,}" for k, v in sandbox.expected_by_reason.items()) + ")", flush=True)
            # warm-up, not counted: each side's first run in this process pays its one-time costs
            # (Ponte: compiling its mappings in the run process; dlt: loading its destination code).
            # Every counted Ponte run still starts its worker processes cold.
            with fresh_store("sqlite", workdir) as store:
                warm_ponte = ponte_stage(sandbox, store)
            warm_dlt = dlt_load(sandbox, workdir)
            print(f"  warm-up (not counted): ponte {warm_ponte['rps']:,.0f} rec/s, dlt {warm_dlt['rps']:,.0f} rec/s",
                  flush=True)
            for rep in range(args.repeat):
                order = ["ponte", "dlt"] if rep % 2 == 0 else ["dlt", "ponte"]
                for side in order:
                    if side == "dlt":
                        result = dlt_load(sandbox, workdir)
                        dlt_runs.append(result)
                        print(f"  run {rep + 1} dlt            {result['rps']:>9,.0f} rec/s "
                              f"({result['records']:,} in {result['seconds']:.1f} s)", flush=True)
                        continue
                    for kind in kinds:
                        with fresh_store(kind, workdir) as store:
                            result = ponte_stage(sandbox, store)
                        ponte[kind].append(result)
                        print(f"  run {rep + 1} ponte/{kind:<10} {result['rps']:>7,.0f} rec/s "
                              f"({result['records']:,} in {result['seconds']:.1f} s, "
                              f"{result['sienge_calls']} Sienge calls, "
                              f"{result['dead_lettered']:,} dead letters)", flush=True)
            if args.pyinstrument:
                with fresh_store("sqlite", workdir) as store:
                    ponte_stage(sandbox, store, profile=args.pyinstrument)
                print(f"profile: {args.pyinstrument}", flush=True)
        rerun = (unchanged_rerun(args.rerun_customers, "sqlite", workdir, args.profile)
                 if args.rerun_customers else None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    dlt_rps = _median(dlt_runs, "rps")
    print()
    print(f"Customer import, {args.customers:,} customers, profile {args.profile}, median of {args.repeat} "
          f"(load average {load_before[0]:.2f} before, {load_after[0]:.2f} after)")
    print("| side | store | records/s | seconds | vs dlt |")
    print("|---|---|---|---|---|")
    for kind in kinds:
        rps = _median(ponte[kind], "rps")
        print(f"| Ponte stage path | {kind} | {rps:,.0f} | {_median(ponte[kind], 'seconds'):.1f} | "
              f"{rps / dlt_rps:.2f}× |")
    print(f"| dlt rest_api, merge | sqlite | {dlt_rps:,.0f} | {_median(dlt_runs, 'seconds'):.1f} | 1.00× |")
    ratio = _median(ponte["sqlite"], "rps") / dlt_rps
    goal = GOALS[args.profile]
    print(f"goal on the {args.profile} profile: Ponte ≥ {goal}× dlt on SQLite: {ratio:.2f}× "
          f"({'met' if ratio >= goal else 'NOT met'})")
    first = ponte["sqlite"][0]
    print()
    print(f"Sienge read calls per imported record: {first['sienge_calls']} / {first['records']:,} = "
          f"{first['sienge_calls'] / first['records']:.4f} (page size {PAGE}, the maximum)")
    print(f"Dead letters per Ponte run: {sorted({r['dead_lettered'] for k in kinds for r in ponte[k]})} "
          f"(ground truth: {expected:,} customers must fail); dlt loads every record as it comes "
          f"(median {_median(dlt_runs, 'records'):,.0f} loaded)")
    if rerun:
        print(f"Unchanged re-run ({rerun['customers']:,} customers, {rerun['contracts']:,} contracts): "
              f"first run {rerun['first']['crm_calls']:,} CRM calls, {rerun['first']['dead_lettered']:,} dead "
              f"letters (ground truth: {rerun['expected_failures']:,} customers and "
              f"{rerun['expected_sale_failures']:,} sales must fail); re-run incremental "
              f"{rerun['rerun_incremental']['crm_calls']} CRM calls, re-run full "
              f"{rerun['rerun_full']['crm_calls']} CRM calls")
    figures = {
        "customers": args.customers, "repeat": args.repeat, "profile": args.profile,
        "expected_failures": expected, "load_before": load_before, "load_after": load_after,
        "ponte": ponte, "dlt": dlt_runs, "rerun": rerun,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    else:
        print(json.dumps({"rerun": rerun}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    if code := main():  # exit 0 quietly: `python -m bench` runs the next benchmark after this one
        raise SystemExit(code)

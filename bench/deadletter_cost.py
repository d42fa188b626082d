"""Issue #17, point 2: a failed record costs about what a good one costs.

The customer stage of the real ``ImportRun`` (``pipelines/imports/flow.py``), as in
``import_vs_dlt.py``: pages of 200 read ahead, mapped and validated in the import's worker processes,
stored in batches; the CV CRM write replaced by a stand-in that sends nothing. The same N customers,
from ONE Sienge sandbox in its own process, are imported three ways into each store:

* **good**: every customer valid, into a fresh store (id-map and audit rows);
* **failing**: every customer made invalid at the sandbox first (CPFs and CNPJs with wrong check
  digits, placeholder CPFs such as 111.111.111-11, CPFs too short to be one), into a fresh store, so
  every record becomes a dead letter with its reason;
* **failing again**: the same failing import once more into the store of the previous one, so every
  dead letter already exists and is updated (what a scheduled re-run does until someone fixes the data).

Per-record cost = the run's wall time / records read. The goal is failing ≤ 2× good. Runs are
interleaved (good, failing, failing again / failing, failing again, good / ...), one warm-up of each
first (not counted: it compiles the mappings in this process), medians of ``--repeat``. Log records go
to a file, as a production run's go to its handler: a failure's log line is part of its cost.

    .venv/bin/python bench/deadletter_cost.py [--customers 5000] [--repeat 3] [--no-postgres] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

os.environ.setdefault("PONTE_LOG_LEVEL", "WARNING")

GOAL = 2.0

#: the sandbox in a child process; it breaks or restores every customer's document when told on stdin
_CHILD = r"""
import json, os, sys
from connectors.sandbox import start_sandbox
sb = start_sandbox(customers=int(sys.argv[1]), seed=int(sys.argv[2]), rate_limits=False)
original = {cid: {k: c.get(k) for k in ("cpf", "cnpj")} for cid, c in sb.state.sienge.customers.items()}

def broken(index, value, field):
    digits = "".join(ch for ch in value if ch.isdigit())
    if field == "cnpj" or index % 20 < 12:  # check digits that do not add up
        return digits[:-1] + str((int(digits[-1]) + 1) % 10)
    if index % 20 < 17:  # a placeholder: every digit the same
        return str(index % 10) * 11
    return digits[:6]  # too short for a CPF or a CNPJ

info = {"urls": sb.urls, "api": sb.api, "smtp": [sb.smtp.host, sb.smtp.port], "pid": os.getpid(),
        "customers": len(sb.state.sienge.customers)}
print("SANDBOX " + json.dumps(info), flush=True)
for line in sys.stdin:
    command = line.strip()
    for index, (cid, docs) in enumerate(original.items()):
        field = "cpf" if docs.get("cpf") else "cnpj"
        value = docs[field] if command == "fix" else broken(index, docs[field], field)
        sb.sienge.mutate_customer(cid, **{field: value})
    print("DONE " + command, flush=True)
sb.stop()
"""


@contextlib.contextmanager
def sandbox_process(customers: int, seed: int = 7) -> Iterator[Any]:
    """The sandbox in a child process (its own GIL); ``set_state("break"|"fix")`` changes its customers."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(customers), str(seed)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    try:
        info: dict[str, Any] | None = None
        for line in stdout:
            if line.startswith("SANDBOX "):
                info = json.loads(line[len("SANDBOX "):])
                break
        if info is None:
            raise RuntimeError(f"the sandbox process exited ({proc.wait()}) before it was ready")

        def set_state(command: str) -> None:
            stdin.write(command + "\n")
            stdin.flush()
            for answer in stdout:
                if answer.strip() == f"DONE {command}":
                    return
            raise RuntimeError("the sandbox process stopped answering")

        yield SimpleNamespace(urls=info["urls"], api=info["api"], customers=info["customers"],
                              smtp=SimpleNamespace(host=info["smtp"][0], port=info["smtp"][1]),
                              set_state=set_state)
    finally:
        with contextlib.suppress(Exception):
            stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_fork_server() -> None:
    """The next run starts the workers' fork server again, as a run in its own process would."""
    import multiprocessing.forkserver

    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()


def customer_stage(sandbox: Any, store: Any) -> dict[str, Any]:
    """One import of the customers stream into ``store``; the CRM writes go to a stand-in."""
    from import_vs_dlt import NoCrm

    from pipelines.connections import open_connector
    from pipelines.imports.flow import ImportRequest, ImportRun
    from tests.support.tenants import sandbox_tenant

    tenant = sandbox_tenant(sandbox, unthrottled=True)
    sienge = open_connector(tenant, "sienge", store=store)
    request = ImportRequest(full=True, entities=("customer",), run_id=f"bench-{uuid.uuid4().hex[:8]}")
    run = ImportRun(store, tenant, sienge, NoCrm(), request)  # type: ignore[arg-type]
    started = time.perf_counter()
    try:
        report = run.run()
    finally:
        seconds = time.perf_counter() - started
        _stop_fork_server()
        sienge.close()
    counts = report.entities["customer"]
    return {"records": counts.read, "created": counts.created, "dead_lettered": counts.dead_lettered,
            "seconds": seconds, "us_per_record": seconds / max(counts.read, 1) * 1e6,
            "reasons": len(getattr(report, "dead_letters_by_reason", {}) or {})}


def _open_letters(store: Any) -> int:
    from sqlalchemy import func, select

    from pipelines.store.models import DeadLetter

    with store.session() as session:
        return session.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.status == "open")) or 0


def one_round(sandbox: Any, kind: str, workdir: Path, order: list[str]) -> dict[str, dict[str, Any]]:
    from import_vs_dlt import fresh_store

    out: dict[str, dict[str, Any]] = {}
    for mode in order:
        if mode == "good":
            sandbox.set_state("fix")
            with fresh_store(kind, workdir) as store:
                out["good"] = customer_stage(sandbox, store)
            continue
        if mode == "failing again":
            continue  # measured with "failing", into the same store
        sandbox.set_state("break")
        with fresh_store(kind, workdir) as store:
            out["failing"] = customer_stage(sandbox, store)
            out["failing again"] = customer_stage(sandbox, store)
            out["failing again"]["open_letters"] = _open_letters(store)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)

    kinds = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        k: {"good": [], "failing": [], "failing again": []} for k in kinds}
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="ponte-deadletter-bench-"))
    log_file = workdir / "import.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    logging.getLogger().addHandler(handler)
    try:
        with sandbox_process(args.customers) as sandbox:
            print(f"sandbox: {sandbox.customers:,} customers; load average {load_before:.2f}", flush=True)
            warm = one_round(sandbox, "sqlite", workdir, ["good", "failing"])
            print(f"  warm-up (not counted): good {warm['good']['us_per_record']:,.0f} µs/record, failing "
                  f"{warm['failing']['us_per_record']:,.0f} µs/record", flush=True)
            for rep in range(args.repeat):
                order = ["good", "failing"] if rep % 2 == 0 else ["failing", "good"]
                for kind in kinds:
                    for mode, result in one_round(sandbox, kind, workdir, order).items():
                        runs[kind][mode].append(result)
                        print(f"  run {rep + 1} {kind:<10} {mode:<13} {result['us_per_record']:>6,.0f} µs/record "
                              f"({result['records']:,} read in {result['seconds']:.2f} s, "
                              f"{result['created']:,} created, {result['dead_lettered']:,} dead letters"
                              + (f", {result['open_letters']:,} open after" if "open_letters" in result else "")
                              + ")", flush=True)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    log_lines = sum(1 for _ in log_file.open(encoding="utf-8"))
    load_after = os.getloadavg()[0]

    print()
    print(f"Per-record cost of the customer import, {args.customers:,} customers, median of {args.repeat} "
          f"(load average {load_before:.2f} before, {load_after:.2f} after)")
    print("| store | good µs/record | failing µs/record | failing ÷ good | failing again µs/record | again ÷ good |")
    print("|---|---|---|---|---|---|")
    figures: dict[str, Any] = {"customers": args.customers, "repeat": args.repeat, "runs": runs,
                               "log_lines": log_lines}
    met = True
    for kind in kinds:
        good = statistics.median(r["us_per_record"] for r in runs[kind]["good"])
        failing = statistics.median(r["us_per_record"] for r in runs[kind]["failing"])
        again = statistics.median(r["us_per_record"] for r in runs[kind]["failing again"])
        figures[kind] = {"good": good, "failing": failing, "failing_again": again,
                         "ratio": failing / good, "ratio_again": again / good}
        met = met and failing / good <= GOAL and again / good <= GOAL
        print(f"| {kind} | {good:,.0f} | {failing:,.0f} | **{failing / good:.2f}×** | {again:,.0f} | "
              f"{again / good:.2f}× |")
    print(f"goal: failing ≤ {GOAL}× good: {'met' if met else 'NOT met'}")
    print(f"log lines written by all runs: {log_lines:,}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

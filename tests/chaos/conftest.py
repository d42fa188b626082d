"""Chaos suite: size knob, fault profile, fault counters, a backoff clock and the figures it prints.

``PONTE_CHAOS_SCALE=ci`` (default, what ``make test`` runs) keeps each scenario small; ``full`` (what
``make chaos`` runs) uses more records, both store backends for the flow scenarios and at least 50
SIGKILLs. Each test adds its figures with the ``figures`` fixture; the session prints the totals and
writes them to ``.ponte/chaos/figures-<scale>.json``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipelines.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]
SCALE = os.environ.get("PONTE_CHAOS_SCALE", "ci")
if SCALE not in ("ci", "full"):
    raise pytest.UsageError(f"PONTE_CHAOS_SCALE must be ci or full, not {SCALE!r}")
FULL = SCALE == "full"


@dataclass(frozen=True)
class Size:
    customers: int  # import: Sienge customers (about half have a sale)
    mutations: int  # import: customers changed after the first import (fires hooks)
    sales: int  # dispatch: contracts ready to sign
    envelopes: int  # back-sync: envelopes signed
    assistances: int  # assistance: requests opened in the CRM
    rounds: int  # how many scheduled re-runs a scenario may take to converge
    kills_import: int
    kills_dispatch: int
    kills_backsync: int
    kills_gateway: int
    gateway_events: int


SIZE = (
    Size(customers=60, mutations=20, sales=16, envelopes=12, assistances=24, rounds=12,
         kills_import=16, kills_dispatch=16, kills_backsync=12, kills_gateway=10, gateway_events=400)
    if FULL
    else Size(customers=16, mutations=6, sales=5, envelopes=4, assistances=8, rounds=10,
              kills_import=3, kills_dispatch=3, kills_backsync=2, kills_gateway=2, gateway_events=60)
)

#: ~20 % of requests to every outside system fail: 5xx, 429 + Retry-After, cut connections; plus latency
HTTP_FAULTS: dict[str, Any] = {
    "errors": {500: 0.06, 502: 0.03, 503: 0.03},
    "throttle_rate": 0.04,
    "retry_after": 0.05,
    "drop_rate": 0.04,
    "latency_ms": 2,
    "latency_jitter_ms": 10,
}
#: ~30 % of webhooks lost or duplicated; all of them delayed and delivered newest first in windows
WEBHOOK_FAULTS: dict[str, Any] = {
    "webhook_loss_rate": 0.12,
    "webhook_duplicate_rate": 0.2,
    "webhook_delay_ms": 30,
    "webhook_reorder_window_ms": 80,
}
FAST_RETRIES = [0.05, 0.1, 0.2, 0.3]


def faults(seed: int, *, webhooks: bool = False) -> dict[str, Any]:
    return {**HTTP_FAULTS, **(WEBHOOK_FAULTS if webhooks else {}), "seed": seed}


class FaultCounter:
    """Counts what the sandbox's fault injectors decided (wraps each system's injector in place)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, sb: Any) -> FaultCounter:
        for name, system in sb.systems.items():
            self._wrap(name, system.faults)
        return self

    def _wrap(self, name: str, injector: Any) -> None:
        decide, plan = injector.decide, injector.webhook_plan

        def counted_decide() -> Any:
            decision = decide()
            kind = ("dropped" if decision.drop else "throttled" if decision.throttle
                    else "http_error" if decision.status else None)
            with self._lock:
                self.counts["requests"] += 1
                if kind:
                    self.counts[kind] += 1
            return decision

        def counted_plan() -> Any:
            lost, copies, delay = plan()
            with self._lock:
                self.counts["webhooks"] += 1
                if lost:
                    self.counts["webhook_lost"] += 1
                if copies > 1:
                    self.counts["webhook_duplicated"] += 1
                if not lost and (delay or injector.reorder_window):
                    self.counts["webhook_delayed_or_reordered"] += 1
            return lost, copies, delay

        injector.decide, injector.webhook_plan = counted_decide, counted_plan

    @property
    def http_faults(self) -> int:
        return self.counts["http_error"] + self.counts["throttled"] + self.counts["dropped"]

    @property
    def webhook_faults(self) -> int:
        return (self.counts["webhook_lost"] + self.counts["webhook_duplicated"]
                + self.counts["webhook_delayed_or_reordered"])


class BackoffClock:
    """The connectors' ``sleep=``: keeps the simulated time it was asked to wait, sleeps at most ``cap``.

    Retries keep their order and count; only the wall-clock wait shrinks (the suite asserts no timing).
    """

    def __init__(self, cap: float = 0.05, start: float = 1_800_000_000.0) -> None:
        self.cap = cap
        self.now_value = start
        self.slept = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.now_value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now_value += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept += seconds
            self.sleeps.append(seconds)
            self.now_value += seconds
        time.sleep(min(seconds, self.cap))


def converge(step: Any, done: Any, rounds: int, what: str) -> int:
    """Run ``step`` (one scheduled run) until ``done()``; returns the number of runs it took."""
    for n in range(1, rounds + 1):
        step()
        if done():
            return n
    raise AssertionError(f"{what} did not converge in {rounds} runs")


# ------------------------------------------------------------------------------------------ figures

_FIGURES_ENV = "PONTE_CHAOS_FIGURES_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and _FIGURES_ENV not in os.environ:
        # the controller picks the run's folder; xdist workers inherit it through the environment
        run_dir = REPO / ".ponte" / "chaos" / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        os.environ[_FIGURES_ENV] = str(run_dir)


@dataclass
class Figures:
    test: str
    values: Counter[str] = field(default_factory=Counter)

    def add(self, **values: float) -> None:
        for key, value in values.items():
            self.values[key] += value


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    fig = Figures(request.node.nodeid)
    yield fig
    # set by the controller when tests/chaos is the run's root; in a whole-suite run under xdist only
    # the workers load this conftest, so they fall back to one shared folder per day
    run_dir = Path(
        os.environ.get(_FIGURES_ENV) or REPO / ".ponte" / "chaos" / f"run-{time.strftime('%Y%m%d')}-suite"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"test": fig.test, "scale": SCALE, **fig.values})
    with (run_dir / f"{os.getpid()}.jsonl").open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or _FIGURES_ENV not in os.environ:
        return
    run_dir = Path(os.environ[_FIGURES_ENV])
    rows = [json.loads(line) for path in sorted(run_dir.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return
    totals: Counter[str] = Counter()
    for row in rows:
        totals.update({k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    headline = ["faults_injected", "webhook_faults", "kills", "events", "records", "duplicates_prevented",
                "lost", "dead_letters", "budget_windows_exceeded"]
    summary = {"scale": SCALE, "tests": len(rows), **{k: totals.get(k, 0) for k in headline},
               "detail": dict(sorted(totals.items())), "per_test": rows}
    out = REPO / ".ponte" / "chaos" / f"figures-{SCALE}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    tr = terminalreporter
    tr.write_sep("=", f"chaos figures ({SCALE} scale)")
    for key in headline:
        tr.write_line(f"{key:>24}: {summary[key]:g}")
    tr.write_line(f"{'written to':>24}: {out.relative_to(REPO)}")


# ------------------------------------------------------------------------------------------ stores

_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)] if FULL else ["sqlite"]


@pytest.fixture(params=_BACKENDS)
def chaos_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """SQLite at CI scale; SQLite and PostgreSQL at full scale."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'chaos.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        store = open_store(url)
        _truncate(store)
    try:
        yield store
    finally:
        store.dispose()


def _truncate(store: Store) -> None:
    from sqlalchemy import text

    from pipelines.store.models import Base

    with store.engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))

"""The rate budget: paced below the API's limit, and shared by several processes through the store.

The loopback server counts requests in a sliding one-second window and answers 429 over its limit,
like Sienge and CV CRM do per minute. Two worker processes read as fast as they can; with the shared
budget the server never has to say 429, and without it (each process on its own budget) it does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from connectors.runtime.ratelimit import Bucket, InMemoryRateBudget, Limiter, buckets_for
from connectors.spec.models import RateLimit
from pipelines.store.db import Store, open_store
from pipelines.store.rate_budget import SqlRateBudget
from tests.connectors.loopback import Loopback, Received, Reply

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 20  # requests per second, at the server and in the spec
PER_WORKER = 30

SPEC = f"""
kind: http
name: budgeted
values: {{base_url: {{description: server}}}}
base_url: "{{values.base_url}}"
rate_limit: {{per_second: {LIMIT}}}
retry: {{max_attempts: 10, initial_backoff_seconds: 0.05}}
streams:
  ping: {{path: /ping}}
"""


class SlidingWindow:
    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit, self.window = limit, window
        self.stamps: deque[float] = deque()
        self.lock = threading.Lock()
        self.ok = 0
        self.refused = 0

    def __call__(self, req: Received) -> Reply:
        with self.lock:
            now = time.monotonic()
            while self.stamps and now - self.stamps[0] >= self.window:
                self.stamps.popleft()
            if len(self.stamps) >= self.limit:
                self.refused += 1
                return Reply(429, {"error": "too many"}, {"Retry-After": "1"})
            self.stamps.append(now)
            self.ok += 1
            return Reply(200, [])


def run_workers(tmp_path: Path, store_url: str, server: Loopback) -> list[int]:
    spec = tmp_path / "budgeted.yaml"
    spec.write_text(SPEC)
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.connectors.budget_worker", str(spec), server.url, store_url,
                          str(PER_WORKER), str(start_at)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    calls = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        calls.append(int(out.strip().splitlines()[-1]))
    return calls


def assert_shared_budget_holds(tmp_path: Path, store_url: str) -> None:
    window = SlidingWindow(LIMIT)
    with Loopback() as server:
        server.route("GET", "/ping", window)
        started = time.monotonic()
        calls = run_workers(tmp_path, store_url, server)
        elapsed = time.monotonic() - started
    assert window.refused == 0, f"{window.refused} requests got 429"
    assert window.ok == 2 * PER_WORKER and calls == [PER_WORKER, PER_WORKER]
    assert elapsed >= (2 * PER_WORKER - 2 * LIMIT) / LIMIT  # it really had to slow down


@pytest.mark.xdist_group("rate_budget")
def test_shared_budget_across_two_processes_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).dispose()
    assert_shared_budget_holds(tmp_path, url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = make_url(os.environ.get("PONTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    name = f"ponte_budget_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.xdist_group("rate_budget")
def test_shared_budget_across_two_processes_postgres(tmp_path: Path, postgres_url: str) -> None:
    open_store(postgres_url).dispose()
    assert_shared_budget_holds(tmp_path, postgres_url)


@pytest.mark.xdist_group("rate_budget")
def test_without_a_shared_budget_the_same_load_gets_429(tmp_path: Path) -> None:
    """The control: proves the server above does count, so zero 429s means the budget held."""
    window = SlidingWindow(LIMIT)
    with Loopback() as server:
        server.route("GET", "/ping", window)
        run_workers(tmp_path, "memory", server)
    assert window.refused > 0


def test_sql_budget_reserves_consecutive_slots(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    budget = SqlRateBudget(store, clock=lambda: 1000.0)  # frozen: all five reserved at the same instant
    bucket = Bucket("t:c:per_second", capacity=2, refill_per_second=1)
    waits = [budget.reserve(bucket) for _ in range(5)]
    assert waits == [0, 0, pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0)]
    store.dispose()


def _record_statements(store: Store) -> list[str]:
    statements: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    return statements


def test_sql_budget_takes_the_sqlite_write_lock_first(tmp_path: Path) -> None:
    """reserve runs on a plain connection, not a session: its transaction must still open with BEGIN
    IMMEDIATE, or two processes could both read the bucket before either writes it."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    statements = _record_statements(store)
    budget = SqlRateBudget(store, clock=lambda: 1000.0)
    budget.reserve(Bucket("t:c:per_second", capacity=2, refill_per_second=1))  # creates the row
    budget.reserve(Bucket("t:c:per_second", capacity=2, refill_per_second=1))
    assert statements[0] == "BEGIN IMMEDIATE"  # before the bucket is read
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"] * 2  # one per reserve
    store.dispose()


@pytest.mark.postgres
def test_sql_budget_on_postgres_locks_the_row_and_reads_the_database_clock(postgres_url: str) -> None:
    store = open_store(postgres_url)
    frozen = SqlRateBudget(store, clock=lambda: 1000.0)
    bucket = Bucket("t:c:per_second", capacity=2, refill_per_second=1)
    assert [frozen.reserve(bucket) for _ in range(5)] == [0, 0, pytest.approx(1.0), pytest.approx(2.0),
                                                          pytest.approx(3.0)]

    statements = _record_statements(store)
    budget = SqlRateBudget(store)
    waits = [budget.reserve(Bucket("t:c:db", capacity=2, refill_per_second=1)) for _ in range(4)]
    assert waits[:2] == [0, 0] and 0.5 < waits[2] <= 1.0 and 1.5 < waits[3] <= 2.0  # a little refilled
    assert any(s.startswith("SELECT") and s.endswith("FOR UPDATE") for s in statements)
    assert any("clock_timestamp()" in s for s in statements)
    with store.engine.connect() as conn:
        stored, db_now = conn.execute(
            text("SELECT updated_at, extract(epoch FROM clock_timestamp()) FROM rate_budgets WHERE key = 't:c:db'")
        ).one()
    assert 0 <= float(db_now) - stored < 60  # real time, not the frozen budget's 1000.0
    store.dispose()


def test_in_memory_budget_refills_over_time() -> None:
    clock = [0.0]
    budget = InMemoryRateBudget(clock=lambda: clock[0])
    bucket = Bucket("k", capacity=1, refill_per_second=2)
    assert budget.reserve(bucket) == 0
    assert budget.reserve(bucket) == pytest.approx(0.5)
    clock[0] = 10.0
    assert budget.reserve(bucket) == 0  # refilled, but never above capacity
    assert budget.reserve(bucket) == pytest.approx(0.5)


def test_every_window_is_paced_below_its_limit() -> None:
    for field, seconds in (("per_second", 1), ("per_minute", 60), ("per_hour", 3600), ("per_day", 86400)):
        for limit in (1, 7, 200, 3000):
            (bucket,) = buckets_for(RateLimit(**{field: limit}), "k")
            assert bucket.capacity + bucket.refill_per_second * seconds <= limit


def test_limiter_sleeps_for_the_longest_bucket() -> None:
    slept: list[float] = []
    clock = [0.0]
    budget = InMemoryRateBudget(clock=lambda: clock[0])
    limiter = Limiter(budget, buckets_for(RateLimit(per_second=10, per_minute=60), "k"), sleep=slept.append)
    for _ in range(8):
        limiter.acquire()
    assert slept and max(slept) > 0.1  # the per-minute bucket (burst 6) is the one that binds

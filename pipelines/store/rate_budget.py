"""Rate budgets shared by every process through the state store (``rate_budgets`` table).

Implements :class:`connectors.runtime.ratelimit.RateBudget`: each ``reserve`` is one short transaction
that locks the bucket's row, refills it for the time elapsed, takes the tokens and says how long the
caller must wait for its slot. PostgreSQL locks the row with ``SELECT ... FOR UPDATE``; SQLite's store
opens every transaction with ``BEGIN IMMEDIATE``, which serialises writers the same way.

Time comes from the database on PostgreSQL (one clock for every machine), from this machine on SQLite
(a file is only shared by processes on one machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connectors.runtime.ratelimit import Bucket, refill, take
from pipelines.store.db import Store
from pipelines.store.models import RateBudget


class SqlRateBudget:
    """Token buckets in the state store; pass it as ``budget=`` when opening connectors."""

    def __init__(self, store: Store, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        #: tests pass a frozen clock so reservations are exact whatever the machine's load
        self.clock = clock

    def _now(self, session: Session) -> float:
        if self.clock is not None:
            return self.clock()
        if self.store.is_postgres:
            return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
        return time.time()

    def reserve(self, bucket: Bucket, cost: float = 1.0) -> float:
        with self.store.session() as session:
            now = self._now(session)
            insert = pg_insert if self.store.is_postgres else sqlite_insert
            session.execute(
                insert(RateBudget)
                .values(
                    key=bucket.key,
                    tokens=bucket.capacity,
                    capacity=bucket.capacity,
                    refill_per_second=bucket.refill_per_second,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
            query = select(RateBudget).where(RateBudget.key == bucket.key)
            if self.store.is_postgres:
                query = query.with_for_update()
            row = session.execute(query).scalar_one()
            tokens = refill(row.tokens, bucket.capacity, bucket.refill_per_second, now - row.updated_at)
            tokens, wait = take(tokens, cost, bucket.refill_per_second)
            row.tokens = tokens
            row.capacity = bucket.capacity
            row.refill_per_second = bucket.refill_per_second
            row.updated_at = now
            return wait

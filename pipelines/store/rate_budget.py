"""Rate budgets shared by every process through the state store (``rate_budgets`` table).

Implements :class:`connectors.runtime.ratelimit.RateBudget`: each ``reserve`` is one short transaction
that locks the bucket's row, refills it for the time elapsed, takes the tokens and says how long the
caller must wait for its slot. PostgreSQL locks the row with ``SELECT ... FOR UPDATE``; on SQLite the
store's engine opens every transaction, a plain connection's as much as a session's, with
``BEGIN IMMEDIATE``, which serialises writers the same way.

Time comes from the database on PostgreSQL (one clock for every machine), from this machine on SQLite
(a file is only shared by processes on one machine). Either way it is read once the row is locked, so
the holders of a bucket see time advance in the order they hold it.

``reserve`` runs once per outgoing HTTP request, so it is SQLAlchemy Core on a plain connection with
statements built once at import: the ORM session cost about ten times the database work. A bucket's
row already exists on every call but the first, so the row is read first and only created when
missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, extract, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connectors.runtime import Bucket, refill, take
from pipelines.store.db import Store
from pipelines.store.models import RateBudget

_TABLE = RateBudget.__table__
#: clock_timestamp(), not now(): now() is frozen at the start of the transaction, before the lock wait
_DB_NOW = extract("epoch", func.clock_timestamp())

_READ = select(_TABLE.c.tokens, _TABLE.c.updated_at).where(_TABLE.c.key == bindparam("bucket"))
_READ_LOCKED = _READ.with_for_update()
# PostgreSQL re-evaluates the row (and so the clock) once the lock is granted if the previous holder
# updated it, which every reserve does: the clock is read after the wait, in the same round trip.
_READ_LOCKED_WITH_DB_NOW = _READ.add_columns(_DB_NOW).with_for_update()

_WRITE = (
    update(_TABLE)
    .where(_TABLE.c.key == bindparam("bucket"))
    .values(
        tokens=bindparam("new_tokens"),
        capacity=bindparam("new_capacity"),
        refill_per_second=bindparam("new_refill"),
        updated_at=bindparam("now"),
    )
)


def _create(insert: Any, updated_at: Any) -> Any:
    """A full bucket for a key seen for the first time; a concurrent first caller's row is kept."""
    return (
        insert(_TABLE)
        .values(
            key=bindparam("bucket"),
            tokens=bindparam("new_capacity"),
            capacity=bindparam("new_capacity"),
            refill_per_second=bindparam("new_refill"),
            updated_at=updated_at,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )


_CREATE_SQLITE = _create(sqlite_insert, bindparam("now"))
_CREATE_PG = _create(pg_insert, bindparam("now"))
_CREATE_PG_WITH_DB_NOW = _create(pg_insert, _DB_NOW)


class SqlRateBudget:
    """Token buckets in the state store; pass it as ``budget=`` when opening connectors."""

    def __init__(self, store: Store, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        #: tests pass a frozen clock so reservations are exact whatever the machine's load
        self.clock = clock

    def reserve(self, bucket: Bucket, cost: float = 1.0) -> float:
        with self.store.engine.begin() as conn:
            if self.store.is_postgres and self.clock is None:
                tokens, updated_at, now = self._locked_with_db_now(conn, bucket)
            else:
                now = self.clock() if self.clock is not None else time.time()
                tokens, updated_at = self._locked(conn, bucket, now)
            tokens = refill(tokens, bucket.capacity, bucket.refill_per_second, now - updated_at)
            tokens, wait = take(tokens, cost, bucket.refill_per_second)
            conn.execute(
                _WRITE,
                {
                    "bucket": bucket.key,
                    "new_tokens": tokens,
                    "new_capacity": bucket.capacity,
                    "new_refill": bucket.refill_per_second,
                    "now": now,
                },
            )
            return wait

    def _locked(self, conn: Connection, bucket: Bucket, now: float) -> tuple[float, float]:
        """The bucket's (tokens, updated_at), its row locked for this transaction."""
        postgres = self.store.is_postgres
        read = _READ_LOCKED if postgres else _READ  # SQLite: BEGIN IMMEDIATE already locked the file
        key = {"bucket": bucket.key}
        row = conn.execute(read, key).first()
        if row is None:
            create = _CREATE_PG if postgres else _CREATE_SQLITE
            params = {**key, "new_capacity": bucket.capacity, "new_refill": bucket.refill_per_second, "now": now}
            conn.execute(create, params)
            row = conn.execute(read, key).one()
        return float(row[0]), float(row[1])

    def _locked_with_db_now(self, conn: Connection, bucket: Bucket) -> tuple[float, float, float]:
        """PostgreSQL: the bucket's (tokens, updated_at) and the database's clock, its row locked."""
        key = {"bucket": bucket.key}
        row = conn.execute(_READ_LOCKED_WITH_DB_NOW, key).first()
        if row is None:
            params = {**key, "new_capacity": bucket.capacity, "new_refill": bucket.refill_per_second}
            conn.execute(_CREATE_PG_WITH_DB_NOW, params)
            row = conn.execute(_READ_LOCKED_WITH_DB_NOW, key).one()
        return float(row[0]), float(row[1]), float(row[2])

"""Claiming work from the outbox and inbox safely with several processes.

PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` lets each worker take different rows without
waiting. SQLite: every transaction starts with ``BEGIN IMMEDIATE`` (see db.py), so select-then-update
runs with no other writer in between. Either way a claim is a *lease*: if the worker dies, the lease
expires and another worker takes the item; nothing is lost.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, or_, select, update

from pipelines.store.db import Store
from pipelines.store.models import InboxEvent, OutboxItem, utcnow

W = TypeVar("W", OutboxItem, InboxEvent)

READY = {OutboxItem: ("pending", "failed"), InboxEvent: ("new", "failed")}
CLAIMED = {OutboxItem: "in_flight", InboxEvent: "processing"}


def worker_name() -> str:
    """Who holds a lease: ``host:pid``, the same in every flow (a lease names its worker in the store)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claimable(model: type[W], now: datetime) -> ColumnElement[bool]:
    """Items a claim would take at ``now``: ready and available, or leased to a worker whose lease ran out."""
    return or_(
        and_(model.status.in_(READY[model]), model.available_at <= now),
        and_(model.status == CLAIMED[model], model.claimed_until < now),
    )


def claim(
    store: Store,
    model: type[W],
    *,
    worker: str,
    limit: int = 50,
    lease_seconds: float = 300,
    tenant: str | None = None,
    connector: str | None = None,
    event_type_prefixes: tuple[str, ...] | None = None,
    ids: list[int] | None = None,
) -> list[int]:
    """Lease up to ``limit`` ready items (or items whose lease expired) to ``worker``; return their ids.

    ``ids`` narrows the claim to those items (a replay of one dead-lettered event).
    """
    now = utcnow()
    claimed = CLAIMED[model]
    query = select(model.id).where(claimable(model, now))
    if ids is not None:
        query = query.where(model.id.in_(ids))
    if tenant:
        query = query.where(model.tenant == tenant)
    if connector:
        query = query.where(model.connector == connector)
    if event_type_prefixes is not None and model is InboxEvent:
        # several flows share one connector's inbox (Sienge hooks feed import and assistance)
        query = query.where(or_(*(InboxEvent.event_type.startswith(p) for p in event_type_prefixes)))
    query = query.order_by(model.id).limit(limit)
    if store.is_postgres:
        query = query.with_for_update(skip_locked=True)
    with store.session() as session:
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(model)
                .where(model.id.in_(ids))
                .values(
                    status=claimed,
                    claimed_by=worker,
                    claimed_until=now + timedelta(seconds=lease_seconds),
                    attempts=model.attempts + 1,
                )
            )
    return ids


def release(
    store: Store,
    model: type[W],
    item_id: int,
    *,
    worker: str,
    status: str,
    error: str | None = None,
    retry_in_seconds: float = 0,
) -> bool:
    """Finish a leased item; returns False if the lease was lost to another worker meanwhile."""
    values: dict[str, object] = {"status": status, "claimed_by": None, "claimed_until": None}
    if error is not None:
        values["last_error"] = error
    if retry_in_seconds:
        values["available_at"] = utcnow() + timedelta(seconds=retry_in_seconds)
    if model is InboxEvent and status == "done":
        values["processed_at"] = utcnow()
    with store.session() as session:
        result = session.execute(
            update(model).where(model.id == item_id, model.claimed_by == worker).values(**values)
        )
        return result.rowcount == 1

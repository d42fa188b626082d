"""Dead letters: records that failed, with the reason, mapping version and original payload.

One open dead letter per (tenant, flow, record): failing again updates it instead of piling up rows,
so the list an operator sees is the list of records that need attention.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pipelines.store.db import Store
from pipelines.store.models import DeadLetter
from ponte.errors import PonteError


def put(
    store: Store,
    *,
    tenant: str,
    flow: str,
    record_key: str,
    error: PonteError,
    payload: dict[str, Any],
    mapping_version: str | None = None,
    run_id: str | None = None,
) -> int:
    with store.session() as session:
        row = session.scalars(
            select(DeadLetter).where(
                DeadLetter.tenant == tenant,
                DeadLetter.flow == flow,
                DeadLetter.record_key == record_key,
                DeadLetter.status == "open",
            )
        ).one_or_none()
        if row is None:
            row = DeadLetter(tenant=tenant, flow=flow, record_key=record_key)
            session.add(row)
        row.error_kind = error.kind
        row.reason = error.message
        row.field = error.field
        row.hint = error.hint
        row.payload = payload
        row.mapping_version = mapping_version
        row.run_id = run_id
        session.flush()
        return row.id


def list_open(store: Store, tenant: str | None = None, flow: str | None = None) -> list[DeadLetter]:
    query = select(DeadLetter).where(DeadLetter.status == "open").order_by(DeadLetter.id)
    if tenant:
        query = query.where(DeadLetter.tenant == tenant)
    if flow:
        query = query.where(DeadLetter.flow == flow)
    with store.session() as session:
        return list(session.scalars(query))


def get(store: Store, dead_letter_id: int) -> DeadLetter | None:
    with store.session() as session:
        return session.get(DeadLetter, dead_letter_id)


def resolve(store: Store, tenant: str, flow: str, record_key: str) -> int:
    """A record that now succeeds closes its open dead letter (replayed or fixed at the source)."""
    with store.session() as session:
        rows = session.scalars(
            select(DeadLetter).where(
                DeadLetter.tenant == tenant,
                DeadLetter.flow == flow,
                DeadLetter.record_key == record_key,
                DeadLetter.status == "open",
            )
        ).all()
        for row in rows:
            row.status = "replayed"
            row.replay_count += 1
        return len(rows)


def count_open(store: Store, tenant: str | None = None) -> int:
    return len(list_open(store, tenant))

"""Exactly-once writes to outside systems through the outbox.

The rule (ARCHITECTURE.md): a write is keyed by an idempotency key derived from business identity. Before
a call leaves, the outbox row records ``sent_at``; if the process dies or the call times out after that,
the next attempt does not send again blindly: it first looks the object up at the provider by our key.
Only when the lookup says it is not there is the write sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.store.db import Store
from pipelines.store.models import OutboxItem, utcnow
from ponte import PonteError, TransientError, get_logger

log = get_logger("outbox")


@dataclass(frozen=True)
class WriteOutcome:
    external_id: str | None
    result: dict[str, Any]
    #: "sent" (this call wrote), "already_done" (the outbox had it), "found" (the provider had it)
    how: str


Sender = Callable[[], tuple[str | None, dict[str, Any]]]
Finder = Callable[[], tuple[str | None, dict[str, Any]] | None]


def _insert_if_absent(
    store: Store, tenant: str, connector: str, action: str, key: str, payload: dict
) -> None:
    insert = postgresql.insert if store.is_postgres else sqlite.insert
    with store.session() as session:
        session.execute(
            insert(OutboxItem)
            .values(
                tenant=tenant,
                connector=connector,
                action=action,
                idempotency_key=key,
                payload=payload,
                status="pending",
                attempts=0,
                available_at=utcnow(),
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )


def write_once(
    store: Store,
    *,
    tenant: str,
    connector: str,
    action: str,
    key: str,
    payload: dict[str, Any],
    send: Sender,
    find: Finder | None,
    worker: str,
    lease_seconds: float = 120,
    run_id: str | None = None,
) -> WriteOutcome:
    """Perform one write at most once, whatever crashes or timeouts happened before.

    ``send`` performs the write and returns (external id, result); ``find`` looks the object up at the
    provider by our key and returns the same or None. A write with no ``find`` must be naturally
    idempotent at the provider (an upsert), since it may be sent again after a crash.
    """
    _insert_if_absent(store, tenant, connector, action, key, payload)
    now = utcnow()
    with store.session() as session:
        query = select(OutboxItem).where(OutboxItem.idempotency_key == key)
        if store.is_postgres:
            query = query.with_for_update()
        item = session.scalars(query).one()
        if item.status == "done":
            return WriteOutcome(item.external_id, item.result or {}, "already_done")
        if (
            item.status == "in_flight"
            and item.claimed_until
            and item.claimed_until > now
            and item.claimed_by != worker
        ):
            raise TransientError(
                f"write {action} for {key} is in flight in another worker",
                tenant=tenant,
                hint="it will finish or its lease will expire; retry later",
            )
        maybe_sent = item.sent_at is not None
        item.status = "in_flight"
        item.claimed_by = worker
        item.claimed_until = now + timedelta(seconds=lease_seconds)
        item.attempts += 1
        item.run_id = run_id
        item_id = item.id

    if maybe_sent and find is not None:
        found = find()
        if found is not None:
            external_id, result = found
            _finish(store, item_id, worker, "done", external_id=external_id, result=result)
            log.info(
                "outbox %s: %s already at %s (found by key after an unsure attempt)", action, key, connector
            )
            return WriteOutcome(external_id, result, "found")

    with store.session() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(sent_at=utcnow()))
    try:
        external_id, result = send()
    except PonteError as exc:
        status = "failed" if exc.retryable else "dead"
        _finish(store, item_id, worker, status, error=str(exc))
        raise
    _finish(store, item_id, worker, "done", external_id=external_id, result=result)
    return WriteOutcome(external_id, result, "sent")


def _finish(
    store: Store,
    item_id: int,
    worker: str,
    status: str,
    *,
    external_id: str | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "claimed_by": None, "claimed_until": None}
    if external_id is not None:
        values["external_id"] = external_id
    if result is not None:
        values["result"] = result
    if error is not None:
        values["last_error"] = error
    with store.session() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(**values))

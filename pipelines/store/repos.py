"""Small, typed accessors for the store's bookkeeping tables (id map, cursors, audit).

Each takes a Session so callers decide the transaction: a cursor must advance in the same transaction
as the records it covers, and an audit row commits with the write it describes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipelines.store.models import AuditEntry, IdMap, SyncCursor, Tenant, utcnow


def get_xref(
    session: Session, tenant: str, entity: str, source_system: str, source_id: str, target_system: str
) -> IdMap | None:
    return session.scalars(
        select(IdMap).where(
            IdMap.tenant == tenant,
            IdMap.entity == entity,
            IdMap.source_system == source_system,
            IdMap.source_id == str(source_id),
            IdMap.target_system == target_system,
        )
    ).one_or_none()


def xrefs_for(
    session: Session, tenant: str, entity: str, source_system: str, target_system: str
) -> dict[str, IdMap]:
    """All id-map rows of one entity, keyed by source id (one query for a whole batch)."""
    rows = session.scalars(
        select(IdMap).where(
            IdMap.tenant == tenant,
            IdMap.entity == entity,
            IdMap.source_system == source_system,
            IdMap.target_system == target_system,
        )
    )
    return {row.source_id: row for row in rows}


def put_xref(
    session: Session,
    tenant: str,
    entity: str,
    source_system: str,
    source_id: str,
    target_system: str,
    target_id: str | None,
    content_hash: str | None,
    mapping_version: str | None = None,
) -> IdMap:
    row = get_xref(session, tenant, entity, source_system, source_id, target_system)
    if row is None:
        row = IdMap(
            tenant=tenant,
            entity=entity,
            source_system=source_system,
            source_id=str(source_id),
            target_system=target_system,
        )
        session.add(row)
    row.target_id = target_id
    row.content_hash = content_hash
    row.mapping_version = mapping_version
    row.last_synced_at = utcnow()
    return row


def get_cursor(session: Session, tenant: str, connector: str, stream: str) -> str | None:
    return session.scalar(
        select(SyncCursor.value).where(
            SyncCursor.tenant == tenant, SyncCursor.connector == connector, SyncCursor.stream == stream
        )
    )


def set_cursor(session: Session, tenant: str, connector: str, stream: str, value: str | None) -> None:
    row = session.scalars(
        select(SyncCursor).where(
            SyncCursor.tenant == tenant, SyncCursor.connector == connector, SyncCursor.stream == stream
        )
    ).one_or_none()
    if row is None:
        session.add(SyncCursor(tenant=tenant, connector=connector, stream=stream, value=value))
    else:
        row.value = value


def audit(
    session: Session,
    *,
    tenant: str,
    flow: str,
    action: str,
    entity: str,
    entity_id: str,
    source_record: str | None = None,
    mapping_version: str | None = None,
    run_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            tenant=tenant,
            flow=flow,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            source_record=source_record,
            mapping_version=mapping_version,
            run_id=run_id,
            details=details or {},
        )
    )


def ensure_tenant(session: Session, tenant_id: str, name: str, config_hash: str) -> None:
    row = session.get(Tenant, tenant_id)
    if row is None:
        session.add(Tenant(id=tenant_id, name=name, config_hash=config_hash))
    elif row.config_hash != config_hash or row.name != name:
        row.name, row.config_hash = name, config_hash


XrefRow = tuple[str | None, str | None]  # (target_id, content_hash)


def xrefs_by_ids(
    session: Session, tenant: str, entity: str, source_system: str, target_system: str, source_ids: list[str]
) -> dict[str, XrefRow]:
    """Id-map rows for one batch of source ids, as light tuples (memory stays flat however big the run)."""
    if not source_ids:
        return {}
    rows = session.execute(
        select(IdMap.source_id, IdMap.target_id, IdMap.content_hash).where(
            IdMap.tenant == tenant,
            IdMap.entity == entity,
            IdMap.source_system == source_system,
            IdMap.target_system == target_system,
            IdMap.source_id.in_(source_ids),
        )
    )
    return {source_id: (target_id, content_hash) for source_id, target_id, content_hash in rows}


def upsert_xrefs(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or update many id-map rows in one statement (dicts with IdMap column names)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    values = [{**row, "last_synced_at": now} for row in rows]
    # executemany with one compiled statement, not a new multi-row VALUES statement per batch
    statement = insert(IdMap.__table__)  # Core, not the ORM's bulk path: a third less per row
    statement = statement.on_conflict_do_update(
        index_elements=["tenant", "entity", "source_system", "source_id", "target_system"],
        set_={
            "target_id": statement.excluded.target_id,
            "content_hash": statement.excluded.content_hash,
            "mapping_version": statement.excluded.mapping_version,
            "last_synced_at": statement.excluded.last_synced_at,
        },
    )
    session.execute(statement, values)


def audit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Many audit rows in one executemany (AuditEntry column names)."""
    if rows:
        from sqlalchemy import insert

        now = utcnow()
        session.execute(insert(AuditEntry.__table__), [{"at": now, "details": {}, **row} for row in rows])

"""Small, typed accessors for the store's bookkeeping tables (id map, cursors, audit).

Each takes a Session so callers decide the transaction: a cursor must advance in the same transaction
as the records it covers, and an audit row commits with the write it describes.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String, Table, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from pipelines.store.db import Store
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


def cursors_of(session: Session, tenant: str) -> list[SyncCursor]:
    """Every saved cursor of ``tenant``, by connector and stream (for `ponte state show`)."""
    return list(
        session.scalars(
            select(SyncCursor).where(SyncCursor.tenant == tenant).order_by(SyncCursor.connector, SyncCursor.stream)
        )
    )


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

# The import's bookkeeping runs once per batch of 200 records: an id-map lookup, an id-map upsert and
# an audit insert. Their statements are built once, here, not per call. PostgreSQL receives a batch as
# one statement over unnest()ed arrays: as an executemany it was 200 statements, each parsed, planned
# and executed on its own (no server-side prepared statements, see db.py), which doubled the server's
# time. SQLite receives a DBAPI executemany of SQL compiled once per dialect: stepping one prepared
# statement per row is already cheap there, and SQLAlchemy's per-row parameter handling was two thirds
# of the call.

_ID_MAP = IdMap.__table__
_AUDIT = AuditEntry.__table__
_XREF_KEY = ("tenant", "entity", "source_system", "source_id", "target_system")
#: what callers give; last_synced_at is always now
_XREF_COLUMNS = (*_XREF_KEY, "target_id", "content_hash", "mapping_version")
_XREF_UPDATED = ("target_id", "content_hash", "mapping_version", "last_synced_at")
#: what callers give; at (default now) and details (default {}) may be given too
_AUDIT_COLUMNS = ("tenant", "flow", "action", "entity", "entity_id", "source_record", "mapping_version", "run_id")


def _unnest(table: Table, columns: tuple[str, ...]) -> TableValuedAlias:
    """``unnest(:tenant_values, ...) AS anon(tenant, ...)``: a batch's rows from one array per column."""
    arrays = [bindparam(f"{name}_values", type_=_array_of(table.c[name].type)) for name in columns]
    return func.unnest(*arrays).table_valued(*columns).render_derived()


def _array_of(item: TypeEngine[Any]) -> ARRAY[Any]:
    # varchar[] without the length: an explicit cast to varchar(64) would silently cut a longer value,
    # where the INSERT's own assignment refuses it, as it did row by row
    return ARRAY(String() if isinstance(item, String) else item)


def _text_array(values: list[Any]) -> list[Any]:
    """A varchar column's values as one array parameter. Row by row, PostgreSQL cast an int to text;
    psycopg refuses an array of mixed types, so anything that is not already text becomes text."""
    if all(value is None or type(value) is str for value in values):
        return values
    return [value if value is None or isinstance(value, str) else str(value) for value in values]


_xrefs_where = select(_ID_MAP.c.source_id, _ID_MAP.c.target_id, _ID_MAP.c.content_hash).where(
    _ID_MAP.c.tenant == bindparam("tenant"),
    _ID_MAP.c.entity == bindparam("entity"),
    _ID_MAP.c.source_system == bindparam("source_system"),
    _ID_MAP.c.target_system == bindparam("target_system"),
)
# SQLite: the ids as one JSON array, unpacked by json_each, for the same reason (an expanding IN
# rendered 200 bind parameters on every batch, ~2.5 µs a record of the import's own thread)
_ids_json = func.json_each(bindparam("source_ids", type_=String)).table_valued("value")
_XREFS_BY_IDS_SQLITE = _xrefs_where.where(_ID_MAP.c.source_id.in_(select(_ids_json.c.value)))
# One array parameter instead of 200: the SQL text no longer changes with the batch, so neither
# SQLAlchemy nor psycopg (which only caches the parse of short statements) re-renders it per call.
# The plan is the same: PostgreSQL turns an IN list into = ANY(array) itself.
_XREFS_BY_IDS_PG = _xrefs_where.where(
    _ID_MAP.c.source_id == any_(bindparam("source_ids", type_=_array_of(_ID_MAP.c.source_id.type)))
)

_xref_rows = _unnest(_ID_MAP, _XREF_COLUMNS)
_upsert_pg = pg_insert(_ID_MAP).from_select(
    [*_XREF_COLUMNS, "last_synced_at"],
    select(*_xref_rows.c, bindparam("now", type_=_ID_MAP.c.last_synced_at.type)),
)
_UPSERT_XREFS_PG = _upsert_pg.on_conflict_do_update(
    index_elements=list(_XREF_KEY), set_={name: _upsert_pg.excluded[name] for name in _XREF_UPDATED}
)
_upsert_sqlite = sqlite_insert(_ID_MAP)
_UPSERT_XREFS_SQLITE = _upsert_sqlite.on_conflict_do_update(
    index_elements=list(_XREF_KEY), set_={name: _upsert_sqlite.excluded[name] for name in _XREF_UPDATED}
)

# at and details are nearly always the defaults, and psycopg spells arrays of timestamps and of JSON
# out element by element in Python (half the call): the defaults go as one value each
_audit_rows = _unnest(_AUDIT, _AUDIT_COLUMNS)
_INSERT_AUDIT_PG = insert(_AUDIT).from_select(
    [*_AUDIT_COLUMNS, "at", "details"],
    select(
        *_audit_rows.c,
        bindparam("default_at", type_=_AUDIT.c.at.type),
        bindparam("default_details", type_=_AUDIT.c.details.type),
    ),
)
_audit_rows_own = _unnest(_AUDIT, (*_AUDIT_COLUMNS, "at", "details"))
_INSERT_AUDIT_PG_OWN = insert(_AUDIT).from_select(
    [*_AUDIT_COLUMNS, "at", "details"], select(*_audit_rows_own.c)
)
_INSERT_AUDIT = insert(_AUDIT)


#: rows per multi-row INSERT on SQLite (well under its 32,766 bound parameters)
_ROWS_PER_INSERT = 500


@dataclass(frozen=True)
class _DriverInsert:
    """An INSERT compiled for a positional-paramstyle dialect, run with ``exec_driver_sql``.

    Rows go as multi-row ``VALUES`` lists, not as an executemany: an executemany steps the statement
    once per row, and the sqlite3 module lets go of the GIL at every step. With the read-ahead thread
    and the workers' feeder thread busy, taking it back cost up to a switch interval (5 ms) each time,
    which tripled the store's share of an import. One statement per batch lets go once. Rows are
    inserted in order, so a key given twice ends as its last row, as with the executemany.
    """

    sql: str
    #: the bind processors SQLAlchemy would have applied (datetimes, JSON), by column
    process: dict[str, Callable[[Any], Any]]

    def run(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            params = tuple(itertools.chain.from_iterable(chunk))
            connection.exec_driver_sql(_multi_row(self.sql, len(chunk)), params)


@functools.lru_cache(maxsize=64)
def _multi_row(sql: str, count: int) -> str:
    """``INSERT ... VALUES (?, ?) ...`` with ``count`` value lists."""
    head, values, tail = sql.partition(" VALUES ")
    row_end = tail.index(")") + 1  # every value is a plain placeholder (checked at compile time)
    row = tail[:row_end]
    return f"{head}{values}{', '.join([row] * count)}{tail[row_end:]}"


_DRIVER_INSERTS: dict[tuple[str, str], _DriverInsert] = {}


def _driver_insert(
    name: str, statement: Insert, table: Table, order: tuple[str, ...], processed: set[str], dialect: Dialect
) -> _DriverInsert:
    """``statement`` compiled once per dialect, its parameters in ``order``. Only the columns in
    ``processed`` may need a bind processor: the callers convert those and pass the rest as given."""
    key = (name, dialect.name)
    prepared = _DRIVER_INSERTS.get(key)
    if prepared is None:
        compiled = statement.compile(dialect=dialect, column_keys=list(order), for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        if not dialect.positional or tuple(compiled.positiontup or ()) != order:
            raise RuntimeError(f"{name}: parameters compiled as {compiled.positiontup}, expected {order}")
        placeholders = "(" + ", ".join(["?"] * len(order)) + ")"
        if f" VALUES {placeholders}" not in compiled.string:
            raise RuntimeError(f"{name}: expected one VALUES {placeholders} in {compiled.string!r}")
        process: dict[str, Callable[[Any], Any]] = {}
        for column in order:
            processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                process[column] = processor
        if not process.keys() <= processed:
            raise RuntimeError(f"{name}: unexpected bind processors for {sorted(process.keys() - processed)}")
        prepared = _DRIVER_INSERTS[key] = _DriverInsert(compiled.string, process)
    return prepared


def xrefs_by_ids(
    session: Session, tenant: str, entity: str, source_system: str, target_system: str, source_ids: list[str]
) -> dict[str, XrefRow]:
    """Id-map rows for one batch of source ids, as light tuples (memory stays flat however big the run)."""
    if not source_ids:
        return {}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        statement, ids = _XREFS_BY_IDS_PG, _text_array(source_ids)
    else:
        statement, ids = _XREFS_BY_IDS_SQLITE, orjson.dumps(source_ids).decode()
    rows = connection.execute(
        statement,
        {
            "tenant": tenant,
            "entity": entity,
            "source_system": source_system,
            "target_system": target_system,
            "source_ids": ids,
        },
    )
    return {source_id: (target_id, content_hash) for source_id, target_id, content_hash in rows}


def refresh_statistics(store: Store) -> None:
    """Let PostgreSQL's planner see what a bulk load just wrote to the id map (SQLite plans without)."""
    if store.is_postgres:
        with store.session() as session:
            session.execute(text("ANALYZE id_map"))


def _batch_target(session: Session) -> tuple[Connection, Dialect, datetime]:
    """The session's connection (the batch joins its transaction), its dialect and one time for all rows."""
    connection = session.connection()
    return connection, connection.dialect, utcnow()


def upsert_xrefs(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert or update many id-map rows in one round trip (dicts with IdMap column names)."""
    if not rows:
        return
    connection, dialect, now = _batch_target(session)
    if dialect.name == "postgresql":
        columns = [_text_array([row.get(name) for row in rows]) for name in _XREF_COLUMNS]
        # one statement may not update a row twice: as the executemany did, the last row for a key wins
        latest = {record[: len(_XREF_KEY)]: record for record in zip(*columns, strict=True)}
        if len(latest) < len(rows):
            columns = [list(values) for values in zip(*latest.values(), strict=True)]
        params = {f"{name}_values": values for name, values in zip(_XREF_COLUMNS, columns, strict=True)}
        connection.execute(_UPSERT_XREFS_PG, {**params, "now": now})
        return
    order = (*_XREF_COLUMNS, "last_synced_at")
    prepared = _driver_insert("upsert_xrefs", _UPSERT_XREFS_SQLITE, _ID_MAP, order, {"last_synced_at"}, dialect)
    synced = prepared.process.get("last_synced_at", _as_is)(now)
    prepared.run(connection, [(*map(row.get, _XREF_COLUMNS), synced) for row in rows])


#: the SQLite INSERT's parameters, in the order it binds them
_AUDIT_ORDER = ("tenant", "at", "flow", "action", "entity", "entity_id", "source_record", "mapping_version",
                "run_id", "details")


def audit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Many audit rows in one round trip (AuditEntry column names)."""
    if not rows:
        return
    connection, dialect, now = _batch_target(session)
    if dialect.name == "postgresql":
        params = {f"{name}_values": _text_array([row.get(name) for row in rows]) for name in _AUDIT_COLUMNS}
        if any("at" in row or "details" in row for row in rows):
            params["at_values"] = [row.get("at", now) for row in rows]
            params["details_values"] = [row.get("details", {}) for row in rows]
            connection.execute(_INSERT_AUDIT_PG_OWN, params)
        else:
            connection.execute(_INSERT_AUDIT_PG, {**params, "default_at": now, "default_details": {}})
        return
    prepared = _driver_insert("audit_many", _INSERT_AUDIT, _AUDIT, _AUDIT_ORDER, {"at", "details"}, dialect)
    process_at = prepared.process.get("at", _as_is)
    process_details = prepared.process.get("details", _as_is)
    at, details = process_at(now), process_details({})
    prepared.run(
        connection,
        [
            (
                row.get("tenant"),
                process_at(row["at"]) if "at" in row else at,
                row.get("flow"),
                row.get("action"),
                row.get("entity"),
                row.get("entity_id"),
                row.get("source_record"),
                row.get("mapping_version"),
                row.get("run_id"),
                process_details(row["details"]) if "details" in row else details,
            )
            for row in rows
        ],
    )


def _as_is(value: Any) -> Any:
    return value

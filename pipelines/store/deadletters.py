"""Dead letters: records that failed, with the reason, mapping version and original payload.

One open dead letter per (tenant, flow, record): failing again updates it instead of piling up rows,
so the list an operator sees is the list of records that need attention. The store holds that rule
itself (a partial unique index over the open letters, migration 0003), so writing a failure is one
upsert and never a lookup first: :func:`put` for one record, :func:`put_many` for a batch, inside the
caller's transaction (the import writes a batch's letters with its id-map and audit rows). Closing
letters is one UPDATE too (:func:`resolve`, :func:`resolve_many`).

Every letter carries a *reason code* (:func:`reason_code`): the error's kind, field and message with
its values taken out, so that "CPF 123… invalid" and "CPF 456… invalid" count as one reason in the
import's report, the log and ``ponte deadletter list --by-reason``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String, bindparam, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from pipelines.store.db import Store
from pipelines.store.models import DEAD_LETTER_OPEN, DeadLetter, utcnow
from pipelines.store.repos import _driver_insert, _text_array
from ponte import PonteError, redact

# ------------------------------------------------------------------------------------ reason codes

#: how long a reason code may get (the column holds 300)
REASON_LENGTH = 200
_DOCUMENT = re.compile(
    r"\*{2,3}\.\*{3}\.\*{3}(?:/\*{4})?-\w{2}"  # CPF / CNPJ as redact() masks them
    r"|\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2}\b"
)
_PHONE = re.compile(r"\+?\*{4,}\d{0,4}")
_EMAIL = re.compile(r"\S*@\S+")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_HEX = re.compile(r"\b(?=[0-9a-fA-F-]*\d)[0-9a-fA-F]{8,}(?:-[0-9a-fA-F]{4,})*\b")
_NUMBER = re.compile(r"(?<![\w<*])\d+(?:[.,]\d+)*(?![\w>])")
_SPACES = re.compile(r"\s+")


def template(message: str) -> str:
    """``message`` masked, with its values taken out: documents, e-mails, phones, quoted values, ids and
    numbers become placeholders (``CPF <document> is a placeholder``)."""
    text = redact(message or "")
    for pattern, placeholder in (
        (_DOCUMENT, "<document>"),
        (_PHONE, "<phone>"),
        (_EMAIL, "<email>"),
        (_QUOTED, "'…'"),
        (_HEX, "<id>"),
        (_NUMBER, "<n>"),
    ):
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()


@functools.lru_cache(maxsize=4096)
def reason_code_for(kind: str, field: str | None, message: str) -> str:
    """``kind/field: template`` (see :func:`template`; the message is masked first, so no personal data
    reaches a code). Records that failed the same way share a code."""
    template_ = template(message)
    head = f"{kind}/{field}" if field else kind
    code = f"{head}: {template_}" if template_ else head
    return code if len(code) <= REASON_LENGTH else code[: REASON_LENGTH - 1] + "…"


def reason_code(error: PonteError) -> str:
    """The reason ``error`` groups under (see :func:`reason_code_for`)."""
    return reason_code_for(error.kind, error.field, error.message)


# ------------------------------------------------------------------------------------------ writes

_TABLE = DeadLetter.__table__
#: ``status = 'open'`` as a literal, so both planners match it to the partial unique index
_IS_OPEN = DeadLetter.status == literal_column("'open'")
_KEY = ("tenant", "flow", "record_key")
#: what a failure sets, on a new letter and on the open one it updates
_FAILURE = ("error_kind", "reason", "reason_code", "field", "hint", "payload", "mapping_version", "run_id")
_GIVEN = (*_KEY, *_FAILURE)
#: what every new letter starts with, after the given columns
_START = ("status", "replay_count", "failures", "created_at", "updated_at")
#: SQLite's parameters, in the order of its INSERT (the table's)
_ORDER = tuple(column.name for column in _TABLE.c if column.name in (*_GIVEN, *_START))
_PLACE = [(*_GIVEN, *_START).index(name) for name in _ORDER]


@dataclass(frozen=True, slots=True)
class Letter:
    """One failed record, as :func:`put_many` writes it."""

    tenant: str
    flow: str
    record_key: str
    error: PonteError
    payload: dict[str, Any]
    mapping_version: str | None = None
    run_id: str | None = None


def _on_conflict(statement: Any) -> Any:
    """``statement`` (a dialect's INSERT) that updates the record's open letter when there is one."""
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=list(_KEY),
        index_where=DEAD_LETTER_OPEN,
        set_={
            **{name: excluded[name] for name in (*_FAILURE, "updated_at")},
            "failures": _TABLE.c.failures + literal_column("1"),
        },
    )


_UPSERT_SQLITE = _on_conflict(sqlite_insert(_TABLE))
# PostgreSQL: a batch is one INSERT ... SELECT FROM unnest(one array per column), the SQL the same for
# every batch (see pipelines.store.repos); payloads travel as JSON text, cast by the server
_rows = func.unnest(
    *(bindparam(f"{name}_values", type_=ARRAY(String())) for name in _GIVEN)
).table_valued(*_GIVEN).render_derived()
_now = bindparam("now", type_=_TABLE.c.created_at.type)
_UPSERT_PG = _on_conflict(
    pg_insert(_TABLE).from_select(
        [*_GIVEN, *_START],
        select(
            *(cast(_rows.c[name], _TABLE.c.payload.type) if name == "payload" else _rows.c[name]
              for name in _GIVEN),
            literal_column("'open'"),
            literal_column("0"),
            literal_column("1"),
            _now,
            _now,
        ),
    )
)


def _json(payload: Any) -> str:
    """A payload as JSON text (orjson when it can; what it cannot write, the json module does)."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(payload)


def _values(letter: Letter) -> tuple[Any, ...]:
    error = letter.error
    return (
        letter.tenant, letter.flow, letter.record_key, error.kind, error.message, reason_code(error),
        error.field, error.hint, _json(letter.payload if letter.payload is not None else {}),
        letter.mapping_version, letter.run_id,
    )


def put_many(session: Session, letters: Iterable[Letter]) -> int:
    """Write failed records as open dead letters in ``session``'s transaction: one statement for a
    batch, whatever the dead-letter table holds. A record with an open letter has it updated (reason,
    field, hint, payload, mapping version, run, time; ``failures`` + 1); a record named twice keeps its
    last failure. Returns the number of records written."""
    latest: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for letter in letters:
        values = _values(letter)
        latest[values[:3]] = values
    if not latest:
        return 0
    rows = list(latest.values())  # in the batch's order (the source's), the same for any two writers
    connection = session.connection()
    dialect = connection.dialect
    now = utcnow()
    if dialect.name == "postgresql":
        columns = list(zip(*rows, strict=True))
        params = {f"{name}_values": _text_array(list(values)) for name, values in zip(_GIVEN, columns, strict=True)}
        connection.execute(_UPSERT_PG, {**params, "now": now})
        return len(rows)
    prepared = _driver_insert(
        "dead_letters.put_many", _UPSERT_SQLITE, _TABLE, _ORDER, {"payload", "created_at", "updated_at"}, dialect
    )
    at = prepared.process.get("created_at", lambda value: value)(now)
    # the payload goes as the JSON text its bind processor would have made
    start = ("open", 0, 1, at, at)
    prepared.run(connection, [tuple((*values, *start)[i] for i in _PLACE) for values in rows])
    return len(rows)


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
    """Write one failed record as an open dead letter (or update its open one); returns the letter's id.
    One statement, the upsert of :func:`put_many`."""
    now = utcnow()
    values = {
        "tenant": tenant,
        "flow": flow,
        "record_key": record_key,
        "error_kind": error.kind,
        "reason": error.message,
        "reason_code": reason_code(error),
        "field": error.field,
        "hint": error.hint,
        "payload": payload if payload is not None else {},
        "mapping_version": mapping_version,
        "run_id": run_id,
        "status": "open",
        "replay_count": 0,
        "failures": 1,
        "created_at": now,
        "updated_at": now,
    }
    with store.session() as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = _on_conflict(insert(_TABLE).values(values)).returning(_TABLE.c.id)
        return int(session.execute(statement).scalar_one())


#: keys per UPDATE when closing letters in bulk
_RESOLVE_CHUNK = 1000


def resolve_many(session: Session, tenant: str, flow: str, record_keys: Collection[str]) -> int:
    """Close the open letters of records that now succeed (replayed, or fixed at the source), in
    ``session``'s transaction: one UPDATE per 1,000 keys. Returns how many were open."""
    keys = sorted(set(record_keys))
    closed = 0
    for start in range(0, len(keys), _RESOLVE_CHUNK):
        chunk = keys[start : start + _RESOLVE_CHUNK]
        which = DeadLetter.record_key == chunk[0] if len(chunk) == 1 else DeadLetter.record_key.in_(chunk)
        result = session.execute(
            update(DeadLetter)
            .where(DeadLetter.tenant == tenant, DeadLetter.flow == flow, which, _IS_OPEN)
            .values(status="replayed", replay_count=DeadLetter.replay_count + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        closed += result.rowcount or 0  # type: ignore[attr-defined]
    return closed


def resolve(store: Store, tenant: str, flow: str, record_key: str) -> int:
    """A record that now succeeds closes its open dead letter (replayed or fixed at the source): one
    UPDATE. Returns 1 if there was one, else 0."""
    with store.session() as session:
        return resolve_many(session, tenant, flow, [record_key])


# ------------------------------------------------------------------------------------------- reads

#: the reason a letter is grouped under (rows an older release wrote while an upgrade rolled out have
#: no code: their kind stands in)
REASON = func.coalesce(DeadLetter.reason_code, DeadLetter.error_kind)


def _open(tenant: str | None = None, flow: str | None = None, reason: str | None = None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [_IS_OPEN]
    if tenant:
        where.append(DeadLetter.tenant == tenant)
    if flow:
        where.append(DeadLetter.flow == flow)
    if reason:
        where.append(func.lower(REASON).contains(reason.lower(), autoescape=True))
    return where



def list_open(store: Store, tenant: str | None = None, flow: str | None = None) -> list[DeadLetter]:
    """Every open letter (of ``tenant``/``flow``), oldest first. Loads them all: for a table that may
    be big, use :func:`page` or :func:`open_after`."""
    with store.session() as session:
        return list(session.scalars(select(DeadLetter).where(*_open(tenant, flow)).order_by(DeadLetter.id)))


def page(
    store: Store,
    *,
    tenant: str | None = None,
    flow: str | None = None,
    reason: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[DeadLetter]:
    """One page of open letters, oldest first; ``reason`` matches any part of a reason code."""
    query = select(DeadLetter).where(*_open(tenant, flow, reason)).order_by(DeadLetter.id)
    with store.session() as session:
        return list(session.scalars(query.limit(limit).offset(offset)))


def count_open(
    store: Store, tenant: str | None = None, flow: str | None = None, reason: str | None = None
) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(DeadLetter).where(*_open(tenant, flow, reason))) or 0


@dataclass(frozen=True)
class ReasonGroup:
    """Open letters that failed for the same reason: how many, since when, and one of them."""

    tenant: str
    flow: str
    reason: str
    count: int
    oldest: datetime
    newest: datetime
    example_id: int
    example_record: str


def by_reason(
    store: Store, *, tenant: str | None = None, flow: str | None = None, reason: str | None = None
) -> list[ReasonGroup]:
    """Open letters counted by tenant, flow and reason, most frequent first (two queries)."""
    reason_label = REASON.label("reason")
    query = (
        select(DeadLetter.tenant, DeadLetter.flow, reason_label, func.count(), func.min(DeadLetter.created_at),
               func.max(DeadLetter.updated_at), func.min(DeadLetter.id))
        .where(*_open(tenant, flow, reason))
        .group_by(DeadLetter.tenant, DeadLetter.flow, reason_label)
        .order_by(func.count().desc(), DeadLetter.tenant, DeadLetter.flow, reason_label)
    )
    with store.session() as session:
        rows = session.execute(query).all()
        examples = dict(
            session.execute(
                select(DeadLetter.id, DeadLetter.record_key).where(DeadLetter.id.in_([row[6] for row in rows]))
            ).all()
        ) if rows else {}
    return [
        ReasonGroup(
            tenant=tenant_, flow=flow_, reason=code, count=count, oldest=oldest, newest=newest,
            example_id=example, example_record=examples.get(example, ""),
        )
        for tenant_, flow_, code, count, oldest, newest, example in rows
    ]


def open_keys(store: Store, tenant: str, flow: str, prefix: str = "") -> set[str]:
    """The record keys (starting with ``prefix``) that have an open letter: one query, keys only."""
    query = select(DeadLetter.record_key).where(*_open(tenant, flow))
    if prefix:
        query = query.where(DeadLetter.record_key.startswith(prefix, autoescape=True))
    with store.session() as session:
        return set(session.scalars(query))


def open_groups(store: Store, tenant: str | None = None, flow: str | None = None) -> list[tuple[str, str, int, int]]:
    """(tenant, flow, open letters, highest id) for each tenant and flow with open letters."""
    query = (
        select(DeadLetter.tenant, DeadLetter.flow, func.count(), func.max(DeadLetter.id))
        .where(*_open(tenant, flow))
        .group_by(DeadLetter.tenant, DeadLetter.flow)
        .order_by(DeadLetter.tenant, DeadLetter.flow)
    )
    with store.session() as session:
        return [(t, f, int(n), int(top)) for t, f, n, top in session.execute(query)]


def open_after(
    store: Store,
    tenant: str,
    flow: str,
    after_id: int,
    limit: int,
    *,
    up_to: int | None = None,
    prefix: str = "",
) -> list[DeadLetter]:
    """The next ``limit`` open letters of ``tenant``/``flow`` with an id above ``after_id`` (and at most
    ``up_to``), by id: keyset paging, which neither skips nor repeats a letter while earlier ones close."""
    query = select(DeadLetter).where(*_open(tenant, flow), DeadLetter.id > after_id)
    if up_to is not None:
        query = query.where(DeadLetter.id <= up_to)
    if prefix:
        query = query.where(DeadLetter.record_key.startswith(prefix, autoescape=True))
    with store.session() as session:
        return list(session.scalars(query.order_by(DeadLetter.id).limit(limit)))


def find_open(store: Store, tenant: str, flow: str, record_key: str) -> DeadLetter | None:
    """The record's open letter, if it has one."""
    with store.session() as session:
        return session.scalars(
            select(DeadLetter).where(*_open(tenant, flow), DeadLetter.record_key == record_key)
        ).one_or_none()


def states(store: Store, ids: Collection[int]) -> dict[int, tuple[str, str, int]]:
    """id -> (status, reason, failures) of the given letters."""
    found: dict[int, tuple[str, str, int]] = {}
    wanted = sorted(set(ids))
    with store.session() as session:
        for start in range(0, len(wanted), _RESOLVE_CHUNK):
            chunk = wanted[start : start + _RESOLVE_CHUNK]
            for letter_id, status, reason, failures in session.execute(
                select(DeadLetter.id, DeadLetter.status, DeadLetter.reason, DeadLetter.failures)
                .where(DeadLetter.id.in_(chunk))
            ):
                found[letter_id] = (status, reason, failures)
    return found


def get(store: Store, dead_letter_id: int) -> DeadLetter | None:
    with store.session() as session:
        return session.get(DeadLetter, dead_letter_id)

"""The inbox: received webhooks, stored raw before they are acknowledged, deduplicated by event id.

``INSERT ... ON CONFLICT DO NOTHING`` makes a duplicate delivery cost one statement and no exception,
on both backends, and several gateway processes can write concurrently.

Whatever an authentic delivery carries is stored, never truncated and never refused by a column: an
event id longer than the key column is keyed by its SHA-256 (and kept in full beside it), the event type
is unbounded text, NUL and lone surrogates (no PostgreSQL text holds the first, no UTF-8 the second) are
escaped in the text columns, and an event time that cannot be expressed in UTC is left to the body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.store.db import Store
from pipelines.store.models import InboxEvent, utcnow

#: providers retry for days (Sienge ~10 h, Clicksign ~27 h, DocuSign longer): keep ids at least this long
DEDUPE_RETENTION = timedelta(days=30)


#: event ids up to this many characters (the key column's length) are their own dedupe key
KEY_LENGTH = 200
#: how a digest key starts; an id that itself starts so is digested too, so no id can pose as another's key
DIGEST_PREFIX = "sha256:"


def _storable(text: str) -> bool:
    """Whether a text column on both backends holds ``text`` as it is (UTF-8 without NUL)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON body's "\ud800"
        return False
    return True


def storable_text(text: str) -> str:
    """``text`` unchanged when a text column can hold it, else with NUL as ``\\x00`` and lone surrogates as
    ``\\udXXX`` (for display only: the dedupe key is computed from the text as delivered)."""
    if _storable(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def dedupe_key(event_id: str) -> str:
    """The inbox key of an event id: the id itself when short and storable, else ``sha256:<hex>`` of it.

    One-to-one on every string (up to SHA-256 collisions): a plain key never starts with
    ``DIGEST_PREFIX``, and ``surrogatepass`` encodes any Python string, lone surrogates included, to
    distinct bytes.
    """
    if len(event_id) <= KEY_LENGTH and not event_id.startswith(DIGEST_PREFIX) and _storable(event_id):
        return event_id
    return DIGEST_PREFIX + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def _in_utc(moment: datetime | None) -> datetime | None:
    """The event time in UTC; None when UTC cannot express it (year 1 at +05:00), the body still has it."""
    if moment is None:
        return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        return None


_TABLE = InboxEvent.__table__
_KEY = ["tenant", "connector", "event_id"]
#: built once per dialect and executed with parameters: SQLAlchemy then reuses the compiled statement,
#: where ``.values(**row)`` per call rebuilt it and its cache key (a third of the gateway's time per delivery)
_INSERT = {
    name: dialect.insert(_TABLE).on_conflict_do_nothing(index_elements=_KEY).returning(_TABLE.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


@dataclass(frozen=True)
class Stored:
    id: int | None
    duplicate: bool


def store_event(
    store: Store,
    *,
    tenant: str,
    connector: str,
    event_id: str,
    body: bytes,
    headers: dict[str, Any] | None = None,
    event_type: str | None = None,
    event_time: datetime | None = None,
) -> Stored:
    """Insert one delivery; a second copy of the same event id is counted, not stored."""
    values = {
        "tenant": tenant,
        "connector": connector,
        "event_id": dedupe_key(event_id),
        "original_event_id": storable_text(event_id),
        "event_type": None if event_type is None else storable_text(event_type),
        "event_time": _in_utc(event_time),
        "headers": headers or {},
        "body": body,
        "status": "new",
        "attempts": 0,
        "duplicates": 0,
        "available_at": utcnow(),
        "received_at": utcnow(),
    }
    statement = _INSERT["postgresql" if store.is_postgres else "sqlite"]
    # a plain connection transaction: the gateway's hot path, where an ORM session's set-up and
    # teardown cost as much as the insert itself
    with store.engine.begin() as conn:
        new_id = conn.execute(statement, values).scalar()
        if new_id is not None:
            return Stored(new_id, duplicate=False)
        conn.execute(
            update(InboxEvent)
            .where(
                InboxEvent.tenant == tenant,
                InboxEvent.connector == connector,
                InboxEvent.event_id == values["event_id"],
            )
            .values(duplicates=InboxEvent.duplicates + 1)
        )
        return Stored(None, duplicate=True)


def load_events(store: Store, ids: list[int]) -> list[InboxEvent]:
    with store.session() as session:
        return list(session.scalars(select(InboxEvent).where(InboxEvent.id.in_(ids)).order_by(InboxEvent.id)))


def purge_processed(store: Store, now: datetime | None = None) -> int:
    """Forget processed events older than the dedupe window."""
    cutoff = (now or utcnow()) - DEDUPE_RETENTION
    with store.session() as session:
        result = session.execute(
            delete(InboxEvent).where(InboxEvent.status == "done", InboxEvent.received_at < cutoff)
        )
        return result.rowcount or 0

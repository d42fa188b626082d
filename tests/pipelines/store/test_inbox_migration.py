"""Migration 0002 (full event ids, unbounded event types) on an existing inbox, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from pipelines.store import Base, Store
from pipelines.store.inbox import store_event
from pipelines.store.models import InboxEvent

CUT = "p" * 200  # how the previous revision stored any id of 201+ characters starting so
LEGACY_ROWS = [("evt-1", "CUSTOMER_UPDATED"), (CUT, "SALES_CONTRACT_UPDATED")]


@pytest.fixture
def legacy_store(db_url: str) -> Iterator[Store]:
    """A store at revision 0001 holding two inbox rows written by the previous code."""
    store = Store(db_url)
    store.upgrade("0001")
    with store.engine.begin() as conn:
        for event_id, event_type in LEGACY_ROWS:
            conn.execute(
                text(
                    "INSERT INTO inbox (tenant, connector, event_id, event_type, headers, body, status,"
                    " attempts, available_at, received_at, duplicates) VALUES ('demo', 'sienge', :id, :type,"
                    " '{}', :body, 'new', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
                ),
                {"id": event_id, "type": event_type, "body": b"{}"},
            )
    try:
        yield store
    finally:
        store.dispose()


def _head(store: Store) -> str | None:
    """The newest revision (later ones leave the inbox as 0002 made it)."""
    return ScriptDirectory.from_config(store._alembic_config()).get_current_head()


def _rows(store: Store) -> list[InboxEvent]:
    with store.session() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_upgrading_an_existing_inbox_keeps_its_rows_and_its_dedupe(legacy_store: Store) -> None:
    store = legacy_store
    store.upgrade()
    assert store.current_revision() == _head(store)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    rows = _rows(store)
    assert [(r.event_id, r.original_event_id, r.event_type) for r in rows] == [
        (event_id, event_id, event_type) for event_id, event_type in LEGACY_ROWS
    ]
    # a redelivery of a row stored before the upgrade is still a duplicate
    assert store_event(store, tenant="demo", connector="sienge", event_id="evt-1", body=b"{}").duplicate
    # a long id whose cut matches an old key is a distinct event now: stored, not swallowed
    longer = CUT + "q"
    assert not store_event(store, tenant="demo", connector="sienge", event_id=longer, body=b"{}").duplicate
    long_type = "CUSTOMER_UPDATED" + "_X" * 60
    assert not store_event(
        store, tenant="demo", connector="sienge", event_id="evt-2", event_type=long_type, body=b"{}"
    ).duplicate
    rows = _rows(store)
    assert [r.duplicates for r in rows] == [1, 0, 0, 0]
    assert [r.original_event_id for r in rows[2:]] == [longer, "evt-2"]
    assert rows[3].event_type == long_type


def test_downgrading_cuts_event_types_back_and_upgrading_again_works(legacy_store: Store) -> None:
    store = legacy_store
    store.upgrade()
    store_event(store, tenant="demo", connector="sienge", event_id="e" * 300, event_type="T" * 150, body=b"{}")
    command.downgrade(store._alembic_config(), "0001")
    assert store.current_revision() == "0001"
    assert "original_event_id" not in {c["name"] for c in inspect(store.engine).get_columns("inbox")}
    with store.engine.connect() as conn:
        kept = conn.execute(text("SELECT event_id, event_type FROM inbox ORDER BY id")).all()
    assert len(kept) == 3 and all(len(key) <= 200 for key, _type in kept)
    if store.is_postgres:  # SQLite does not enforce a VARCHAR length
        assert kept[-1][1] == "T" * 100
    store.upgrade()
    assert store.current_revision() == _head(store)
    assert store_event(store, tenant="demo", connector="sienge", event_id="e" * 300, body=b"{}").duplicate

"""The state store on SQLite and PostgreSQL: migrations, uniqueness, and safe claiming across processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from pipelines.store import Base, Store
from pipelines.store.claims import claim, release
from pipelines.store.models import InboxEvent, OutboxItem, SyncCursor

EXPECTED_TABLES = {
    "tenants",
    "sync_cursors",
    "id_map",
    "outbox",
    "inbox",
    "dead_letters",
    "envelopes",
    "envelope_signers",
    "audit_log",
    "package_ledger",
    "verified_emails",
    "rate_budgets",
}


def test_migrations_create_every_table_and_match_the_models(store: Store) -> None:
    assert set(store.tables()) >= EXPECTED_TABLES
    assert store.current_revision() is not None
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], "models changed without a migration: write one with alembic revision --autogenerate"


def test_upgrade_is_idempotent(store: Store) -> None:
    before = store.current_revision()
    store.upgrade()
    assert store.current_revision() == before


def test_inbox_refuses_a_second_copy_of_the_same_event(store: Store) -> None:
    with store.session() as session:
        session.add(InboxEvent(tenant="demo", connector="docusign", event_id="evt-1", body=b"{}"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(InboxEvent(tenant="demo", connector="docusign", event_id="evt-1", body=b"{}"))
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 1


def test_outbox_refuses_a_second_write_with_the_same_idempotency_key(store: Store) -> None:
    with store.session() as session:
        session.add(OutboxItem(tenant="demo", connector="docusign", action="create", idempotency_key="k1"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(OutboxItem(tenant="demo", connector="docusign", action="create", idempotency_key="k1"))


def test_timestamps_come_back_aware_and_in_utc(store: Store) -> None:
    moment = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    with store.session() as session:
        session.add(
            SyncCursor(tenant="demo", connector="sienge", stream="customers", value="x", updated_at=moment)
        )
    with store.session() as session:
        row = session.scalars(select(SyncCursor)).one()
    assert row.updated_at == moment and row.updated_at.tzinfo is not None


def _seed_outbox(store: Store, count: int) -> None:
    with store.session() as session:
        session.add_all(
            OutboxItem(tenant="demo", connector="cvcrm", action="upsert", idempotency_key=f"key-{i}")
            for i in range(count)
        )


def _drain(url: str, worker: str) -> list[int]:
    store = Store(url)
    taken: list[int] = []
    while True:
        ids = claim(store, OutboxItem, worker=worker, limit=7, lease_seconds=60)
        if not ids:
            break
        taken.extend(ids)
        for item_id in ids:
            assert release(store, OutboxItem, item_id, worker=worker, status="done")
    store.dispose()
    return taken


def test_four_processes_claim_every_item_exactly_once(store: Store) -> None:
    _seed_outbox(store, 300)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        results = list(pool.map(_drain, [store.url] * 4, [f"w{i}" for i in range(4)]))
    taken = [item for result in results for item in result]
    assert len(taken) == 300
    assert len(set(taken)) == 300
    with store.session() as session:
        assert session.scalar(select(func.count()).where(OutboxItem.status != "done")) == 0


def test_an_expired_lease_is_taken_over_and_the_old_worker_cannot_finish(store: Store) -> None:
    _seed_outbox(store, 1)
    (item,) = claim(store, OutboxItem, worker="crashed", lease_seconds=60)
    assert claim(store, OutboxItem, worker="other") == []  # still leased
    with store.session() as session:  # the crashed worker's lease runs out
        session.execute(update(OutboxItem).values(claimed_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert claim(store, OutboxItem, worker="other") == [item]
    assert not release(store, OutboxItem, item, worker="crashed", status="done")
    assert release(store, OutboxItem, item, worker="other", status="done")
    with store.session() as session:
        assert session.get(OutboxItem, item).attempts == 2


def test_failed_items_wait_for_their_retry_time(store: Store) -> None:
    _seed_outbox(store, 1)
    (item,) = claim(store, OutboxItem, worker="w")
    release(store, OutboxItem, item, worker="w", status="failed", error="503", retry_in_seconds=3600)
    assert claim(store, OutboxItem, worker="w") == []

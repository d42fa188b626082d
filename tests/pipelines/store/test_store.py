"""The state store on SQLite and PostgreSQL: migrations, uniqueness, and safe claiming across processes."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from pipelines.store import Base, Store, open_store
from pipelines.store.claims import claim, release
from pipelines.store.models import AuditEntry, IdMap, InboxEvent, OutboxItem, SyncCursor
from pipelines.store.repos import audit_many, upsert_xrefs, xrefs_by_ids

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


def _xref(tenant: str, source_id: str, target_id: str | None, content_hash: str | None = "h1") -> dict[str, Any]:
    return {"tenant": tenant, "entity": "person", "source_system": "sienge", "source_id": source_id,
            "target_system": "cvcrm", "target_id": target_id, "content_hash": content_hash,
            "mapping_version": "v1"}


def _audit(tenant: str, entity_id: str, **extra: Any) -> dict[str, Any]:
    return {"tenant": tenant, "flow": "import", "action": "created", "entity": "customers",
            "entity_id": entity_id, "source_record": f"sienge:customers:{entity_id}", "run_id": "r1", **extra}


def _batch_round_trip(store: Store, tenant: str = "demo") -> None:
    """The import's batch bookkeeping: what lands in the tables, whichever way each backend sends it."""
    before = datetime.now(UTC) - timedelta(seconds=5)
    with store.session() as session:
        upsert_xrefs(session, [_xref(tenant, "1", "T1"), _xref(tenant, "2", None, None), _xref(tenant, "3", "T3")])
    with store.session() as session:
        # an update, and the same key twice in one batch: the last row wins, as row by row
        upsert_xrefs(
            session, [_xref(tenant, "1", "T1b", "h2"), _xref(tenant, "4", "T4"), _xref(tenant, "4", "T4b", "h4")]
        )
    with store.session() as session:
        known = xrefs_by_ids(session, tenant, "person", "sienge", "cvcrm", ["1", "2", "4", "missing"])
        rows = session.scalars(select(IdMap).where(IdMap.tenant == tenant).order_by(IdMap.source_id)).all()
    assert known == {"1": ("T1b", "h2"), "2": (None, None), "4": ("T4b", "h4")}
    assert [row.source_id for row in rows] == ["1", "2", "3", "4"]
    assert all(row.last_synced_at.tzinfo is not None and row.last_synced_at > before for row in rows)

    moment = datetime(2026, 7, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-3)))
    with store.session() as session:
        audit_many(session, [_audit(tenant, "a1"), _audit(tenant, "a2")])
        audit_many(session, [_audit(tenant, "a3"), _audit(tenant, "a4", at=moment, details={"changed": ["é"]}),
                             _audit(tenant, "a5", details=None)])
    with store.session() as session:
        entries = {row.entity_id: row for row in session.scalars(select(AuditEntry).where(AuditEntry.tenant == tenant))}
        stored_null = session.scalar(
            text("SELECT count(*) FROM audit_log WHERE tenant = :tenant AND details IS NULL"), {"tenant": tenant}
        )
    assert sorted(entries) == ["a1", "a2", "a3", "a4", "a5"]
    assert entries["a1"].details == {} and entries["a3"].details == {}
    assert entries["a4"].details == {"changed": ["é"]}
    assert entries["a5"].details is None and stored_null == 0  # JSON null, as the executemany stored it
    assert entries["a4"].at == moment and entries["a4"].at.tzinfo == UTC
    assert entries["a1"].at > before and entries["a1"].at.tzinfo == UTC
    assert entries["a1"].mapping_version is None and entries["a1"].source_record == "sienge:customers:a1"


def test_id_map_and_audit_batches_round_trip(store: Store) -> None:
    _batch_round_trip(store)


@pytest.mark.postgres
def test_batch_statements_serve_sqlite_and_postgres_in_one_process(tmp_path: Path, postgres_url: str) -> None:
    """The batch statements are built and compiled once per process and dialect: a process that opens a
    SQLite store, then a PostgreSQL one, then SQLite again must get each backend's own statements."""
    tenant = f"mixed-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the test session
    for url in (f"sqlite:///{tmp_path / 'a.db'}", postgres_url, f"sqlite:///{tmp_path / 'b.db'}"):
        store = open_store(url)
        try:
            _batch_round_trip(store, tenant)
        finally:
            store.dispose()

"""Exactly-once writes (outbox) and deduplicated webhook storage (inbox), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from pipelines.outbox import write_once
from pipelines.store import Store, deadletters
from pipelines.store.inbox import purge_processed, store_event
from pipelines.store.models import InboxEvent, OutboxItem
from ponte.errors import DataError, TransientError


class FakeProvider:
    """Stands in for the provider side of one write: counts what really got created."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.fail_next_after_create = False

    def send(self) -> tuple[str, dict]:
        self.created.append("env")
        if self.fail_next_after_create:
            self.fail_next_after_create = False
            raise TransientError("read timeout after the request was sent")
        return f"env-{len(self.created)}", {"n": len(self.created)}

    def find(self):
        return (f"env-{len(self.created)}", {"found": True}) if self.created else None


def _write(store: Store, provider: FakeProvider, worker: str = "w1"):
    return write_once(
        store,
        tenant="demo",
        connector="docusign",
        action="create_envelope",
        key="demo:contract-7:abc123",
        payload={"contract": "7"},
        send=provider.send,
        find=provider.find,
        worker=worker,
    )


def _worker_died_after_sending(store: Store) -> None:
    """An outbox row left by a worker killed after recording sent_at, its lease already expired."""
    with store.session() as session:
        session.add(
            OutboxItem(
                tenant="demo",
                connector="docusign",
                action="create_envelope",
                idempotency_key="demo:contract-7:abc123",
                status="in_flight",
                claimed_by="dead-worker",
                claimed_until=datetime.now(UTC) - timedelta(seconds=1),
                sent_at=datetime.now(UTC) - timedelta(seconds=30),
            )
        )


def test_a_done_write_is_never_sent_again(store: Store) -> None:
    provider = FakeProvider()
    first = _write(store, provider)
    second = _write(store, provider)
    assert first.how == "sent" and second.how == "already_done"
    assert second.external_id == first.external_id == "env-1"
    assert len(provider.created) == 1


def test_a_timeout_after_sending_is_resolved_by_lookup_not_by_a_second_send(store: Store) -> None:
    provider = FakeProvider()
    provider.fail_next_after_create = True
    with pytest.raises(TransientError):
        _write(store, provider)
    outcome = _write(store, provider)
    assert outcome.how == "found"
    assert len(provider.created) == 1


def test_a_crash_after_sending_is_resolved_by_lookup(store: Store) -> None:
    provider = FakeProvider()
    provider.created.append("env")  # the provider got it...
    _worker_died_after_sending(store)  # ...and the worker died holding the lease, after recording sent_at
    outcome = _write(store, provider, worker="w2")
    assert outcome.how == "found" and len(provider.created) == 1


def test_a_crash_before_the_provider_got_it_sends_exactly_once(store: Store) -> None:
    provider = FakeProvider()
    _worker_died_after_sending(store)
    outcome = _write(store, provider, worker="w2")
    assert outcome.how == "sent" and len(provider.created) == 1


def test_a_live_lease_elsewhere_defers_instead_of_sending(store: Store) -> None:
    provider = FakeProvider()
    with store.session() as session:
        session.add(
            OutboxItem(
                tenant="demo",
                connector="docusign",
                action="create_envelope",
                idempotency_key="demo:contract-7:abc123",
                status="in_flight",
                claimed_by="busy-worker",
                claimed_until=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
    with pytest.raises(TransientError, match="in flight in another worker"):
        _write(store, provider, worker="w2")
    assert provider.created == []


def test_a_data_error_marks_the_write_dead(store: Store) -> None:
    def bad_send():
        raise DataError("signer has no e-mail", field="signers[0].email")

    with pytest.raises(DataError):
        write_once(
            store,
            tenant="demo",
            connector="docusign",
            action="create_envelope",
            key="k-bad",
            payload={},
            send=bad_send,
            find=None,
            worker="w",
        )
    with store.session() as session:
        assert session.scalars(select(OutboxItem.status)).one() == "dead"


def test_the_inbox_stores_an_event_once_and_counts_duplicates(store: Store) -> None:
    first = store_event(store, tenant="demo", connector="clicksign", event_id="e1", body=b'{"a":1}')
    second = store_event(store, tenant="demo", connector="clicksign", event_id="e1", body=b'{"a":1}')
    other = store_event(store, tenant="demo", connector="docusign", event_id="e1", body=b"{}")
    assert not first.duplicate and second.duplicate and not other.duplicate
    with store.session() as session:
        rows = session.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
    assert [(r.connector, r.duplicates) for r in rows] == [("clicksign", 1), ("docusign", 0)]
    assert rows[0].body == b'{"a":1}'


def test_processed_events_are_kept_for_the_dedupe_window(store: Store) -> None:
    stored = store_event(store, tenant="demo", connector="sienge", event_id="old", body=b"{}")
    with store.session() as session:
        session.execute(update(InboxEvent).values(status="done"))
    assert purge_processed(store, now=datetime.now(UTC) + timedelta(days=29)) == 0
    assert purge_processed(store, now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert stored.id is not None


def test_dead_letters_keep_one_open_row_per_record(store: Store) -> None:
    error = DataError("CPF check digits do not match", field="cpf", hint="fix the CPF in Sienge")
    first = deadletters.put(
        store, tenant="demo", flow="import", record_key="customer:9", error=error, payload={"id": 9}
    )
    again = deadletters.put(
        store, tenant="demo", flow="import", record_key="customer:9", error=error, payload={"id": 9}
    )
    assert first == again
    (row,) = deadletters.list_open(store, "demo")
    assert (row.reason, row.field, row.hint, row.payload) == (
        "CPF check digits do not match",
        "cpf",
        "fix the CPF in Sienge",
        {"id": 9},
    )
    assert deadletters.resolve(store, "demo", "import", "customer:9") == 1
    assert deadletters.list_open(store, "demo") == []


# -- odd but authentic deliveries: long ids, long types, characters a column cannot hold ----------------

PREFIX_200 = "evt-" + "x" * 196  # as long as the key column: two ids that differ only after it


def _inbox(store: Store) -> list[InboxEvent]:
    with store.session() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_two_distinct_ids_longer_than_the_key_column_are_both_stored(store: Store) -> None:
    first, second = PREFIX_200 + "a", PREFIX_200 + "b"  # 201 characters, the same first 200
    stored = [store_event(store, tenant="demo", connector="sienge", event_id=i, body=b"{}") for i in (first, second)]
    assert [s.duplicate for s in stored] == [False, False], "a distinct event was acknowledged as a duplicate"
    assert store_event(store, tenant="demo", connector="sienge", event_id=second, body=b"{}").duplicate
    rows = _inbox(store)
    assert [r.original_event_id for r in rows] == [first, second]
    assert [r.duplicates for r in rows] == [0, 1]
    assert all(len(r.event_id) <= 200 for r in rows)


def test_an_event_type_longer_than_100_characters_is_stored_in_full(store: Store) -> None:
    event_type = "CUSTOMER_UPDATED_" + "X" * 150
    store_event(store, tenant="demo", connector="sienge", event_id="t1", event_type=event_type, body=b"{}")
    assert [r.event_type for r in _inbox(store)] == [event_type]


@pytest.mark.parametrize(
    "event_id",
    [
        "x" * 200,  # exactly the column: stored as is
        "é" * 200 + "ü",  # characters, not bytes, count
        "\U0001f600" * 300,  # 4-byte characters
        "nul\x00inside",  # PostgreSQL text cannot hold NUL
        "lone \ud800 surrogate",  # not encodable as UTF-8
        "sha256:" + "0" * 64,  # looks like a digest key: must not collide with one
        " padded ",
    ],
    ids=["200", "accented-201", "emoji-300", "nul", "surrogate", "digest-like", "padded"],
)
def test_odd_event_ids_are_stored_once_and_a_redelivery_is_a_duplicate(store: Store, event_id: str) -> None:
    odd = {"event_id": event_id, "event_type": event_id, "headers": {"x-odd": event_id}, "body": b"{}"}
    first = store_event(store, tenant="demo", connector="cvcrm", **odd)
    again = store_event(store, tenant="demo", connector="cvcrm", **odd)
    assert (first.duplicate, again.duplicate) == (False, True)
    (row,) = _inbox(store)
    assert len(row.event_id) <= 200 and row.duplicates == 1
    assert row.headers == {"x-odd": event_id}  # JSON escapes whatever a header value holds
    if "\x00" not in event_id and "\ud800" not in event_id:
        assert (row.original_event_id, row.event_type) == (event_id, event_id)


def test_a_digest_like_id_and_the_long_id_it_digests_stay_apart(store: Store) -> None:
    import hashlib

    long_id = "y" * 500
    digest_like = "sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    stored = [store_event(store, tenant="demo", connector="cvcrm", event_id=i, body=b"{}") for i in (long_id, digest_like)]
    assert [s.duplicate for s in stored] == [False, False]
    assert sorted(r.original_event_id for r in _inbox(store)) == sorted([long_id, digest_like])


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5))),  # after year 9999 in UTC
    ],
    ids=["year-0", "year-10000"],
)
def test_an_event_time_outside_pythons_range_in_utc_does_not_fail_the_store(store: Store, moment: datetime) -> None:
    stored = store_event(store, tenant="demo", connector="docusign", event_id="t", event_time=moment, body=b"{}")
    assert not stored.duplicate
    (row,) = _inbox(store)
    assert row.event_time is None  # the time stays in the stored body

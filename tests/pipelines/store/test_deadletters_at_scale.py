"""Dead letters at scale (issue #17, point 2): a failed record costs about what a good one costs.

Found on a realistic import: every failure looked its open dead letter up with a query that read the
whole open set of the tenant's flow (2.8 ms a failure at 2,000 letters, more after), so a run with
10,388 dead letters spent 70 of its 74 s on them. Now one partial unique index keeps one open letter
per record, and letters are upserted in batches with the batch's other writes; the CLI pages, groups
by reason and replays in chunks. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from orchestration.cli.app import app
from pipelines.store import Base, Store, deadletters
from pipelines.store.models import DeadLetter
from ponte.errors import DataError, NotFoundError

N = 10_000
BATCH = 200
TENANT = "demo"


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's engine sends while the block runs (an executemany counts once)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def _cpf_error(i: int) -> DataError:
    """Three reasons whose messages differ from record to record but group together."""
    if i % 10 < 6:
        return DataError("CPF check digits do not match (typo in the number?)", field="document",
                         hint="correct the value in the source system")
    if i % 10 < 9:
        digit = str(i % 10)
        return DataError(f"CPF {digit * 3}.{digit * 3}.{digit * 3}-{digit * 2} is a placeholder (all digits the"
                         " same), not a real CPF", field="document", hint="correct it in Sienge")
    return DataError(f"a CPF has 11 digits and a CNPJ 14 characters, got {i % 7 + 1}", field="document")


def _letters(start: int, stop: int, *, run_id: str = "run-1", error: Any = None) -> list[deadletters.Letter]:
    return [
        deadletters.Letter(
            tenant=TENANT, flow="import", record_key=f"customer:{i}",
            error=error(i) if error else _cpf_error(i),
            payload={"id": i, "name": f"Cliente {i}", "cpf": "529.982.247-25"},
            mapping_version="v1+v2", run_id=run_id,
        )
        for i in range(start, stop)
    ]


def _write(store: Store, letters_of: Any, total: int = N) -> list[int]:
    """``total`` letters through put_many, one transaction per batch; the statements of each batch."""
    per_batch: list[int] = []
    for start in range(0, total, BATCH):
        with statements(store) as seen, store.session() as session:
            deadletters.put_many(session, letters_of(start, min(start + BATCH, total)))
        per_batch.append(len(seen))
    return per_batch


def _open(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.status == "open")) or 0


# ------------------------------------------------------------------------------- writing at scale

def test_ten_thousand_letters_in_batches_cost_the_same_statements_per_batch(store: Store) -> None:
    first = _write(store, _letters)
    assert len(first) == N // BATCH
    assert len(set(first)) == 1 and first[0] <= 3, f"statements per batch must not grow: {Counter(first)}"
    assert _open(store) == N

    # the same records fail again (a scheduled re-run): the open rows are updated, still no lookup
    again = _write(store, lambda a, b: _letters(a, b, run_id="run-2",
                                                error=lambda i: DataError("CRM refused it", field="email")))
    assert again == first
    with store.session() as session:
        rows = session.execute(
            select(DeadLetter.status, DeadLetter.failures, DeadLetter.run_id, DeadLetter.reason, func.count())
            .group_by(DeadLetter.status, DeadLetter.failures, DeadLetter.run_id, DeadLetter.reason)
        ).all()
    assert rows == [("open", 2, "run-2", "CRM refused it", N)]


def test_a_batch_that_names_a_record_twice_keeps_one_open_letter_with_the_last_reason(store: Store) -> None:
    twice = [*_letters(0, 3), *_letters(1, 2, error=lambda i: DataError("second reason"))]
    with store.session() as session:
        deadletters.put_many(session, twice)
    letters = deadletters.list_open(store, TENANT)
    assert [(d.record_key, d.reason) for d in letters if d.record_key == "customer:1"] == [
        ("customer:1", "second reason")]
    assert len(letters) == 3


def test_failing_again_updates_the_open_row_and_a_resolved_record_opens_a_new_one(store: Store) -> None:
    first = deadletters.put(store, tenant=TENANT, flow="import", record_key="customer:9",
                            error=DataError("CPF check digits do not match", field="document"),
                            payload={"id": 9}, run_id="run-1")
    with store.session() as session:
        opened = session.get(DeadLetter, first)
        assert opened is not None
        created, updated = opened.created_at, opened.updated_at
    again = deadletters.put(store, tenant=TENANT, flow="import", record_key="customer:9",
                            error=NotFoundError("customer 9 is gone", hint="nothing to do"),
                            payload={"id": 9, "v": 2}, mapping_version="v2", run_id="run-2")
    assert again == first
    (row,) = deadletters.list_open(store, TENANT)
    assert (row.error_kind, row.reason, row.field, row.hint, row.payload, row.mapping_version, row.run_id) == (
        "not_found", "customer 9 is gone", None, "nothing to do", {"id": 9, "v": 2}, "v2", "run-2")
    assert row.failures == 2 and row.created_at == created and row.updated_at >= updated
    assert row.reason_code == "not_found: customer <n> is gone"

    # the batch path updates the very same row
    with store.session() as session:
        deadletters.put_many(session, _letters(9, 10))
    (row,) = deadletters.list_open(store, TENANT)
    assert row.id == first and row.failures == 3

    assert deadletters.resolve(store, TENANT, "import", "customer:9") == 1
    assert deadletters.resolve(store, TENANT, "import", "customer:9") == 0
    third = deadletters.put(store, tenant=TENANT, flow="import", record_key="customer:9",
                            error=DataError("bad again"), payload={})
    assert third != first
    assert [d.id for d in deadletters.list_open(store, TENANT)] == [third]


def test_the_store_itself_refuses_a_second_open_letter_for_a_record(store: Store) -> None:
    deadletters.put(store, tenant=TENANT, flow="import", record_key="customer:1", error=DataError("x"), payload={})
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(DeadLetter(tenant=TENANT, flow="import", record_key="customer:1", error_kind="data",
                               reason="a racing writer", payload={}))
        session.flush()
    # a closed letter for the same record is no obstacle
    with store.session() as session:
        session.add(DeadLetter(tenant=TENANT, flow="import", record_key="customer:1", error_kind="data",
                               reason="long ago", payload={}, status="replayed"))


def test_resolving_is_one_statement_and_batched(store: Store) -> None:
    with store.session() as session:
        deadletters.put_many(session, _letters(0, 1000))
    with statements(store) as seen:
        assert deadletters.resolve(store, TENANT, "import", "customer:3") == 1
    assert len([s for s in seen if not s.startswith("BEGIN")]) == 1
    with statements(store) as seen, store.session() as session:
        done = deadletters.resolve_many(session, TENANT, "import", [f"customer:{i}" for i in range(500)])
    assert done == 499  # customer:3 was closed already
    assert len([s for s in seen if not s.startswith("BEGIN")]) == 1
    assert _open(store) == 500
    assert deadletters.open_keys(store, TENANT, "import", prefix="customer:") == {
        f"customer:{i}" for i in range(500, 1000)}
    assert deadletters.open_keys(store, TENANT, "import", prefix="sale:") == set()


def test_reason_codes_group_messages_that_differ_only_in_their_values() -> None:
    code = deadletters.reason_code
    assert code(DataError("CPF ***.***.***-11 is a placeholder", field="document")) == code(
        DataError("CPF 222.222.222-22 is a placeholder", field="document"))
    assert code(DataError("CPF 222.222.222-22 is a placeholder", field="document")) == (
        "data/document: CPF <document> is a placeholder")
    assert code(DataError("no cvcrm id for sienge person 4 in the id map", field="idpessoa")) == code(
        DataError("no cvcrm id for sienge person 1234 in the id map", field="idpessoa"))
    assert code(DataError("bad e-mail 'ana@example.com'")) == code(DataError("bad e-mail 'bob@example.org'"))
    # the kind and the field tell reasons apart; personal data never reaches a code
    assert code(DataError("x", field="a")) != code(DataError("x", field="b")) != code(NotFoundError("x", field="b"))
    assert "52998224725" not in code(DataError("document 52998224725 refused"))


# ------------------------------------------------------------------------------------- migration

def _legacy_row(conn: Any, key: str, status: str, updated: datetime, reason: str = "old") -> None:
    conn.execute(
        text("INSERT INTO dead_letters (tenant, flow, record_key, error_kind, reason, field, payload, status,"
             " replay_count, created_at, updated_at) VALUES ('demo', 'import', :key, 'data', :reason, 'document',"
             " '{}', :status, 0, :at, :at)"),
        {"key": key, "status": status, "at": updated.replace(tzinfo=None), "reason": reason},
    )


def test_migration_0003_keeps_the_newest_open_letter_of_each_record(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.upgrade("0002")
        base = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        with store.engine.begin() as conn:  # what concurrent writers of the previous release could leave
            _legacy_row(conn, "customer:1", "open", base, "CPF 111.111.111-11 is a placeholder")
            _legacy_row(conn, "customer:1", "open", base + timedelta(hours=2), "newest")
            _legacy_row(conn, "customer:1", "open", base + timedelta(hours=1))
            _legacy_row(conn, "customer:1", "replayed", base + timedelta(hours=3))
            _legacy_row(conn, "customer:2", "open", base)
            _legacy_row(conn, "customer:2", "open", base)  # same time: the later row wins
            _legacy_row(conn, "customer:3", "open", base)
        store.upgrade()
        assert store.current_revision() == "0004"
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        with store.session() as session:
            rows = session.execute(
                select(DeadLetter.id, DeadLetter.record_key, DeadLetter.status, DeadLetter.reason,
                       DeadLetter.failures, DeadLetter.reason_code).order_by(DeadLetter.id)).all()
        assert [(key, status, reason) for _id, key, status, reason, _f, _c in rows] == [
            ("customer:1", "superseded", "CPF 111.111.111-11 is a placeholder"),
            ("customer:1", "open", "newest"),
            ("customer:1", "superseded", "old"),
            ("customer:1", "replayed", "old"),
            ("customer:2", "superseded", "old"),
            ("customer:2", "open", "old"),
            ("customer:3", "open", "old"),
        ]
        assert {failures for *_rest, failures, _code in rows} == {1}
        assert rows[0][5] == "data/document: CPF <document> is a placeholder"  # existing rows grouped too
        # from now on the store keeps one open letter per record, and a failure updates it
        kept = deadletters.put(store, tenant="demo", flow="import", record_key="customer:1",
                               error=DataError("again"), payload={})
        assert kept == rows[1][0]
        assert len(deadletters.list_open(store, "demo")) == 3

        command.downgrade(store._alembic_config(), "0002")
        assert store.current_revision() == "0002"
        store.upgrade()
        assert store.current_revision() == "0004"
        assert len(deadletters.list_open(store, "demo")) == 3
    finally:
        store.dispose()


# ------------------------------------------------------------------------------------------- CLI

@pytest.fixture
def cli_store(store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("PONTE_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")  # tables as a wide terminal shows them, one line a row
    return store


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _bulk(store: Store, count: int, flow: str = "import", tenant: str = TENANT) -> None:
    """``count`` open letters written straight to the table (any release can have written them)."""
    now = datetime.now(UTC)
    rows = [
        {"tenant": tenant, "flow": flow, "record_key": f"customer:{i}", "error_kind": "data",
         "reason": "CPF check digits do not match", "field": "document", "payload": {"id": i},
         "status": "open", "replay_count": 0, "created_at": now, "updated_at": now}
        for i in range(count)
    ]
    with store.session() as session:
        for start in range(0, count, 2000):
            session.execute(insert(DeadLetter), rows[start : start + 2000])


def test_list_json_pages_and_groups_ten_thousand_letters(cli_store: Store) -> None:
    _write(cli_store, _letters)
    deadletters.put(cli_store, tenant="other", flow="import", record_key="customer:1",
                    error=DataError("elsewhere"), payload={})

    result = _cli("deadletter", "list", "--tenant", TENANT, "--flow", "import", "--json", "--limit", "100",
                  "--page", "3")
    assert result.exit_code == 0, result.output
    page = json.loads(result.output)
    assert page["total"] == N and page["limit"] == 100 and page["offset"] == 200
    assert [row["record_key"] for row in page["dead_letters"]] == [f"customer:{i}" for i in range(200, 300)]
    assert all(row["status"] == "open" and row["tenant"] == TENANT for row in page["dead_letters"])
    assert "529.982.247-25" not in result.output and "Cliente" not in result.output  # masked (or left out)
    placeholder = next(row for row in page["dead_letters"] if row["record_key"] == "customer:207")
    assert "777.777.777-77" not in placeholder["reason"] and "***.***.***-77" in placeholder["reason"]

    by_offset = json.loads(_cli("deadletter", "list", "-t", TENANT, "--flow", "import", "--json",
                                "--limit", "100", "--offset", "200").output)
    assert by_offset["dead_letters"] == page["dead_letters"]

    result = _cli("deadletter", "list", "--tenant", TENANT, "--flow", "import", "--by-reason", "--json")
    assert result.exit_code == 0, result.output
    grouped = json.loads(result.output)
    assert grouped["total"] == N
    counts = {group["reason"]: group["count"] for group in grouped["reasons"]}
    assert counts == {
        "data/document: CPF check digits do not match (typo in the number?)": 6000,
        "data/document: CPF <document> is a placeholder (all digits the same), not a real CPF": 3000,
        "data/document: a CPF has <n> digits and a CNPJ <n> characters, got <n>": 1000,
    }
    first = grouped["reasons"][0]
    assert first["count"] == 6000 and first["example"]["record_key"] == "customer:0"
    assert first["oldest"] <= first["newest"]

    result = _cli("deadletter", "list", "-t", TENANT, "--flow", "import", "--json", "--limit", "5",
                  "--reason", "data/document: CPF <document> is a placeholder (all digits the same), not a real CPF")
    filtered = json.loads(result.output)
    assert filtered["total"] == 3000
    assert [row["record_key"] for row in filtered["dead_letters"]] == [
        f"customer:{i}" for i in (6, 7, 8, 16, 17)]
    # part of a reason is enough
    assert json.loads(_cli("deadletter", "list", "--json", "--reason", "placeholder", "--limit", "1").output)[
        "total"] == 3000

    table = _cli("deadletter", "list", "-t", TENANT, "--by-reason")
    assert table.exit_code == 0 and "6000" in table.output.replace(",", "") and "placeholder" in table.output
    rows = _cli("deadletter", "list", "-t", TENANT, "--limit", "20")
    assert rows.exit_code == 0 and f"{N} open dead letter(s)" in rows.output.replace(",", "")
    assert "customer:19" in rows.output and "customer:20 " not in rows.output


def _fake_import(store: Store, runs: list[dict[str, list[str]]], bound: int) -> Any:
    """Stands in for run_import in a replay: each named customer succeeds, except every tenth, which
    fails again with a new reason; the runs are counted (and stopped past ``bound``)."""

    def run_import(_store: Store, tenant: Any, _sienge: Any, _cvcrm: Any, request: Any = None, *_a: Any) -> Any:
        runs.append({entity: list(ids) for entity, ids in request.ids.items()})
        if len(runs) > bound:
            raise RuntimeError(f"{len(runs)} import runs for one replay --all")
        ids = request.ids.get("customer", [])
        bad = [i for i in ids if int(i) % 10 == 0]
        with store.session() as session:  # what a run does to the letters of records that now import
            session.execute(
                update(DeadLetter)
                .where(DeadLetter.tenant == tenant.id, DeadLetter.status == "open",
                       DeadLetter.record_key.in_([f"customer:{i}" for i in ids if i not in bad]))
                .values(status="replayed")
            )
        for i in bad:
            deadletters.put(store, tenant=tenant.id, flow="import", record_key=f"customer:{i}",
                            error=DataError("still invalid after the fix"), payload={"id": i})
        return SimpleNamespace()

    return run_import


@contextmanager
def _no_connector(*_args: Any, **_kwargs: Any) -> Iterator[Any]:
    yield SimpleNamespace()


def test_replay_all_of_ten_thousand_import_letters_uses_a_bounded_number_of_runs(
    cli_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.imports.flow as flow
    import pipelines.replay as replay_module

    _bulk(cli_store, N)
    _bulk(cli_store, 3, flow="import", tenant="other")  # another tenant: not named, not replayed
    runs: list[dict[str, list[str]]] = []
    bound = 20
    monkeypatch.setattr(flow, "run_import", _fake_import(cli_store, runs, bound))
    monkeypatch.setattr(replay_module, "load_tenant", lambda tenant_id: SimpleNamespace(id=tenant_id))
    monkeypatch.setattr(replay_module, "open_connector", _no_connector)

    result = _cli("deadletter", "replay", "--all", "--tenant", TENANT, "--flow", "import")

    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1, result.output  # some failed again
    assert len(runs) <= bound
    replayed = [i for run in runs for i in run["customer"]]
    assert sorted(replayed, key=int) == [str(i) for i in range(N)], "every letter once"
    assert "9000 of 10000 replayed" in result.output.replace(",", "")
    assert "1000 failed" in result.output.replace(",", "")
    assert "still invalid after the fix" in result.output
    assert result.output.count("still invalid after the fix") < 50, "failures are summarised, not listed 1,000 times"
    assert _open(cli_store) == 1000 + 3
    assert len(deadletters.list_open(cli_store, "other")) == 3


def test_replay_all_pages_through_other_flows_letter_by_letter(
    cli_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flows without a batch replay stay per letter, but the letters are read a page at a time."""
    import pipelines.replay as replay_module

    _bulk(cli_store, 1200, flow="assistance")
    seen: list[str] = []

    def replayer(store: Store, letter: Any, _run_id: Any) -> None:
        seen.append(letter.record_key)
        deadletters.resolve(store, letter.tenant, letter.flow, letter.record_key)

    monkeypatch.setattr(replay_module, "replayer_for", lambda flow: replayer)
    pages: list[int] = []
    original = deadletters.open_after

    def counted(*args: Any, **kwargs: Any) -> Any:
        rows = original(*args, **kwargs)
        pages.append(len(rows))
        return rows

    monkeypatch.setattr(deadletters, "open_after", counted)
    result = _cli("deadletter", "replay", "--all", "--tenant", TENANT, "--flow", "assistance")
    assert result.exit_code == 0, result.output
    assert len(seen) == 1200 and len(set(seen)) == 1200
    assert max(pages) <= 500 and len(pages) >= 3
    assert "1200 of 1200 replayed" in result.output.replace(",", "")
    assert _open(cli_store) == 0


def test_replay_all_with_nothing_open_says_so(cli_store: Store) -> None:
    result = _cli("deadletter", "replay", "--all", "--tenant", TENANT)
    assert result.exit_code == 0, result.output
    assert "0 of 0 replayed" in result.output

"""Import workers: translating batches in other processes changes nothing but the time it takes.

Workers start only for a stage whose first batch is full; these tests make batches small so a
30-customer sandbox has several.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connectors.sandbox import start_sandbox
from pipelines.connections import open_connector
from pipelines.imports import flow, parallel
from pipelines.imports.flow import run_import
from pipelines.imports.translate import Translator
from pipelines.store import Store, deadletters, open_store
from pipelines.store.models import IdMap
from tests.support.tenants import sandbox_tenant

CUSTOMERS = 30
SEED = 23


class CountingPool(parallel.StagingPool):
    batches = 0

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # the run goes on without waiting for its workers, and on a loaded machine a small import could
        # finish before they start: this test is about what they produce, so it lets them start first
        self.wait(60)

    def submit(self, entity, batch):  # type: ignore[no-untyped-def]
        CountingPool.batches += 1
        return super().submit(entity, batch)


def _import(store: Store, workers: int, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict, list, object]:
    """A fresh sandbox (same seed each time, one customer with a broken CPF) imported into ``store``."""
    monkeypatch.setenv("PONTE_IMPORT_WORKERS", str(workers))
    with start_sandbox(customers=CUSTOMERS, seed=SEED, rate_limits=False) as sandbox:
        sandbox.sienge.mutate_customer(1, cpf="123.456.789-00", cnpj=None)
        tenant = sandbox_tenant(sandbox, unthrottled=True)
        sienge = open_connector(tenant, "sienge", store=store)
        cvcrm = open_connector(tenant, "cvcrm", store=store)
        try:
            report = run_import(store, tenant, sienge, cvcrm)
        finally:
            sienge.close()
            cvcrm.close()
        people = {
            p["documento"]: {k: v for k, v in p.items() if k not in ("data_alt", "data_cad", "idpessoa")}
            for p in sandbox.state.cvcrm.pessoas.values()
        }
    with store.session() as session:
        hashes = {
            (entity, source_id): digest
            for entity, source_id, digest in session.execute(
                select(IdMap.entity, IdMap.source_id, IdMap.content_hash)
            )
        }
    letters = [(d.record_key, d.reason) for d in deadletters.list_open(store, tenant.id)]
    return people, hashes, letters, report


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "BATCH", 5)
    monkeypatch.setattr(flow, "StagingPool", CountingPool)
    CountingPool.batches = 0


def test_workers_import_exactly_what_the_run_alone_imports(
    small_batches: None, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone_store = open_store(f"sqlite:///{tmp_path / 'alone.db'}")
    workers_store = open_store(f"sqlite:///{tmp_path / 'workers.db'}")
    try:
        alone = _import(alone_store, 0, monkeypatch)
        assert CountingPool.batches == 0
        with_workers = _import(workers_store, 2, monkeypatch)
    finally:
        alone_store.dispose()
        workers_store.dispose()
    assert CountingPool.batches > 0, "the workers were never used"
    people, hashes, letters, report = with_workers
    assert people == alone[0], "the CRM received something else"
    assert hashes == alone[1], "the id map differs"
    assert letters == alone[2], "the same dead letters either way"
    assert any(key == "customer:1" and "check digits" in reason for key, reason in letters)
    for counter in ("read", "created", "updated", "unchanged", "failed", "dead_lettered"):
        assert report.total(counter) == alone[3].total(counter), counter  # type: ignore[attr-defined]


def test_workers_that_cannot_start_leave_the_translation_to_the_run(
    small_batches: None, store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(flow, "StagingPool", refuse)
    with caplog.at_level(logging.WARNING, logger="ponte.import"):
        _people, _hashes, letters, report = _import(store, 2, monkeypatch)
    assert report.entities["customer"].created == CUSTOMERS - 1  # type: ignore[attr-defined]
    assert ("customer:1", "CPF check digits do not match (typo in the number?)") in letters
    assert "import workers could not start" in caplog.text


@pytest.fixture
def raw_customers(store: Store) -> Iterator[tuple[object, list[dict]]]:
    with start_sandbox(customers=CUSTOMERS, seed=SEED, rate_limits=False) as sandbox:
        tenant = sandbox_tenant(sandbox, unthrottled=True)
        sienge = open_connector(tenant, "sienge", store=store)
        try:
            yield tenant, list(sienge.read("customers"))
        finally:
            sienge.close()


def test_a_worker_that_dies_costs_only_time(raw_customers, caplog: pytest.LogCaptureFixture) -> None:
    tenant, raws = raw_customers
    translator = Translator(tenant, parallel._no_lookup)  # type: ignore[arg-type]
    expected = parallel.stage_batch(translator, "customer", raws)
    pool = parallel.StagingPool(tenant, 1)  # type: ignore[arg-type]
    try:
        assert pool.wait(60)
        assert pool._executor is not None
        for process in list(pool._executor._processes.values()):  # the worker is killed
            os.kill(process.pid, signal.SIGKILL)
            process.join(10)
        with caplog.at_level(logging.WARNING, logger="ponte.import"):
            got = list(parallel.staged_batches([raws[:10], raws[10:]], "customer", translator, pool))
        assert [staged for _batch, staged in got] == [expected[:10], expected[10:]], (
            "the batches were translated in the run instead"
        )
        assert not pool.usable, "the run goes on without workers"
        assert "an import worker stopped" in caplog.text
    finally:
        pool.close()


def test_workers_that_cannot_start_leave_the_work_to_the_run(
    raw_customers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The workers start in a thread while the run translates; a start that fails there is reported
    and the run carries on alone."""
    tenant, raws = raw_customers
    translator = Translator(tenant, parallel._no_lookup)  # type: ignore[arg-type]
    expected = parallel.stage_batch(translator, "customer", raws)

    class Daemonic(parallel.ProcessPoolExecutor):
        def submit(self, *_args, **_kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", Daemonic)
    pool = parallel.StagingPool(tenant, 2)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.WARNING, logger="ponte.import"):
            assert not pool.wait(60)
            got = list(parallel.staged_batches([raws[:10], raws[10:]], "customer", translator, pool))
        assert [staged for _batch, staged in got] == [expected[:10], expected[10:]]
        assert "import workers did not start (daemonic processes are not allowed" in caplog.text
    finally:
        pool.close()


@pytest.mark.postgres
def test_a_bulk_load_leaves_postgresql_statistics_for_the_id_map_lookup(
    small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first import into an empty PostgreSQL store: without statistics the planner walked every
    id-map row of the entity for each batch's lookup (it chose the target-id index)."""
    from sqlalchemy import text

    from tests.conftest import _create_pg_database, _drop_pg_database

    name, url = _create_pg_database()
    store = open_store(url)
    try:
        with store.session() as session:
            assert session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'id_map'")) < 0
        _import(store, 0, monkeypatch)
        with store.session() as session:
            analysed = session.scalar(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'id_map'")
            )
            plan = "\n".join(
                session.execute(
                    text(
                        "EXPLAIN SELECT target_id FROM id_map WHERE tenant = 'demo' AND entity = 'person'"
                        " AND source_system = 'sienge' AND target_system = 'cvcrm'"
                        " AND source_id = ANY(ARRAY['1', '2'])"
                    )
                ).scalars()
            )
    finally:
        store.dispose()
        _drop_pg_database(name)
    assert analysed is not None, "the import did not refresh the id map's statistics"
    assert "ix_id_map_target" not in plan, plan


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), _JSON, max_size=5), max_size=4))
def test_batches_cross_to_workers_unchanged(batch: list[dict]) -> None:
    assert parallel._unpack_batch(parallel._pack(batch)) == batch
    staged = [(record, "0" * 64) for record in batch]
    assert parallel._unpack_staged(parallel._pack(staged)) == staged


def test_what_json_cannot_carry_exactly_crosses_pickled() -> None:
    from decimal import Decimal

    from ponte.errors import DataError

    with_decimal = [{"id": 1, "area": Decimal("52.50")}]
    assert parallel._pack(with_decimal) is with_decimal
    huge = [{"id": 2**70}]
    assert parallel._pack(huge) is huge
    with_error = [({"id": 1}, "0" * 64), DataError("bad CPF")]
    assert parallel._pack(with_error) is with_error

"""The customer/sale import end to end: Sienge sandbox → Ponte → CV CRM sandbox, over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from connectors.sandbox import start_sandbox
from pipelines.connections import open_connector
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.imports.webhooks import process_sienge_events
from pipelines.replay import replay
from pipelines.store import Store, deadletters
from pipelines.store.inbox import store_event
from pipelines.store.models import IdMap, InboxEvent
from tests.support.tenants import sandbox_tenant

CUSTOMERS = 30


@pytest.fixture
def world(store: Store) -> Iterator[tuple]:
    with start_sandbox(customers=CUSTOMERS, seed=11, rate_limits=False) as sandbox:
        tenant = sandbox_tenant(sandbox, unthrottled=True)
        sienge = open_connector(tenant, "sienge", store=store)
        cvcrm = open_connector(tenant, "cvcrm", store=store)
        try:
            yield sandbox, tenant, store, sienge, cvcrm
        finally:
            sienge.close()
            cvcrm.close()


def _crm_state(sandbox) -> tuple[dict, dict]:
    """What the CRM holds, by business keys: people by document, reservations by Sienge id, each person a
    reservation names by document too. The CRM's own ids (``idpessoa``) follow the order of creation,
    which a retried run may change without anything being lost or doubled."""
    documents = {p["idpessoa"]: p["documento"] for p in sandbox.state.cvcrm.pessoas.values()}

    def by_document(value: object) -> object:
        if isinstance(value, dict):
            return {k: documents.get(v, v) if k == "idpessoa" else by_document(v) for k, v in value.items()}
        if isinstance(value, list):
            return [by_document(v) for v in value]
        return value

    people = {
        p["documento"]: {k: v for k, v in p.items() if k not in ("data_alt", "data_cad", "idpessoa")}
        for p in sandbox.state.cvcrm.pessoas.values()
    }
    reservas = {
        r["idreserva_int"]: by_document(
            {k: v for k, v in r.items() if not k.startswith("data_") and k != "idreserva"}
        )
        for r in sandbox.state.cvcrm.reservas.values()
    }
    return people, reservas


def _writes(cvcrm_before: int, cvcrm) -> int:
    return cvcrm.api_calls - cvcrm_before


def test_first_import_brings_every_customer_and_sale_and_a_rerun_writes_nothing(world) -> None:
    sandbox, tenant, store, sienge, cvcrm = world
    report = run_import(store, tenant, sienge, cvcrm)
    sienge_state = sandbox.state.sienge
    assert report.entities["customer"].read == CUSTOMERS
    assert report.entities["customer"].created == CUSTOMERS
    sales = len(sienge_state.contracts)
    assert report.entities["sale"].read == sales
    cancelled = sum(1 for c in sienge_state.contracts.values() if c["situation"] in (3, "3"))
    assert report.entities["sale"].cancelled == cancelled
    assert report.total("dead_lettered") == 0
    people, reservas = _crm_state(sandbox)
    documents = {
        (c.get("cpf") or c.get("cnpj") or "").replace(".", "").replace("-", "").replace("/", "").upper()
        for c in sienge_state.customers.values()
    }
    assert documents <= set(people)
    assert len(reservas) == sales
    assert sum(1 for r in sandbox.state.cvcrm.reservas.values() if r["situacao"] == "Cancelada") == cancelled
    with store.session() as session:
        persons = session.scalar(
            select(func.count()).where(IdMap.entity == "person", IdMap.target_id.is_not(None))
        )
    assert persons == CUSTOMERS

    before = cvcrm.api_calls
    again = run_import(store, tenant, sienge, cvcrm)
    assert again.crm_writes == 0
    assert _writes(before, cvcrm) == 0, "an unchanged re-run must not call the CRM at all"
    assert again.total("created") == again.total("updated") == 0


def test_one_changed_customer_makes_exactly_one_update_and_keeps_the_crm_enrichment(world) -> None:
    sandbox, tenant, store, sienge, cvcrm = world
    run_import(store, tenant, sienge, cvcrm)
    customer_id, customer = next(iter(sandbox.state.sienge.customers.items()))
    document = (
        (customer.get("cpf") or customer.get("cnpj")).replace(".", "").replace("-", "").replace("/", "")
    )
    sandbox.cvcrm.enrich_cliente(document, contatos=[{"tipo": "email", "valor": "outro@example.com"}])
    sandbox.sienge.mutate_customer(customer_id, name="Nome Corrigido da Silva")

    before = cvcrm.api_calls
    report = run_import(store, tenant, sienge, cvcrm)
    assert report.entities["customer"].updated == 1
    assert report.crm_writes == 1
    # one read (the person as CV holds it, only because the record changed) and one write
    assert _writes(before, cvcrm) == 2
    person = next(p for p in sandbox.state.cvcrm.pessoas.values() if p["documento"] == document.upper())
    assert person["nome"] == "Nome Corrigido da Silva"
    assert {"tipo": "email", "valor": "outro@example.com"} in person["contatos"]


@pytest.mark.parametrize("workers", [0, 2], ids=["in-run", "workers"])
def test_faults_change_nothing_in_the_final_crm_state(
    store: Store, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With import workers too: batches of 5 so that 30 customers start them."""
    from pipelines.imports import flow

    monkeypatch.setenv("PONTE_IMPORT_WORKERS", str(workers))
    if workers:
        monkeypatch.setattr(flow, "BATCH", 5)
    with start_sandbox(customers=CUSTOMERS, seed=11, rate_limits=False) as clean:
        tenant = sandbox_tenant(clean, unthrottled=True)
        sienge, cvcrm = open_connector(tenant, "sienge"), open_connector(tenant, "cvcrm")
        run_import(store, tenant, sienge, cvcrm)
        expected = _crm_state(clean)
        clean_calls = sienge.api_calls + cvcrm.api_calls
    faults = {
        system: {
            "errors": {500: 0.08, 502: 0.04, 503: 0.04},
            "throttle_rate": 0.04,
            "retry_after": 0.05,
            "drop_rate": 0.04,
        }
        for system in ("sienge", "cvcrm")
    }
    with start_sandbox(customers=CUSTOMERS, seed=11, rate_limits=False, faults=faults) as faulty:
        tenant = sandbox_tenant(faulty, "faulty", unthrottled=True)
        sienge, cvcrm = open_connector(tenant, "sienge"), open_connector(tenant, "cvcrm")
        report = run_import(store, tenant, sienge, cvcrm)
        runs = 1
        while report.total("failed") and runs < 6:  # what was only delayed is retried by the next run
            report = run_import(store, tenant, sienge, cvcrm)
            runs += 1
        assert report.total("failed") == 0
        assert deadletters.list_open(store, "faulty") == [], "delayed records must not be dead-lettered"
        got = _crm_state(faulty)
        for which, (have, want) in enumerate(zip(got, expected, strict=True)):  # nothing lost, nothing doubled
            assert have.keys() == want.keys(), (which, sorted(have.keys() ^ want.keys()))
            differ = {key: (have[key], want[key]) for key in want if have[key] != want[key]}
            assert not differ, (which, differ)
        assert sienge.api_calls + cvcrm.api_calls > clean_calls, "faults were injected and retried"


def test_a_bad_record_is_dead_lettered_with_its_reason_and_replays_after_the_fix(world) -> None:
    sandbox, tenant, store, sienge, cvcrm = world
    customer_id, customer = next(iter(sandbox.state.sienge.customers.items()))
    field = "cpf" if customer.get("cpf") else "cnpj"
    good = customer[field]
    sandbox.sienge.mutate_customer(
        customer_id, **{field: "123.456.789-00" if field == "cpf" else "11.111.111/1111-11"}
    )
    report = run_import(store, tenant, sienge, cvcrm)
    assert report.entities["customer"].dead_lettered == 1
    assert report.entities["customer"].created == CUSTOMERS - 1  # the batch went on
    (letter,) = deadletters.list_open(store, tenant.id)
    assert letter.record_key == f"customer:{customer_id}"
    assert "check digits" in letter.reason
    assert letter.payload["id"] == customer_id and letter.mapping_version

    sandbox.sienge.mutate_customer(customer_id, **{field: good})
    outcome = _replay_with(letter, store, tenant, sienge, cvcrm)
    assert outcome
    assert deadletters.list_open(store, tenant.id) == []


def _replay_with(letter, store, tenant, sienge, cvcrm) -> bool:
    """Replay through the import path (the CLI's replay opens connectors from the tenant file)."""
    entity, _, record_id = letter.record_key.partition(":")
    run_import(store, tenant, sienge, cvcrm, ImportRequest(ids={entity: [record_id]}))
    return not deadletters.list_open(store, tenant.id)


def test_plan_mode_reports_but_writes_nothing(world) -> None:
    sandbox, tenant, store, sienge, cvcrm = world
    before = len(sandbox.state.cvcrm.pessoas)
    report = run_import(store, tenant, sienge, cvcrm, ImportRequest(plan=True))
    assert report.entities["customer"].created == CUSTOMERS
    assert len(report.entities["customer"].samples["created"]) == 5
    assert len(sandbox.state.cvcrm.pessoas) == before
    assert cvcrm.api_calls == 0
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(IdMap)) == 0


def test_a_sienge_hook_reimports_just_that_customer(world) -> None:
    sandbox, tenant, store, sienge, cvcrm = world
    run_import(store, tenant, sienge, cvcrm)
    customer_id = next(iter(sandbox.state.sienge.customers))
    sandbox.sienge.mutate_customer(customer_id, email="novo.email@example.com")
    store_event(
        store,
        tenant=tenant.id,
        connector="sienge",
        event_id=str(uuid.uuid4()),
        event_type="CUSTOMER_UPDATED",
        body=json.dumps({"customerId": customer_id}).encode(),
    )
    before_reads = sienge.api_calls
    result = process_sienge_events(store, tenant, sienge, cvcrm)
    assert result.events == 1 and result.by_entity == {"customer": [str(customer_id)]}
    assert result.report is not None and result.report.entities["customer"].updated == 1
    assert sienge.api_calls - before_reads == 1  # re-read by id, nothing else
    with store.session() as session:
        assert session.scalars(select(InboxEvent.status)).all() == ["done"]


def test_the_cli_replay_path_uses_the_tenant_file(world, monkeypatch) -> None:
    """`ponte deadletter replay` re-reads from Sienge through connectors built from the tenant file."""
    sandbox, tenant, store, sienge, cvcrm = world
    customer_id, customer = next(iter(sandbox.state.sienge.customers.items()))
    field = "cpf" if customer.get("cpf") else "cnpj"
    good = customer[field]
    sandbox.sienge.mutate_customer(customer_id, **{field: "000"})
    run_import(store, tenant, sienge, cvcrm)
    (letter,) = deadletters.list_open(store, tenant.id)
    sandbox.sienge.mutate_customer(customer_id, **{field: good})
    monkeypatch.setattr("pipelines.replay.load_tenant", lambda _tenant_id: tenant)
    outcome = replay(store, letter)
    assert outcome.resolved, outcome.reason


def test_rows_hashed_by_the_previous_release_stay_unchanged_and_take_the_new_hash(world, monkeypatch) -> None:
    """Upgrading must not re-send a tenant: rows carrying the old (json module) hash count as unchanged."""
    from pipelines.imports import hashing

    sandbox, tenant, store, sienge, cvcrm = world
    with monkeypatch.context() as patched:
        patched.setattr(hashing, "content_hash", hashing.legacy_content_hash)  # the release before
        first = run_import(store, tenant, sienge, cvcrm)
    assert first.total("created") > 0

    def hashes() -> dict[tuple[str, str], str | None]:
        with store.session() as session:
            rows = session.execute(select(IdMap.entity, IdMap.source_id, IdMap.content_hash))
            return {(entity, source_id): digest for entity, source_id, digest in rows}

    legacy = hashes()
    before = cvcrm.api_calls
    upgraded = run_import(store, tenant, sienge, cvcrm, ImportRequest(full=True))
    assert _writes(before, cvcrm) == 0, "rows hashed by the previous release must not be written again"
    assert upgraded.total("created") == upgraded.total("updated") == upgraded.total("cancelled") == 0
    assert upgraded.total("unchanged") == first.total("read") - first.total("failed")
    now = hashes()
    assert now.keys() == legacy.keys()
    assert all(now[key] != legacy[key] for key in now), "every row now carries the new hash"

    # and with the new hashes in place, a change is still seen
    customer_id = next(iter(sandbox.state.sienge.customers))
    sandbox.sienge.mutate_customer(customer_id, name="Nome Corrigido da Silva")
    changed = run_import(store, tenant, sienge, cvcrm, ImportRequest(full=True))
    assert changed.entities["customer"].updated == 1


def test_the_lookup_cache_stays_within_its_bound_however_many_records_are_written(
    world, monkeypatch
) -> None:
    """Memory stays flat on a big first import, where every customer gets a CRM id."""
    from pipelines.imports import flow

    _sandbox, tenant, store, sienge, cvcrm = world
    monkeypatch.setattr(flow, "LOOKUP_CACHE", 7)
    run = flow.ImportRun(store, tenant, sienge, cvcrm, ImportRequest(entities=("customer",)))
    report = run.run()
    assert report.entities["customer"].created == CUSTOMERS
    assert 0 < len(run._lookups) <= 7

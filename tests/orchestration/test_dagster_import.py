"""The import's Dagster wiring, with Dagster's own test tools, against the sandbox and a real store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from dagster import (
    DagsterInstance,
    Definitions,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from connectors.sandbox import start_sandbox
from orchestration.definitions import defs
from orchestration.imports.assets import ImportConfig, crm_customers_and_sales, id_map_consistent, key_of
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.store import Store
from pipelines.store.inbox import store_event
from tests.support.tenants import sandbox_tenant


def test_definitions_load_and_validate() -> None:
    Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("customer_sale_import")
    assert job.partitions_def is not None and "demo" in job.partitions_def.get_partition_keys()
    assert {s.name for s in defs.schedules} >= {"import_demo"}
    assert {s.name for s in defs.sensors} >= {"sienge_webhook_import"}


def test_each_tenant_schedule_runs_its_partition_at_its_cron() -> None:
    schedule = next(s for s in defs.schedules if s.name == "import_demo")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.execution_timezone == "America/Sao_Paulo"
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 10, 15), repository_def=defs.get_repository_def()
    )
    (request,) = list(schedule.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "demo"
    assert request.run_key == "import-demo-20261123T1015"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"full": False, "since": None, "ids": {}}),
        ({"mode": "full"}, {"full": True, "since": None, "ids": {}}),
        ({"mode": "since", "since": "2026-10-01"}, {"full": False, "since": "2026-10-01", "ids": {}}),
        (
            {"mode": "ids", "customer_ids": ["7", "9"], "sale_ids": ["3"]},
            {"full": False, "since": None, "ids": {"customer": ["7", "9"], "sale": ["3"]}},
        ),
    ],
)
def test_manual_resync_config(config: dict, expected: dict) -> None:
    request = ImportConfig(**config).request("run-1")
    assert request.full == expected["full"]
    assert (request.since.isoformat() if request.since else None) == expected["since"]
    assert request.ids == expected["ids"]
    assert request.run_id == "run-1"


@pytest.fixture
def dagster_world(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    with start_sandbox(customers=12, seed=5, rate_limits=False) as sandbox:
        tenant = sandbox_tenant(sandbox, unthrottled=True)
        tenants_dir = tmp_path / "tenants"
        tenants_dir.mkdir()
        (tenants_dir / "demo.yaml").write_text(
            yaml.safe_dump(tenant.model_dump(mode="json", exclude_none=True))
        )
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tenants_dir))
        resources = {
            "store": StoreResource(database_url=store.url),
            "tenants": TenantsResource(),
            "connectors": ConnectorsResource(),
        }
        yield sandbox, store, resources


def _materialize(resources: dict, config: dict):
    return materialize(
        [crm_customers_and_sales],
        partition_key="demo",
        resources=resources,
        run_config={"ops": {"crm_customers_and_sales": {"config": config}}},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=True,
    )


def _metadata(result, entity: str = "customer") -> dict:
    """The metadata of one entity's asset (default: the CRM people), of the run's one materialization."""
    (event,) = [e for e in result.asset_materializations_for_node("crm_customers_and_sales")
                if e.asset_key == key_of(entity)]
    return {key: value.value for key, value in event.metadata.items()}


def test_the_asset_imports_and_reports_counts_as_metadata(dagster_world) -> None:
    _sandbox, _store, resources = dagster_world
    result = _materialize(resources, {})
    meta = _metadata(result)
    assert meta["created"] == 12 and meta["failed"] == 0
    assert meta["api_calls.cvcrm"] > 0 and meta["plan"] is False
    # one materialization per CRM entity, each with its own counts
    assert {e.asset_key for e in result.asset_materializations_for_node("crm_customers_and_sales")} == {
        key_of(entity) for entity in ("enterprise", "unit", "customer", "sale")}
    assert _metadata(result, "sale")["created"] > 0
    again = _metadata(_materialize(resources, {"mode": "full"}))
    assert again["unchanged"] == 12 and again["created"] == 0
    assert again["api_calls.cvcrm"] == 0  # an unchanged re-run writes nothing to the CRM


def test_dead_letters_by_reason_are_asset_metadata(dagster_world) -> None:
    """A run that dead-letters records shows their counts by reason, and where to look, in Dagster."""
    sandbox, _store, resources = dagster_world
    for customer_id in list(sandbox.state.sienge.customers)[:3]:
        customer = sandbox.state.sienge.customers[customer_id]
        sandbox.sienge.mutate_customer(customer_id, **{"cpf" if customer.get("cpf") else "cnpj": "000"})
    meta = _metadata(_materialize(resources, {}))
    assert meta["dead_lettered"] == 3 and meta["created"] == 9  # other keys kept
    table = meta["dead_letters_by_reason"]
    assert "`data/document: a CPF has <n> digits and a CNPJ <n> characters, got <n>` | 3 |" in table
    assert "ponte deadletter list --tenant demo --flow import --by-reason" in table
    assert "ponte deadletter replay --all --tenant demo --flow import" in table
    clean = _metadata(_materialize(resources, {"mode": "ids", "customer_ids": ["999999"], "plan": True}))
    assert "dead_letters_by_reason" not in clean


def test_manual_resync_of_given_ids_and_plan_mode(dagster_world) -> None:
    sandbox, _store, resources = dagster_world
    _materialize(resources, {})
    customer_id = next(iter(sandbox.state.sienge.customers))
    sandbox.sienge.mutate_customer(customer_id, name="Outro Nome Qualquer")
    planned = _metadata(
        _materialize(resources, {"mode": "ids", "customer_ids": [str(customer_id)], "plan": True})
    )
    assert planned["updated"] == 1 and planned["read"] == 1 and planned["plan"] is True
    assert planned["api_calls.cvcrm"] == 0
    done = _metadata(_materialize(resources, {"mode": "ids", "customer_ids": [str(customer_id)]}))
    # an update reads the CRM person first (its CRM-owned fields are merged back), then writes it
    assert done["updated"] == 1 and done["api_calls.cvcrm"] == 2


def test_the_sensor_asks_for_a_webhook_run_per_tenant_with_news(dagster_world) -> None:
    sandbox, store, resources = dagster_world
    sensor = next(s for s in defs.sensors if s.name == "sienge_webhook_import")
    context = build_sensor_context(
        resources={"store": resources["store"]},
        instance=DagsterInstance.ephemeral(),
        repository_def=defs.get_repository_def(),
    )
    assert not list(sensor.evaluate_tick(context).run_requests or [])
    customer_id = next(iter(sandbox.state.sienge.customers))
    store_event(
        store,
        tenant="demo",
        connector="sienge",
        event_id=str(uuid.uuid4()),
        event_type="CUSTOMER_UPDATED",
        body=json.dumps({"customerId": customer_id}).encode(),
    )
    store_event(
        store,
        tenant="demo",
        connector="sienge",
        event_id=str(uuid.uuid4()),
        event_type="TECHNICAL_ASSISTANCE_FINISHED",
        body=b'{"technicalAssistanceId": 1}',
    )
    (request,) = list(sensor.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "demo"
    assert request.run_config["ops"]["crm_customers_and_sales"]["config"]["mode"] == "webhooks"
    meta = _metadata(_materialize(resources, {"mode": "webhooks"}))
    assert meta["read"] == 1  # only the customer the hook named; the assistance event is not ours


def test_the_id_map_check_passes_after_an_import(dagster_world) -> None:
    _sandbox, _store, resources = dagster_world
    result = materialize(
        [crm_customers_and_sales, id_map_consistent],
        partition_key="demo",
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["without_crm_id"].value == 0

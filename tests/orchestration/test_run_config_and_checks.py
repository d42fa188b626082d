"""Run tags on scheduled runs, and the per-tenant dead-letter check on the import asset."""

from __future__ import annotations

from datetime import datetime

from dagster import AssetCheckSeverity, DagsterInstance, build_schedule_context, materialize

from orchestration.definitions import defs
from orchestration.imports.assets import crm_customers_and_sales
from orchestration.imports.defs import import_dead_letters
from tests.orchestration.test_dagster_import import dagster_world  # noqa: F401  (fixture)


def test_schedule_runs_are_tagged_with_tenant_and_mode() -> None:
    schedule = next(s for s in defs.schedules if s.name == "import_demo")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 10, 15), repository_def=defs.get_repository_def()
    )
    (request,) = list(schedule.evaluate_tick(context).run_requests or [])
    assert request.tags["ponte/tenant"] == "demo"
    assert request.tags["ponte/mode"] == "incremental"
    assert request.tags["ponte/trigger"] == "schedule"


def _check(resources: dict):
    result = materialize(
        [crm_customers_and_sales, import_dead_letters],
        partition_key="demo",
        resources=resources,
        instance=DagsterInstance.ephemeral(),
    )
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "import_dead_letters"]
    return check


def test_the_dead_letter_check_warns_with_a_table_and_passes_without(dagster_world) -> None:  # noqa: F811
    sandbox, _store, resources = dagster_world
    clean = _check(resources)
    assert clean.passed and clean.metadata["open_dead_letters"].value == 0
    for customer_id in list(sandbox.state.sienge.customers)[:3]:
        customer = sandbox.state.sienge.customers[customer_id]
        sandbox.sienge.mutate_customer(customer_id, **{"cpf" if customer.get("cpf") else "cnpj": "000"})
    check = _check(resources)
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["open_dead_letters"].value == 3
    table = check.metadata["dead_letters"].value
    assert [c.name for c in table.schema.columns] == ["record", "reason", "field", "replay"]
    assert len(table.records) == 3
    row = table.records[0].data
    assert row["replay"].startswith("ponte deadletter replay ") and "document" in row["reason"]
    assert list(check.metadata["by_reason"].value.values()) == [3]


def test_the_backsync_backlog_check_warns_on_an_old_unprocessed_webhook(store) -> None:
    from datetime import UTC, datetime, timedelta

    from orchestration.checks import backlog_result
    from orchestration.definitions import defs
    from pipelines.store.models import InboxEvent

    assert any(key.name == "backsync_backlog" for key in defs.get_repository_def().asset_checks_defs_by_key)
    assert backlog_result(store, "demo", ["docusign"]).passed
    with store.session() as session:
        session.add(InboxEvent(tenant="demo", connector="docusign", event_id="e1", event_type="envelope-sent",
                               headers={}, body=b"{}", status="new",
                               received_at=datetime.now(UTC) - timedelta(minutes=40)))
    late = backlog_result(store, "demo", ["docusign"])
    assert not late.passed and late.metadata["unprocessed_events"].value == 1
    assert late.metadata["oldest_age_minutes"].value >= 39


def test_every_flow_that_dead_letters_has_its_dead_letter_check() -> None:
    from orchestration.definitions import defs
    from pipelines.replay import REPLAYERS

    names = {key.name for key in defs.get_repository_def().asset_checks_defs_by_key}
    assert {f"{flow}_dead_letters" for flow in REPLAYERS} <= names

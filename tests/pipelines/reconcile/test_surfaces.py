"""`ponte reconcile` (table and --json), the Dagster asset's drift table and check, the schedule per
tenant, and auto_send_missed through dispatch."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from dagster import DagsterInstance, build_schedule_context, materialize
from typer.testing import CliRunner

from orchestration.cli.app import app
from orchestration.reconcile.assets import DRIFT_CHECK, reconciliation
from orchestration.reconcile.defs import reconcile_schedules, schedule_name
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.reconcile.report import (
    ENVELOPE_STATUS,
    IMPORT_CONTENT,
    KINDS,
    READY_NOT_SENT,
    SIGNED_PDF_MISSING,
)
from pipelines.reconcile.runner import ReconcileRequest, run_reconcile
from tests.pipelines.dispatch.support import verify_manager
from tests.pipelines.reconcile.conftest import World, crm_person, seed_drift

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _json(output: str) -> dict:
    # logging may add lines around it (the runner swaps streams between invocations): take the JSON line
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def test_cli_dry_run_json_then_repair(world: World) -> None:
    seed_drift(world)
    runner = CliRunner()
    planned = runner.invoke(app, ["reconcile", "--tenant", "demo", "--dry-run", "--json"])
    assert planned.exit_code == 1, planned.output  # drift left unrepaired (README, "Exit codes")
    data = _json(planned.output)
    assert set(data) >= {"flow", "tenant", "dry_run", "kinds", "counts", "repaired", "checked", "unrepaired",
                         "errors", "drift"}
    assert data["flow"] == "reconcile" and data["tenant"] == "demo" and data["dry_run"] is True
    assert data["kinds"] == list(KINDS)
    assert data["counts"] == {ENVELOPE_STATUS: 2, SIGNED_PDF_MISSING: 1, READY_NOT_SENT: 1, IMPORT_CONTENT: 2}
    assert data["repaired"] == dict.fromkeys(KINDS, 0) and data["unrepaired"] == 6 and data["errors"] == {}
    for row in data["drift"]:
        assert set(row) == {"kind", "tenant", "record", "detail", "repaired", "action", "fields"}
        assert row["tenant"] == "demo" and row["repaired"] is False and row["action"]
    assert crm_person(world, world.person["document"])["nome"] == "Nome Trocado no CRM"

    only = runner.invoke(app, ["reconcile", "--tenant", "demo", "--kind", "import_content", "--json"])
    data = _json(only.output)
    assert only.exit_code == 0, only.output  # repaired: nothing left
    assert data["kinds"] == [IMPORT_CONTENT] and data["repaired"] == {IMPORT_CONTENT: 2}
    assert crm_person(world, world.person["document"])["nome"] == world.person["name"]

    table = runner.invoke(app, ["reconcile", "--tenant", "demo"])
    assert table.exit_code == 1, table.output  # the unsent contract stays reported
    assert "ready_not_sent 1 (0 repaired)" in table.output and "envelope_status 2 (2 repaired)" in table.output
    assert "ponte sync dispatch --tenant demo --contract" in table.output

    bad = runner.invoke(app, ["reconcile", "--tenant", "demo", "--kind", "nope"])
    assert bad.exit_code == 2 and "unknown drift kind nope" in bad.output


def test_dagster_asset_reports_the_drift_table_and_warns_while_drift_is_left(world: World) -> None:
    seed_drift(world)
    resources = {"store": StoreResource(database_url=world.store.url), "tenants": TenantsResource(),
                 "connectors": ConnectorsResource()}
    result = materialize([reconciliation], partition_key="demo", resources=resources,
                         run_config={"ops": {"reconciliation": {"config": {"dry_run": True}}}})
    assert result.success
    meta = result.asset_materializations_for_node("reconciliation")[0].metadata
    assert meta["envelope_status_count"].value == 2 and meta["import_content_count"].value == 2
    assert meta["ready_not_sent_count"].value == 1 and meta["signed_pdf_missing_count"].value == 1
    assert meta["drift_total"].value == 6 and meta["unrepaired"].value == 6 and meta["dry_run"].value is True
    table = meta["drift"].value
    assert [c.name for c in table.schema.columns] == ["kind", "record", "detail", "repaired", "action"]
    assert sorted(r.data["kind"] for r in table.records) == sorted(
        [ENVELOPE_STATUS, ENVELOPE_STATUS, SIGNED_PDF_MISSING, READY_NOT_SENT, IMPORT_CONTENT, IMPORT_CONTENT])
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == DRIFT_CHECK and check.passed is False and check.severity.value == "WARN"
    assert check.metadata["unrepaired"].value == 6

    repaired = materialize([reconciliation], partition_key="demo", resources=resources)
    meta = repaired.asset_materializations_for_node("reconciliation")[0].metadata
    assert meta["envelope_status_repaired"].value == 2 and meta["import_content_repaired"].value == 2
    [check] = repaired.get_asset_check_evaluations()
    assert check.passed is False and check.metadata["unrepaired_by_kind"].value[READY_NOT_SENT] == 1

    [schedule] = [s for s in reconcile_schedules("reconcile_job") if s.name == schedule_name("demo")]
    assert schedule.cron_schedule == world.tenant.options.reconcile_cron == "30 3 * * *"
    with DagsterInstance.ephemeral() as instance:
        request = schedule(build_schedule_context(instance=instance,
                                                  scheduled_execution_time=datetime(2026, 1, 2, 3, 30)))
    assert request.partition_key == "demo"
    assert request.run_config == {"ops": {"reconciliation": {"config": {"dry_run": False}}}}


def test_auto_send_missed_dispatches_the_contract_once(world: World) -> None:
    seed_drift(world)
    verify_manager(world.store, world.tenant)
    request = ReconcileRequest(kinds=(READY_NOT_SENT,), send_missed=True)
    report = run_reconcile(world.store, world.tenant, world.opener, request)
    [row] = report.of(READY_NOT_SENT)
    assert row.repaired and row.action.startswith("sent (auto_send_missed)"), row.action
    again = run_reconcile(world.store, world.tenant, world.opener, request)
    assert again.of(READY_NOT_SENT) == []  # it has an envelope now

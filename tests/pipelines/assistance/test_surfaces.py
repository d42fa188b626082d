"""The same run through Dagster (asset + drift check), the CLI and the demo round trip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import materialize
from typer.testing import CliRunner

from connectors.sandbox import start_sandbox
from orchestration.assistance.assets import DRIFT_CHECK, assistance_sync
from orchestration.cli.demo_assistance import round_trip
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.store import open_store
from tests.support.tenants import sandbox_tenant


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """The default sandbox (three seeded CRM requests, the first with an item lacking minimum days),
    tenant files pointing at it and a SQLite store, as `ponte` and Dagster would find them."""
    with start_sandbox(rate_limits=False) as sb:
        tenants = tmp_path / "tenants"
        tenants.mkdir()
        data = sandbox_tenant(sb).model_dump(mode="json", exclude_none=True)
        (tenants / "demo.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        url = f"sqlite:///{tmp_path / 'ponte.db'}"
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tenants))
        monkeypatch.setenv("PONTE_DATABASE_URL", url)
        open_store(url).dispose()
        yield sb, url


def test_dagster_reconciliation_reports_drift_as_check_metadata(seeded) -> None:
    sb, url = seeded
    result = materialize(
        [assistance_sync],
        partition_key="demo",
        resources={"store": StoreResource(database_url=url), "tenants": TenantsResource(),
                   "connectors": ConnectorsResource()},
        run_config={"ops": {"assistance_sync": {"config": {"mode": "reconcile"}}}},
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == DRIFT_CHECK and check.passed is False
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["missing_in_sienge_count"] == 2 and meta["drift_total"] == 2
    assert meta["drift_ids"]["missing_in_sienge"] == ["2", "3"]
    assert list(meta["blocked"]) == ["1"]  # the item without minimum days: a dead letter, not drift
    materialized = result.asset_materializations_for_node("assistance_sync")[0]
    assert materialized.metadata["created"].value == 2
    assert sorted(a["externalId"] for a in sb.state.sienge.assistances.values()) == ["2", "3"]


def test_cli_sync_assistance_plan_prints_creates_and_drift(seeded) -> None:
    from orchestration.cli.app import app

    sb, _url = seeded
    runner = CliRunner()
    planned = runner.invoke(app, ["sync", "assistance", "--tenant", "demo", "--reconcile", "--plan"],
                            env={"COLUMNS": "200"})
    assert planned.exit_code == 0, planned.output
    assert "plan: nothing written" in planned.output and "missing_in_sienge" in planned.output
    assert "blocked (not drift)" in planned.output
    assert sb.state.sienge.assistances == {}

    done = runner.invoke(app, ["sync", "assistance", "--tenant", "demo"], env={"COLUMNS": "200"})
    assert done.exit_code == 1, done.output  # done, with a dead letter (README, "Exit codes")
    assert "create in Sienge" in done.output and "ponte deadletter list" in done.output
    assert len(sb.state.sienge.assistances) == 2


def test_demo_round_trip(seeded) -> None:
    sb, url = seeded
    store = open_store(url)
    try:
        summary = round_trip(store, sandbox_tenant(sb), sb)
    finally:
        store.dispose()
    assert summary["crm_shows_sienge_id"] and summary["items_in_sienge"] == 2
    assert summary["attachments_in_sienge"] == 1 and summary["sienge_status"] == "FINISHED"
    assert [s["crm_situation"] for s in summary["steps"]] == ["Em andamento", "Concluída", "Concluída"]
    assert [s["changed"] for s in summary["steps"]] == [True, True, False]
    assert summary["blocked"] == ["1"]

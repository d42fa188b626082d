"""What an operator sees in the Dagster UI (issue #21), read back the way the UI reads it.

* The asset graph, through Dagster's GraphQL API on a code server loading ``orchestration.definitions``
  (as ``dagster dev`` does): one asset per entity and direction, with the lineage Sienge → CRM →
  envelopes → signed documents and assistance CRM → Sienge → CRM, groups per flow, kinds, owners,
  tenant partitions and the checks on the right assets.
* One entity of one tenant re-runs alone (the UI's "materialize selected" on one partition).
* After a run with bad records, the dead-letter check's WARN and its table, read from the instance
  (GraphQL ``assetCheckExecutions``).
* A second tenant's schedules load and tick next to a broken tenant file.
* A bad run config is refused at launch, before any step runs; manual runs are tagged.
* Back-sync outside a run is reported as a runless materialization of the signed documents.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    DagsterInvalidConfigError,
    DynamicPartitionsDefinition,
    build_schedule_context,
    instance_for_test,
    materialize,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from connectors.sandbox import start_sandbox
from orchestration.imports.assets import crm_customers_and_sales, key_of
from orchestration.imports.defs import import_dead_letters
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from tests.support.tenants import sandbox_tenant_file

REPO = Path(__file__).resolve().parents[2]

#: the data flow of issue #21, point 1: (upstream, downstream)
LINEAGE = {
    ("sienge/enterprises", "cvcrm/enterprises"),
    ("sienge/units", "cvcrm/units"),
    ("cvcrm/enterprises", "cvcrm/units"),
    ("sienge/customers", "cvcrm/people"),
    ("sienge/sales_contracts", "cvcrm/reservations"),
    ("cvcrm/people", "cvcrm/reservations"),
    ("cvcrm/units", "cvcrm/reservations"),
    ("cvcrm/reservations", "cvcrm/contracts"),
    ("cvcrm/contracts", "esign/envelopes"),
    ("esign/envelopes", "cvcrm/signed_documents"),
    ("cvcrm/assistance_requests", "sienge/technical_assistances"),
    ("sienge/technical_assistances", "cvcrm/assistance_statuses"),
}
GROUPS = {
    "cvcrm/people": "customer_sale_import",
    "cvcrm/reservations": "customer_sale_import",
    "esign/envelopes": "envelope_dispatch",
    "cvcrm/signed_documents": "signature_backsync",
    "sienge/technical_assistances": "technical_assistance",
    "cvcrm/assistance_statuses": "technical_assistance",
}
CHECKS = {
    "cvcrm/people": {"import_dead_letters", "id_map_consistent"},
    "esign/envelopes": {"dispatch_dead_letters", "backsync_dead_letters", "backsync_backlog", "envelope_package"},
    "sienge/technical_assistances": {"assistance_dead_letters", "assistance_drift"},
}

ASSET_NODES = """
query {
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    groupName
    kinds
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    isPartitioned
    isExecutable
    opNames
    description
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
}
"""

REPOSITORY = """
query {
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { name schedules { name cronSchedule } sensors { name } partitionSets { name } }
    }
    ... on PythonError { message }
  }
}
"""

CHECK_EXECUTIONS = """
query Executions($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 1) {
    status
    partition
    evaluation {
      success
      severity
      metadataEntries {
        label
        ... on TableMetadataEntry { table { records schema { columns { name } } } }
        ... on IntMetadataEntry { intValue }
      }
    }
  }
}
"""


def _path(key: dict[str, Any]) -> str:
    return "/".join(key["path"])


@pytest.fixture
def tenants_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    shutil.copy(REPO / "tenants" / "demo.yaml", folder / "demo.yaml")
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(folder))
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    return folder


def _graphql(instance: DagsterInstance, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """``query`` against a code server loading the definitions as ``dagster dev`` does (a subprocess
    that sees this test's environment: its tenants folder)."""
    target = ModuleTarget(module_name="orchestration.definitions", attribute="defs",
                          working_directory=str(REPO), location_name="ponte")
    with WorkspaceProcessContext(instance, target) as process:
        context = process.create_request_context()
        error = context.get_code_location_error("ponte")
        assert error is None, error.to_string() if error else ""
        result = execute_dagster_graphql(context, query, variables)
    assert not result.errors, result.errors
    return result.data


# ---------------------------------------------------------------------------------------- the graph


def test_the_asset_graph_shows_the_data_flow_per_entity_and_direction(tenants_dir: Path) -> None:
    with instance_for_test() as instance:
        nodes = {_path(node["assetKey"]): node for node in _graphql(instance, ASSET_NODES)["assetNodes"]}
    edges = {(_path(dep), name) for name, node in nodes.items() for dep in node["dependencyKeys"]}
    assert edges >= LINEAGE, sorted(LINEAGE - edges)
    for name, group in GROUPS.items():
        assert nodes[name]["groupName"] == group, name
    # one asset per entity and direction, materialized by one step per flow (run config keeps its name)
    assert {name for name, node in nodes.items() if node["opNames"] == ["crm_customers_and_sales"]} == {
        "cvcrm/enterprises", "cvcrm/units", "cvcrm/people", "cvcrm/reservations"}
    assert nodes["esign/envelopes"]["opNames"] == ["signing_envelopes"]
    for name in ("cvcrm/people", "esign/envelopes", "sienge/technical_assistances", "cvcrm/signed_documents"):
        assert nodes[name]["isPartitioned"], name
        assert nodes[name]["owners"] == [{"team": "integrations"}]
        assert nodes[name]["description"]
    # Sienge's and the CRM's own data are sources Ponte reads, never materializes
    for source in ("sienge/customers", "sienge/sales_contracts", "cvcrm/contracts", "cvcrm/assistance_requests"):
        assert not nodes[source]["isExecutable"], source
    assert "sienge" in nodes["sienge/customers"]["kinds"] and "cvcrm" in nodes["cvcrm/people"]["kinds"]
    assert {"docusign", "clicksign"} <= set(nodes["esign/envelopes"]["kinds"])
    for name, checks in CHECKS.items():
        assert {c["name"] for c in nodes[name]["assetChecksOrError"]["checks"]} >= checks, name


# -------------------------------------------------------------------------- runs on the sandbox


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, Any]]]:
    with start_sandbox(customers=8, seed=11, rate_limits=False) as sandbox:
        tenants = tmp_path / "tenants"
        sandbox_tenant_file(sandbox, tenants, unthrottled=True)
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tenants))
        resources = {
            "store": StoreResource(database_url=f"sqlite:///{tmp_path / 'ponte.db'}"),
            "tenants": TenantsResource(),
            "connectors": ConnectorsResource(),
        }
        yield sandbox, resources


def test_one_entity_of_one_tenant_materializes_alone(world) -> None:
    _sandbox, resources = world
    with instance_for_test() as instance:
        result = materialize([crm_customers_and_sales], selection=[key_of("customer")], partition_key="demo",
                             resources=resources, instance=instance)
        (event,) = result.asset_materializations_for_node("crm_customers_and_sales")
        assert event.asset_key == key_of("customer") and event.partition == "demo"
        assert event.metadata["created"].value == 8
        # the other entities were not read: their assets have no materialization
        assert instance.get_latest_materialization_event(key_of("sale")) is None
        run = instance.get_run_by_id(result.run_id)
        assert run.tags["ponte/tenant"] == "demo" and run.tags["ponte/mode"] == "incremental"


def test_the_dead_letter_check_warns_with_its_table_after_bad_records(world) -> None:
    sandbox, resources = world
    for customer_id in list(sandbox.state.sienge.customers)[:2]:
        customer = sandbox.state.sienge.customers[customer_id]
        sandbox.sienge.mutate_customer(customer_id, **{"cpf" if customer.get("cpf") else "cnpj": "000"})
    with instance_for_test() as instance:
        result = materialize([crm_customers_and_sales, import_dead_letters], partition_key="demo",
                             resources=resources, instance=instance)
        assert result.success
        # as the UI reads it: the check's latest execution, its severity and its table
        data = _graphql(instance, CHECK_EXECUTIONS,
                        {"assetKey": {"path": key_of("customer").path}, "checkName": "import_dead_letters"})
    (execution,) = data["assetCheckExecutions"]
    evaluation = execution["evaluation"]
    assert execution["status"] == "FAILED" and execution["partition"] == "demo"
    assert evaluation["success"] is False and evaluation["severity"] == AssetCheckSeverity.WARN.value
    entries = {entry["label"]: entry for entry in evaluation["metadataEntries"]}
    count = entries["open_dead_letters"]["intValue"]  # the two customers, and sales of theirs, if any
    table = entries["dead_letters"]["table"]
    assert [c["name"] for c in table["schema"]["columns"]] == ["record", "reason", "field", "replay"]
    assert len(table["records"]) == count and all("ponte deadletter replay " in r for r in table["records"])
    assert sum('"record": "customer:' in r for r in table["records"]) == 2


# --------------------------------------------------------------------- tenants: one broken, others run


def test_a_second_tenants_schedules_run_next_to_a_broken_tenant_file(tenants_dir: Path) -> None:
    second = yaml.safe_load((tenants_dir / "demo.yaml").read_text(encoding="utf-8"))
    second["id"] = "acme"
    (tenants_dir / "acme.yaml").write_text(yaml.safe_dump(second, allow_unicode=True), encoding="utf-8")
    (tenants_dir / "broken.yaml").write_text("id: broken\nname: [unclosed\n", encoding="utf-8")
    with instance_for_test() as instance:
        data = _graphql(instance, REPOSITORY)
    (repo,) = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"] for s in repo["schedules"]}
    assert {"import_demo", "import_acme", "dispatch_demo", "dispatch_acme", "assistance_reconcile_acme"} <= schedules
    assert not any("broken" in name for name in schedules)
    assert "tenant_files" in {s["name"] for s in repo["sensors"]}


def test_a_tenants_schedule_asks_for_its_own_partition() -> None:
    from orchestration.definitions import defs

    schedule = defs.get_schedule_def("import_demo")
    context = build_schedule_context(scheduled_execution_time=datetime(2026, 11, 23, 10, 15),
                                     repository_def=defs.get_repository_def())
    (request,) = list(schedule.evaluate_tick(context).run_requests or [])
    assert request.partition_key == "demo" and request.tags["ponte/tenant"] == "demo"


#: Dagster as it is, before the tests' plugin (tests/support/tenant_partitions.py) adds the tenant keys
_DAGSTER_AS_IS = {
    (DagsterInstance, "__init__"): DagsterInstance.__init__,
    (DynamicPartitionsDefinition, "has_partition_key"): DynamicPartitionsDefinition.has_partition_key,
    (DynamicPartitionsDefinition, "_ensure_dynamic_partitions_store"):
        DynamicPartitionsDefinition._ensure_dynamic_partitions_store,
}


def test_a_schedule_that_ticks_before_the_tenant_files_sensor_still_runs_its_tenant(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A new tenant file's schedules exist as soon as the code location reloads, maybe before the
    ``tenant_files`` sensor adds its partition key: the tick adds the key itself instead of failing."""
    from orchestration.definitions import defs

    for (owner, name), original in _DAGSTER_AS_IS.items():
        monkeypatch.setattr(owner, name, original)
    from orchestration.partitions import TENANTS, known_tenant_keys

    names = [s.name for s in defs.schedules if s.name.endswith("_demo") or s.name == "signature_backsync_poll"]
    assert {"import_demo", "dispatch_demo", "signature_backsync_poll"} <= set(names)
    for name in names:
        with instance_for_test() as instance:
            instance.delete_dynamic_partition(TENANTS, "demo")  # the tests' instances start with it
            assert "demo" not in known_tenant_keys(instance)
            # entered as Dagster's daemon does, so the instance the context opens is closed after the tick
            with build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                        scheduled_execution_time=datetime(2026, 11, 23, 10, 15)) as context:
                requests = list(defs.get_schedule_def(name).evaluate_tick(context).run_requests or [])
            assert "demo" in [r.partition_key for r in requests], name
            assert "demo" in known_tenant_keys(instance), name


# ----------------------------------------------------------------------------- launch-time config


@pytest.mark.parametrize(
    ("job", "step", "config", "said"),
    [
        ("customer_sale_import", "crm_customers_and_sales", {"mode": "since", "since": "2026-13-01"},
         "'2026-13-01' is not a date; write it as yyyy-mm-dd"),
        ("customer_sale_import", "crm_customers_and_sales", {"mode": "since"}, "mode=since needs since"),
        ("customer_sale_import", "crm_customers_and_sales", {"mode": "ids", "customer_ids": ["12a"]},
         "a Sienge id is a number"),
        ("customer_sale_import", "crm_customers_and_sales", {"mode": "full", "since": "2026-01-01"},
         "since is read only with mode=since"),
        ("envelope_dispatch", "signing_envelopes", {"contracts": ["30 01"]}, "a contract is its CV CRM id"),
        ("signature_backsync", "backsync", {"mode": "contract"}, "mode=contract needs contract"),
    ],
)
def test_a_bad_run_config_is_refused_at_launch_before_any_step(
    tenants_dir: Path, job: str, step: str, config: dict[str, Any], said: str
) -> None:
    from orchestration.definitions import defs

    job_def = defs.resolve_job_def(job)
    run_config = {"ops": {step: {"config": config}}}
    with instance_for_test() as instance:
        with pytest.raises(DagsterInvalidConfigError) as refused:
            instance.create_run_for_job(job_def, run_config=run_config, tags={"dagster/partition": "demo"})
        assert said in str(refused.value)
        assert instance.get_runs_count() == 0  # no run was created, so no step could start
        with pytest.raises(DagsterInvalidConfigError):
            job_def.execute_in_process(run_config=run_config, instance=instance, partition_key="demo")
        assert instance.get_runs_count() == 0


def test_a_good_run_config_passes_launch_validation(tenants_dir: Path) -> None:
    from dagster import validate_run_config

    from orchestration.definitions import defs

    job_def = defs.resolve_job_def("customer_sale_import")
    for config in ({}, {"mode": "since", "since": "2026-11-01"}, {"mode": "ids", "sale_ids": ["42"]}):
        validate_run_config(job_def, {"ops": {"crm_customers_and_sales": {"config": config}}})


# ------------------------------------------------------------------------------ runless back-sync


def test_a_backsync_outside_a_run_is_a_runless_materialization_of_the_signed_documents() -> None:
    from orchestration.backsync.defs import report_backsync
    from pipelines.backsync.flow import BacksyncReport

    with instance_for_test() as instance:
        assert not report_backsync(instance, "demo", BacksyncReport("demo"), "inbox")  # nothing moved
        assert report_backsync(instance, "demo", BacksyncReport("demo", events=1, applied=1, completed=["801"]),
                               "inbox")
        event = instance.get_latest_materialization_event(AssetKey(["cvcrm", "signed_documents"]))
        assert event is not None and event.run_id == "" and event.asset_materialization.partition == "demo"
        assert event.asset_materialization.metadata["applied"].value == 1


# ------------------------------------------------------------------------- the CLI tells the same story


def test_ponte_sync_import_is_a_dagster_run_when_an_instance_is_configured(
    world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from orchestration.cli.app import app

    _sandbox, resources = world
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PONTE_DATABASE_URL", resources["store"].database_url)
    done = CliRunner().invoke(app, ["sync", "import", "--tenant", "demo", "--id", "customer:1"],
                              env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "import demo" in done.output  # the same report as a local run
    refused = CliRunner().invoke(app, ["sync", "import", "--tenant", "demo", "--since", "2026-02-30", "--dagster"])
    assert refused.exit_code == 2 and "not a date" in refused.output
    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.job_name == "customer_sale_import" and run.tags["ponte/source"] == "cli"
        assert (run.tags["ponte/tenant"], run.tags["ponte/mode"], run.tags["ponte/ids"]) == ("demo", "ids", "1")
        event = instance.get_latest_materialization_event(key_of("customer"))
        assert event is not None and event.run_id == run.run_id
    local = CliRunner().invoke(app, ["sync", "import", "--tenant", "demo", "--local", "--json"])
    assert local.exit_code == 0, local.output
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 1  # --local ran here, as before

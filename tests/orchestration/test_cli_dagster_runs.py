"""`ponte sync dispatch` and `ponte sync assistance` as Dagster runs, and `--local` as runless events
(issue #21: the CLI and the UI tell one story).

With ``DAGSTER_HOME`` set (an instance on ``tmp_path``) each command is a run of its flow's job, tagged
``ponte/source: cli``, and prints the same table and JSON as a local run, rebuilt from the run's
materializations. A bad run config is refused before a run exists. ``--local`` runs here, creates no run
and records what moved as a runless materialization of the tenant's partition (``ponte/source:
cli-local``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, DagsterInvalidConfigError, instance_for_test
from sqlalchemy import func, select
from typer.testing import CliRunner

from connectors.sandbox import start_sandbox
from orchestration.cli.app import app
from pipelines.store import open_store
from pipelines.store.models import Envelope
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant_file

REPO = Path(__file__).resolve().parents[2]
ENVELOPES = AssetKey(["esign", "envelopes"])
TECHNICAL_ASSISTANCES = AssetKey(["sienge", "technical_assistances"])


def _cli(*args: str, code: int = 0) -> str:
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert done.exit_code == code, done.output
    return done.output


def _json(*args: str, code: int = 0) -> dict[str, Any]:
    output = _cli(*args, "--json", code=code)
    # logging may add lines around it (the runner swaps streams between invocations): take the JSON line
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "ponte_home"))
    return home


@pytest.fixture
def dispatching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    """A sandbox, its tenant file, a store with the contract manager verified, and a Dagster instance
    folder in DAGSTER_HOME: what `ponte sync dispatch` finds on an operator's machine."""
    with start_sandbox(customers=10, seed=5, rate_limits=False) as sb:
        tenant = sandbox_tenant_file(sb, tmp_path / "tenants", unthrottled=True)
        url = f"sqlite:///{tmp_path / 'ponte.db'}"
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
        monkeypatch.setenv("PONTE_DATABASE_URL", url)
        _home(tmp_path, monkeypatch)
        store = open_store(url)
        try:
            verify_manager(store, tenant)
            yield sb, tenant, url
        finally:
            store.dispose()


def _envelopes_of(url: str, contract_id: int) -> int:
    store = open_store(url)
    try:
        with store.session() as session:
            return session.scalar(select(func.count()).select_from(Envelope)
                                  .where(Envelope.contract_id == str(contract_id))) or 0
    finally:
        store.dispose()


def _at_provider(sb: Any, sha256: str) -> int:
    return sum(1 for e in sb.state.docusign.envelopes.values()
               if any(f["name"] == "ponte_key" and f["value"].endswith(sha256)
                      for f in e["customFields"]["textCustomFields"]))


# ------------------------------------------------------------------------------------------- dispatch


def test_sync_dispatch_is_a_dagster_run_that_prints_the_same_report(dispatching) -> None:
    sb, tenant, url = dispatching
    sale = seed_sale(sb, tenant)

    out = _cli("sync", "dispatch", "--tenant", "demo", "--contract", sale.ref)
    assert f"dispatch {tenant.id}" in out and str(sale.contract_id) in out and " sent " in out
    assert "1:client/email" in out and "package " in out
    with DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.job_name == "envelope_dispatch"
        assert run.tags["ponte/source"] == "cli" and run.tags["ponte/trigger"] == "manual"
        assert (run.tags["ponte/tenant"], run.tags["ponte/mode"], run.tags["ponte/ids"]) == ("demo", "ids", "1")
        event = instance.get_latest_materialization_event(ENVELOPES)
        assert event is not None and event.run_id == run.run_id
        assert event.asset_materialization.partition == "demo"
        (row,) = [r.data for r in event.asset_materialization.metadata["contracts"].value.records]
        assert (row["contract"], row["result"]) == (str(sale.contract_id), "sent")  # the UI's table
    assert _envelopes_of(url, sale.contract_id) == 1
    sha = row["document_sha256"]
    assert sha and _at_provider(sb, sha) == 1  # sent once

    # again, as JSON: already sent, nothing new at the provider; the local path says the same
    in_dagster = _json("sync", "dispatch", "--tenant", "demo", "--contract", sale.ref)
    here = _json("sync", "dispatch", "--tenant", "demo", "--contract", sale.ref, "--local")
    assert set(in_dagster) == set(here) | {"dagster_run_id"}
    assert [o["result"] for o in in_dagster["outcomes"]] == ["already_sent"]
    in_dagster.pop("dagster_run_id")
    assert in_dagster == here
    assert _envelopes_of(url, sale.contract_id) == 1 and _at_provider(sb, sha) == 1
    with DagsterInstance.get() as instance:
        assert instance.get_runs_count() == 2  # --local made none
        latest = instance.get_latest_materialization_event(ENVELOPES)
        assert latest is not None and latest.run_id  # nothing moved locally: no runless event


def test_a_capped_contracts_table_keeps_failures_and_complete_counts(dispatching,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of contracts in one run would put every row in Dagster's event log: the table keeps
    TABLE_ROWS rows (those needing attention first), the counts stay complete, the CLI says so."""
    import orchestration.dispatch.assets as assets

    sb, tenant, _url = dispatching
    sales = [seed_sale(sb, tenant) for _ in range(3)]
    monkeypatch.setattr(assets, "TABLE_ROWS", 1)
    said = _json("sync", "dispatch", "--tenant", "demo", *[a for s in sales for a in ("--contract", s.ref)])
    assert said["counts"]["sent"] == 3 and len(said["outcomes"]) == 1 and said["outcomes_not_shown"] == 2
    with DagsterInstance.get() as instance:
        metadata = instance.get_latest_materialization_event(ENVELOPES).asset_materialization.metadata
        assert len(metadata["contracts"].value.records) == 1 and metadata["contracts_not_shown"].value == 2
        assert metadata["sent"].value == 3
    out = _cli("sync", "dispatch", "--tenant", "demo", *[a for s in sales for a in ("--contract", s.ref)])
    assert "2 more contracts not listed" in " ".join(out.split()) and "ponte envelopes list --tenant demo" in out


def test_the_table_keeps_the_contracts_that_need_attention_first() -> None:
    from orchestration.dispatch.assets import shown_outcomes
    from pipelines.dispatch.flow import ContractOutcome

    results = ["sent", "dead_lettered", "sent", "deferred", "already_sent", "dead_lettered"]
    outcomes = [ContractOutcome(str(n), r, None, None, None, [], 0, None, None, None) for n, r in enumerate(results)]
    assert [o.contract_id for o in shown_outcomes(outcomes, 4)] == ["0", "1", "3", "5"]  # run order kept
    assert [o.result for o in shown_outcomes(outcomes, 2)] == ["dead_lettered", "deferred"]
    assert shown_outcomes(outcomes, 10) == outcomes


def test_sync_dispatch_local_records_a_runless_materialization(dispatching) -> None:
    sb, tenant, url = dispatching
    sale = seed_sale(sb, tenant)
    out = _cli("sync", "dispatch", "--tenant", "demo", "--contract", sale.ref, "--local")
    assert " sent " in out
    with DagsterInstance.get() as instance:
        assert instance.get_runs_count() == 0
        event = instance.get_latest_materialization_event(ENVELOPES)
        assert event is not None and event.run_id == ""
        materialization = event.asset_materialization
        assert materialization.partition == "demo"
        assert materialization.metadata["ponte/source"].value == "cli-local"
        assert materialization.metadata["sent"].value == 1
        assert "demo" in instance.get_dynamic_partitions("tenants")
    assert _envelopes_of(url, sale.contract_id) == 1


def test_a_bad_dispatch_is_refused_before_a_run_exists(dispatching) -> None:
    said = _cli("sync", "dispatch", "--tenant", "demo", "--resend", "--all-ready", code=2)
    assert "--resend sends named contracts again" in said
    refused = _cli("sync", "dispatch", "--tenant", "demo", "--contract", "30 01", "--dagster", code=2)
    assert "Dagster refused the run config" in refused and "a contract is its CV CRM id" in refused
    with DagsterInstance.get() as instance:
        assert instance.get_runs_count() == 0


@pytest.fixture
def tenants_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    shutil.copy(REPO / "tenants" / "demo.yaml", folder / "demo.yaml")
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(folder))
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    return folder


@pytest.mark.parametrize("config", [
    {"resend": True},
    {"resend": True, "contracts": ["801"]},  # all_ready defaults to true
    {"resend": True, "contracts": ["801"], "all_ready": False, "reservations": ["3001"]},
])
def test_resend_without_named_contracts_is_refused_at_launch(tenants_dir: Path, config: dict[str, Any]) -> None:
    from orchestration.definitions import defs

    job = defs.resolve_job_def("envelope_dispatch")
    with instance_for_test() as instance:
        with pytest.raises(DagsterInvalidConfigError) as refused:
            instance.create_run_for_job(job, run_config={"ops": {"signing_envelopes": {"config": config}}},
                                        tags={"dagster/partition": "demo"})
        assert "resend sends named contracts again" in str(refused.value)
        assert instance.get_runs_count() == 0


def test_resend_of_named_contracts_passes_launch_validation(tenants_dir: Path) -> None:
    from dagster import validate_run_config

    from orchestration.definitions import defs

    validate_run_config(defs.resolve_job_def("envelope_dispatch"), {"ops": {"signing_envelopes": {"config": {
        "resend": True, "contracts": ["3001:801"], "all_ready": False}}}})


# ----------------------------------------------------------------------------------------- assistance


@pytest.fixture
def assisting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The default sandbox (three CRM requests, the first with an item lacking minimum days), its tenant
    file, a store and DAGSTER_HOME."""
    with start_sandbox(rate_limits=False) as sb:
        sandbox_tenant_file(sb, tmp_path / "tenants")
        url = f"sqlite:///{tmp_path / 'ponte.db'}"
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
        monkeypatch.setenv("PONTE_DATABASE_URL", url)
        open_store(url).dispose()
        _home(tmp_path, monkeypatch)
        yield sb


def test_sync_assistance_is_a_dagster_run_that_prints_the_same_report(assisting) -> None:
    sb = assisting
    planned = _json("sync", "assistance", "--tenant", "demo", "--reconcile", "--plan")
    here = _json("sync", "assistance", "--tenant", "demo", "--reconcile", "--plan", "--local")
    assert planned.pop("dagster_run_id") and planned == here
    assert planned["drift"]["ids"]["missing_in_sienge"] == ["2", "3"] and list(planned["drift"]["blocked"]) == ["1"]
    assert sb.state.sienge.assistances == {}

    done = _cli("sync", "assistance", "--tenant", "demo", code=1)  # done, with a dead letter
    assert "create in Sienge" in done and "ponte deadletter list" in done
    assert len(sb.state.sienge.assistances) == 2
    with DagsterInstance.get() as instance:
        runs = instance.get_runs()  # newest first
        assert [r.job_name for r in runs] == ["assistance_sync_job"] * 2
        assert [r.tags["ponte/mode"] for r in runs] == ["poll", "reconcile"]
        assert all(r.tags["ponte/source"] == "cli" and r.tags["ponte/tenant"] == "demo" for r in runs)
        event = instance.get_latest_materialization_event(TECHNICAL_ASSISTANCES)
        assert event is not None and event.run_id == runs[0].run_id
        created = event.asset_materialization.metadata["created_in_sienge"].value.records
        assert sorted(r.data["crm_id"] for r in created) == ["2", "3"]

    again = _json("sync", "assistance", "--tenant", "demo", "--no-poll")
    assert again["counts"]["created"] == 0 and again["dagster_run_id"]
    with DagsterInstance.get() as instance:
        assert instance.get_runs()[0].tags["ponte/mode"] == "webhooks"


def test_sync_assistance_local_records_a_runless_materialization(assisting) -> None:
    sb = assisting
    out = _cli("sync", "assistance", "--tenant", "demo", "--local", code=1)
    assert "create in Sienge" in out and len(sb.state.sienge.assistances) == 2
    with DagsterInstance.get() as instance:
        assert instance.get_runs_count() == 0
        event = instance.get_latest_materialization_event(TECHNICAL_ASSISTANCES)
        assert event is not None and event.run_id == ""
        assert event.asset_materialization.partition == "demo"
        assert event.asset_materialization.metadata["ponte/source"].value == "cli-local"
        assert event.asset_materialization.metadata["created"].value == 2


def test_local_and_dagster_together_are_refused(tenants_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _home(tmp_path, monkeypatch)
    for flow in ("dispatch", "assistance"):
        args = ["sync", flow, "--tenant", "demo", "--local", "--dagster"]
        said = _cli(*args, *(["--all-ready"] if flow == "dispatch" else []), code=2)
        assert "choose --local or --dagster" in said
    monkeypatch.delenv("DAGSTER_HOME")
    said = _cli("sync", "assistance", "--tenant", "demo", "--dagster", code=2)
    assert "--dagster needs a Dagster instance" in said


# --------------------------------------------------------------------------------- import, back-sync


def test_sync_import_local_records_runless_materializations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(customers=8, seed=11, rate_limits=False) as sandbox:
        sandbox_tenant_file(sandbox, tmp_path / "tenants", unthrottled=True)
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
        monkeypatch.setenv("PONTE_DATABASE_URL", f"sqlite:///{tmp_path / 'ponte.db'}")
        _home(tmp_path, monkeypatch)
        _json("sync", "import", "--tenant", "demo", "--local")
    with DagsterInstance.get() as instance:
        assert instance.get_runs_count() == 0
        event = instance.get_latest_materialization_event(AssetKey(["cvcrm", "people"]))
        assert event is not None and event.run_id == "" and event.asset_materialization.partition == "demo"
        metadata = event.asset_materialization.metadata
        assert metadata["ponte/source"].value == "cli-local" and metadata["created"].value == 8


def test_a_runless_backsync_names_its_source() -> None:
    from orchestration.backsync.defs import report_backsync
    from pipelines.backsync.flow import BacksyncReport

    with instance_for_test() as instance:
        assert report_backsync(instance, "demo", BacksyncReport("demo", events=1, applied=1), "inbox")
        event = instance.get_latest_materialization_event(AssetKey(["cvcrm", "signed_documents"]))
        assert event is not None and event.asset_materialization.metadata["ponte/source"].value == "cli-local"


def test_recording_never_fails_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    from orchestration.runless import report_moved

    class Refusing:
        def has_dynamic_partition(self, *_args: Any) -> bool:
            return True

        def report_runless_asset_event(self, _event: Any) -> None:
            raise RuntimeError("storage is read-only")

    assert report_moved("demo", {"envelopes": {"sent": 1}}, instance=Refusing()) == 0
    assert "could not record esign/envelopes" in caplog.text
    home = tmp_path / "broken_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage: [not, a, mapping\n", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert report_moved("demo", {"envelopes": {"sent": 1}}) == 0
    monkeypatch.delenv("DAGSTER_HOME")
    assert report_moved("demo", {"envelopes": {"sent": 1}}) == 0  # no instance: nothing to record


def test_sync_backsync_local_survives_a_broken_dagster_instance(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`--local` does the work here; a broken dagster.yaml only costs the runless record (a warning)."""
    with start_sandbox(customers=2, seed=11, rate_limits=False) as sandbox:
        sandbox_tenant_file(sandbox, tmp_path / "tenants", unthrottled=True)
        monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
        monkeypatch.setenv("PONTE_DATABASE_URL", f"sqlite:///{tmp_path / 'ponte.db'}")
        home = tmp_path / "broken_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("storage: [not, a, mapping\n", encoding="utf-8")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        said = _json("sync", "backsync", "--tenant", "demo", "--local")
    assert said["flow"] == "backsync" and said["tenant"] == "demo"


def test_the_local_table_masks_a_reason_that_names_a_person() -> None:
    from orchestration.cli.console import console
    from orchestration.cli.sync_dispatch import _print_report
    from pipelines.dispatch.flow import ContractOutcome, DispatchReport

    reason = "signer 529.982.247-25 (maria@example.com) has no phone"
    report = DispatchReport(tenant="demo", plan=False, package={"package": "p", "used": 1, "remaining": 9},
                            outcomes=[ContractOutcome("801", "dead_lettered", None, None, reason, [], 0,
                                                      None, None, None)])
    with console.capture() as captured:
        _print_report(report)
    shown = captured.get()
    assert "801" in shown and "dead_lettered" in shown
    assert "529.982.247-25" not in shown and "maria@example.com" not in shown

"""`ponte sync backsync`, `ponte envelopes show` and the Dagster job/sensor/schedule, on the same flow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, build_schedule_context, build_sensor_context
from typer.testing import CliRunner

from orchestration.backsync.defs import signature_backsync, signature_backsync_poll, signing_webhook_backsync
from orchestration.cli.app import app
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from tests.pipelines.backsync.conftest import Hub
from tests.pipelines.backsync.helpers import crm_contracts, send_envelope


@pytest.fixture
def env_hub(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The hub's tenant as a tenant file and its store as PONTE_DATABASE_URL, as the CLI and Dagster see them."""
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / "demo.yaml").write_text(yaml.safe_dump(hub.tenant.model_dump(mode="json")), encoding="utf-8")
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tenants))
    monkeypatch.setenv("PONTE_DATABASE_URL", hub.store.url)
    monkeypatch.setenv("COLUMNS", "200")
    return hub


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_manual_sync_and_history(env_hub: Hub) -> None:
    hub = env_hub
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=2)
    hub.sb.set_faults("docusign", {"webhook_loss_rate": 1.0})
    assert "still pending" in _cli("sync", "backsync", "--tenant", "demo", "--contract", env.contract_id)
    hub.sb.sign(env.provider_envelope_id, "client")
    hub.sb.sign(env.provider_envelope_id, "spouse")
    out = _cli("sync", "backsync", "--tenant", "demo", "--contract", env.contract_id)
    assert "signed (2/2 signers)" in out
    shown = _cli("envelopes", "show", env.contract_id, "--tenant", "demo")
    assert "completed" in shown and "***.***.***-25" in shown and "m***@example.com.br" in shown
    assert "52998224725" not in shown and "maria.silva@" not in shown and "/verify/" in shown
    raw = _cli("envelopes", "show", env.contract_id, "--tenant", "demo", "--json")
    # logging may add lines around it (the runner swaps streams between invocations): take the JSON line
    history = json.loads(next(line for line in raw.splitlines() if line.startswith("[")))
    assert history[0]["status"] == "completed" and [s["status"] for s in history[0]["signers"]] == ["signed"] * 2
    drained = _cli("sync", "backsync", "--tenant", "demo")  # webhooks sent before the loss fault, if any
    assert "back-sync demo: events" in drained and "applied 0" in drained and "failed 0" in drained


def test_a_local_contract_sync_is_recorded_on_the_signed_documents_asset(
        env_hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--local` with a Dagster instance: the contract's completion shows on the asset graph (runless)."""
    from dagster import AssetKey

    hub = env_hub
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=1)
    hub.sb.set_faults("docusign", {"webhook_loss_rate": 1.0})
    hub.sb.sign(env.provider_envelope_id, "client")
    assert "signed (1/1 signers)" in _cli("sync", "backsync", "--tenant", "demo", "--contract", env.contract_id,
                                          "--local")
    with DagsterInstance.get() as instance:
        assert instance.get_runs_count() == 0
        event = instance.get_latest_materialization_event(AssetKey(["cvcrm", "signed_documents"]))
        assert event is not None and event.asset_materialization.partition == "demo"
        metadata = event.asset_materialization.metadata
        assert metadata["mode"].value == "contract" and metadata["ponte/source"].value == "cli-local"


def _resources(hub: Hub) -> dict:
    return {"store": StoreResource(database_url=hub.store.url), "tenants": TenantsResource(),
            "connectors": ConnectorsResource()}


def test_dagster_sensor_job_and_schedule(env_hub: Hub) -> None:
    hub = env_hub
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=1)
    hub.sb.sign(env.provider_envelope_id, "client")
    hub.sb.dispatcher.wait_for(
        lambda attempts: any(a.event == "envelope-completed" and a.outcome == "delivered" for a in attempts))
    with DagsterInstance.ephemeral() as instance:
        tick = signing_webhook_backsync(build_sensor_context(instance=instance, resources=_resources(hub)))
        [request] = tick.run_requests
        assert request.partition_key == "demo"
        result = signature_backsync.execute_in_process(
            run_config=request.run_config, partition_key="demo", resources=_resources(hub), instance=instance)
        assert result.success
        assert result.output_for_node("backsync")["completed"] == [env.contract_id]
        again = signing_webhook_backsync(build_sensor_context(instance=instance, resources=_resources(hub)))
        assert not getattr(again, "run_requests", None)

        manual = signature_backsync.execute_in_process(
            run_config={"ops": {"backsync": {"config": {"mode": "contract", "contract": env.contract_id}}}},
            partition_key="demo", resources=_resources(hub), instance=instance)
        outputs = [e for e in manual.all_node_events if e.event_type_value == "STEP_OUTPUT"]
        shown = outputs[0].event_specific_data.metadata
        assert "signed (1/1 signers)" in shown["message"].value
        assert shown["history"].value[0]["signers"][0]["cpf"] == "***.***.***-25"

        requests = list(signature_backsync_poll(build_schedule_context(instance=instance)))
        assert [r.partition_key for r in requests] == ["demo"]
        poll = signature_backsync.execute_in_process(
            run_config=requests[0].run_config, partition_key="demo", resources=_resources(hub), instance=instance)
        assert poll.success
    assert [c["assinado"] for c in crm_contracts(hub.sb, env.details["reservation_id"])] == ["S"]

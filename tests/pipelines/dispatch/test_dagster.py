"""The dispatch asset in Dagster: one tenant partition, counts as metadata, the same exactly-once path."""

from __future__ import annotations

from pathlib import Path

from dagster import materialize

from orchestration.dispatch.assets import signing_envelopes
from orchestration.dispatch.defs import DEFS
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.store import open_store
from schemas.tenant import TenantConfig
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant


class SandboxTenants(TenantsResource):
    tenant_json: str

    def load(self, tenant_id: str) -> TenantConfig:
        return TenantConfig.model_validate_json(self.tenant_json)


def test_asset_dispatches_named_contract_and_reports_counts(sb, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dagster.db'}"
    tenant = sandbox_tenant(sb, unthrottled=True)
    store = open_store(url)
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant)
    resources = {"store": StoreResource(database_url=url), "tenants": SandboxTenants(tenant_json=tenant.model_dump_json()),
                 "connectors": ConnectorsResource()}
    config = {"ops": {"signing_envelopes": {"config": {"contracts": [sale.ref], "all_ready": False}}}}
    result = materialize([signing_envelopes], partition_key="demo", resources=resources, run_config=config)
    assert result.success
    meta = result.asset_materializations_for_node("signing_envelopes")[0].metadata
    assert meta["sent"].value == 1 and meta["dead_lettered"].value == 0
    again = materialize([signing_envelopes], partition_key="demo", resources=resources, run_config=config)
    meta = again.asset_materializations_for_node("signing_envelopes")[0].metadata
    assert (meta["sent"].value, meta["already_sent"].value) == (0, 1)
    store.dispose()


def test_merged_definitions_offer_the_job_and_a_schedule_per_tenant() -> None:
    from orchestration.definitions import defs

    assert defs.resolve_job_def("envelope_dispatch").partitions_def is not None
    assert any(s.name == "dispatch_demo" for s in DEFS.schedules or [])
    assert [s.name for s in DEFS.sensors or []] == ["dispatch_cvcrm_webhooks"]
    assert defs.get_sensor_def("dispatch_cvcrm_webhooks").job_name == "envelope_dispatch"

"""Dispatch as a tenant-partitioned asset; counts (sent, found, dead-lettered...) as metadata.

No ``from __future__ import annotations`` here: Dagster resolves the Config parameter's annotation.
"""

from typing import Literal

from dagster import AssetExecutionContext, Backoff, Config, Jitter, MaterializeResult, RetryPolicy, asset
from pydantic import Field

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from pipelines.dispatch.connections import ConnectorSet
from pipelines.dispatch.flow import DispatchRequest, run_dispatch

#: only what the HTTP layer gave up on is retried at the step level (the outbox makes it safe)
STEP_RETRY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


class DispatchConfig(Config):
    """Default: every ready contract (the schedule). Manual: given contracts, or a plan."""

    contracts: list[str] = Field(default_factory=list, description="CV CRM contract ids (or RESERVA:CONTRATO)")
    all_ready: bool = Field(True, description="Also every validated, unsigned contract")
    template: str | None = Field(None, description="Render this template instead of the CRM's PDF")
    terms: Literal["none", "with_contract", "alone"] = "none"
    plan: bool = Field(False, description="Dry run: report the envelopes that would be sent")


@asset(
    name="signing_envelopes",
    group_name="envelope_dispatch",
    partitions_def=tenant_partitions,
    retry_policy=STEP_RETRY,
    description="CV CRM contracts sent as envelopes to the tenant's signing provider, exactly once each.",
    kinds={"python"},
)
def signing_envelopes(
    context: AssetExecutionContext,
    config: DispatchConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
) -> MaterializeResult:
    tenant = tenants.load(context.partition_key)
    state = store.get()
    request = DispatchRequest(contracts=config.contracts, all_ready=config.all_ready or not config.contracts,
                              template=config.template, terms=config.terms, plan=config.plan,
                              run_id=context.run.run_id)
    with ConnectorSet(tenant, state) as conns:
        report = run_dispatch(state, tenant, request, conns)
    context.log.info(
        f"dispatch {tenant.id}: sent {report.count('sent')}, found {report.count('found')}, "
        f"already sent {report.count('already_sent')}, dead-lettered {report.count('dead_lettered')}, "
        f"deferred {report.count('deferred')}"
    )
    return MaterializeResult(metadata=report.as_metadata())

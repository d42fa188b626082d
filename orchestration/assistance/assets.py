"""The assistance sync as two tenant-partitioned assets, one per direction, whose drift check reports
what webhooks missed: ``cvcrm/assistance_requests`` (external) → ``sienge/technical_assistances`` →
``cvcrm/assistance_statuses`` (names from :mod:`orchestration.translator`). One step, still named
``assistance_sync``, does both directions (the flow runs them together); its config is checked at launch.

No ``from __future__ import annotations`` here: Dagster reads the Config parameter's annotation at
definition time.
"""

from typing import Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pydantic import Field

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, check_config_at_launch, step_errors, tag_run
from orchestration.translator import key, sources, spec
from pipelines.assistance import AssistanceReport, AssistanceRequest, run_assistance

DRIFT_CHECK = "assistance_drift"
STEP = "assistance_sync"
#: CRM → Sienge (new assistências) and Sienge → CRM (statuses); the drift check sits on the Sienge side
TO_SIENGE, TO_CRM = "sienge_technical_assistances", "crm_assistance_statuses"
#: assistance requests opened in CV CRM, as an external asset
CRM_REQUESTS = sources("assistance")


class AssistanceConfig(Config):
    """webhooks: process stored CV CRM / Sienge hooks (the sensor); reconcile: compare, repair, report."""

    mode: Literal["webhooks", "poll", "reconcile"] = Field(
        "webhooks", description="reconcile is what the nightly schedule runs"
    )
    plan: bool = Field(False, description="Dry run: report what would change, write nothing")

    def request(self, run_id: str) -> AssistanceRequest:
        return AssistanceRequest(
            events=True,
            poll=self.mode == "poll",
            reconcile=self.mode == "reconcile",
            plan=self.plan,
            run_id=run_id,
        )


def drift_check_result(report: AssistanceReport) -> AssetCheckResult:
    """Drift as an asset-check result: counts and ids as metadata; any drift is a warning.

    The run already repaired what it could; the check says how far the two sides had drifted (what
    webhooks missed), and which requests could not be repaired or sent.
    """
    drift = report.drift
    if drift is None:
        return AssetCheckResult(
            check_name=DRIFT_CHECK,
            asset_key=key(TO_SIENGE),
            passed=True,
            metadata={"reconciled": False, "note": "not a reconciliation run: no comparison made"},
        )
    metadata: dict[str, object] = {"reconciled": True, "drift_total": drift.total, "plan": report.plan}
    for kind, count in drift.counts().items():
        metadata[f"{kind}_count"] = count
    metadata["drift_ids"] = MetadataValue.json(drift.ids())
    metadata["status_details"] = MetadataValue.json(drift.details)
    metadata["blocked"] = MetadataValue.json(drift.blocked)
    metadata["unrepaired"] = MetadataValue.json(drift.unrepaired)
    return AssetCheckResult(
        check_name=DRIFT_CHECK,
        asset_key=key(TO_SIENGE),
        passed=drift.total == 0 and not drift.unrepaired,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )


@multi_asset(
    name=STEP,
    specs=[spec(TO_SIENGE, partitions_def=tenant_partitions), spec(TO_CRM, partitions_def=tenant_partitions)],
    retry_policy=STEP_RETRY,
    description="Technical-assistance requests agreed between CV CRM and Sienge (per tenant).",
    check_specs=[
        AssetCheckSpec(
            DRIFT_CHECK,
            asset=key(TO_SIENGE),
            description="CRM and Sienge agree on every assistance (drift found by reconciliation).",
        )
    ],
)
def assistance_sync(
    context: AssetExecutionContext,
    config: AssistanceConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
):
    with step_errors(context):
        tenant = tenants.load(context.partition_key)
        tag_run(context, {"ponte/tenant": tenant.id, "ponte/mode": config.mode})
        state = store.get()
        with connectors.sienge_and_crm(tenant, state) as (sienge, cvcrm):
            report = run_assistance(state, tenant, sienge, cvcrm, config.request(context.run.run_id))
    context.log.info(
        f"assistance {tenant.id} ({config.mode}): created {len(report.created)}, updated "
        f"{len(report.updated)}, failed {len(report.failed)}"
        + (f", drift {report.drift.total}" if report.drift is not None else "")
    )
    # one report for both directions: each asset carries it (the flow does not split its counts)
    yield MaterializeResult(asset_key=key(TO_SIENGE), metadata=report.as_metadata(),
                            check_results=[drift_check_result(report)])
    yield MaterializeResult(asset_key=key(TO_CRM), metadata=report.as_metadata())


check_config_at_launch(assistance_sync, AssistanceConfig)

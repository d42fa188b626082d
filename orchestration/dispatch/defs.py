"""The dispatch flow's Dagster definitions: asset, job, one polling schedule per tenant and the CV CRM
webhook sensor (the schedule stays as the fallback for webhooks that never came)."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    schedule,
)

from orchestration.checks import backsync_backlog_check, dead_letter_check, package_check
from orchestration.dispatch.assets import CRM_CONTRACTS, signing_envelopes
from orchestration.dispatch.sensors import contract_webhook_sensor
from orchestration.partitions import scheduled_partition
from orchestration.steps import run_tags
from schemas import list_tenants

DISPATCH_CRON = "*/10 * * * *"

dispatch_job = define_asset_job(
    "envelope_dispatch",
    selection=AssetSelection.assets(signing_envelopes),
    description="Contracts ready to sign in CV CRM → envelopes at DocuSign/Clicksign, for one tenant.",
    executor_def=in_process_executor,
)


def dispatch_schedules() -> list[ScheduleDefinition]:
    """Poll each tenant's CRM for ready contracts (the CRM's webhooks are hints; the poll is the truth)."""
    schedules = []
    for tenant in list_tenants():

        def _evaluate(context: ScheduleEvaluationContext, tenant_id: str = tenant.id) -> RunRequest:
            return RunRequest(
                run_key=f"dispatch-{tenant_id}-{context.scheduled_execution_time:%Y%m%dT%H%M}",
                partition_key=scheduled_partition(context, tenant_id),
                tags=run_tags(tenant_id, "schedule", mode="ready"),
            )

        schedules.append(schedule(
            name=f"dispatch_{tenant.id.replace('-', '_')}",
            cron_schedule=DISPATCH_CRON,
            job=dispatch_job,
            execution_timezone="America/Sao_Paulo",
            description=f"Send ready contracts of tenant {tenant.id} for signature",
        )(_evaluate))
    return schedules


#: the checks stay on the envelopes asset: back-sync keeps its statuses current, and the backlog and
#: back-sync dead letters are run with every dispatch (the signed-documents asset is reported by an op job)
DEFS = Definitions(
    assets=[*CRM_CONTRACTS, signing_envelopes],
    asset_checks=[
        backsync_backlog_check(signing_envelopes),
        dead_letter_check(signing_envelopes, "dispatch"),
        dead_letter_check(signing_envelopes, "backsync"),
        package_check(signing_envelopes),
    ],
    jobs=[dispatch_job],
    schedules=dispatch_schedules(),
    sensors=[contract_webhook_sensor(dispatch_job.name)],
)

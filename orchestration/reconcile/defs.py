"""The reconciliation's Dagster definitions: the asset (+ drift check), its job and one schedule per
tenant at ``options.reconcile_cron`` (nightly by default)."""

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

from orchestration.partitions import scheduled_partition
from orchestration.reconcile.assets import ASSET, reconciliation
from schemas import list_tenants

reconcile_job = define_asset_job(
    "reconcile_job",
    selection=AssetSelection.assets(reconciliation),
    description="Signing and import reconciliation for one tenant: drift found, repaired, reported.",
    executor_def=in_process_executor,
)


def schedule_name(tenant_id: str) -> str:
    return f"reconcile_{tenant_id.replace('-', '_')}"


def reconcile_schedules(job_name: str) -> list[ScheduleDefinition]:
    schedules = []
    for tenant in list_tenants():

        def _evaluate(context: ScheduleEvaluationContext, tenant_id: str = tenant.id) -> RunRequest:
            return RunRequest(
                run_key=f"reconcile-{tenant_id}-{context.scheduled_execution_time:%Y%m%dT%H%M}",
                partition_key=scheduled_partition(context, tenant_id),
                run_config={"ops": {ASSET: {"config": {"dry_run": False}}}},
                tags={"ponte/tenant": tenant_id, "ponte/trigger": "schedule"},
            )

        schedules.append(
            schedule(
                name=schedule_name(tenant.id),
                cron_schedule=tenant.options.reconcile_cron,
                job_name=job_name,
                execution_timezone="America/Sao_Paulo",
                description=f"Signing and import reconciliation for tenant {tenant.id}",
            )(_evaluate)
        )
    return schedules


DEFS = Definitions(
    assets=[reconciliation],
    jobs=[reconcile_job],
    schedules=reconcile_schedules(reconcile_job.name),
)

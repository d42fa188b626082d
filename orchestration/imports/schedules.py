"""One schedule per tenant, at the tenant's own cron (options.import_cron, default every 15 minutes)."""

from __future__ import annotations

from typing import Any

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from orchestration.partitions import scheduled_partition
from orchestration.steps import run_tags
from schemas import list_tenants


def import_schedules(job: Any) -> list[ScheduleDefinition]:
    """``job`` is the import's asset job (Dagster's unresolved asset-job type is not public)."""
    schedules = []
    for tenant in list_tenants():

        def _evaluate(context: ScheduleEvaluationContext, tenant_id: str = tenant.id) -> RunRequest:
            return RunRequest(
                run_key=f"import-{tenant_id}-{context.scheduled_execution_time:%Y%m%dT%H%M}",
                partition_key=scheduled_partition(context, tenant_id),
                tags=run_tags(tenant_id, "schedule", mode="incremental"),
            )

        schedules.append(
            schedule(
                name=f"import_{tenant.id.replace('-', '_')}",
                cron_schedule=tenant.options.import_cron,
                job=job,
                execution_timezone="America/Sao_Paulo",
                description=f"Incremental Sienge → CV CRM import for tenant {tenant.id}",
            )(_evaluate)
        )
    return schedules

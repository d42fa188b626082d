"""One reconciliation schedule per tenant, at the tenant's ``options.assistance.reconcile_cron`` (nightly)."""

from __future__ import annotations

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from orchestration.partitions import scheduled_partition
from schemas import list_tenants


def reconcile_schedules(job_name: str) -> list[ScheduleDefinition]:
    schedules = []
    for tenant in list_tenants():

        def _evaluate(context: ScheduleEvaluationContext, tenant_id: str = tenant.id) -> RunRequest:
            return RunRequest(
                run_key=f"assistance-reconcile-{tenant_id}-{context.scheduled_execution_time:%Y%m%dT%H%M}",
                partition_key=scheduled_partition(context, tenant_id),
                run_config={"ops": {"assistance_sync": {"config": {"mode": "reconcile"}}}},
                tags={"ponte/tenant": tenant_id, "ponte/trigger": "schedule"},
            )

        schedules.append(
            schedule(
                name=f"assistance_reconcile_{tenant.id.replace('-', '_')}",
                cron_schedule=tenant.options.assistance.reconcile_cron,
                job_name=job_name,
                execution_timezone="America/Sao_Paulo",
                description=f"CV CRM ↔ Sienge assistance reconciliation for tenant {tenant.id}",
            )(_evaluate)
        )
    return schedules

"""The assistance flow's Dagster definitions: asset (+ drift check), job, nightly schedules, sensor."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from orchestration.assistance.assets import CRM_REQUESTS, TO_SIENGE, assistance_sync
from orchestration.assistance.schedules import reconcile_schedules
from orchestration.assistance.sensors import assistance_webhook_sensor
from orchestration.checks import dead_letter_check
from orchestration.partitions import tenant_partitions
from orchestration.translator import key

assistance_job = define_asset_job(
    "assistance_sync_job",
    selection=AssetSelection.assets(assistance_sync),
    partitions_def=tenant_partitions,
    description="CV CRM ↔ Sienge technical assistance for one tenant (webhooks, poll or reconciliation).",
    executor_def=in_process_executor,
)

DEFS = Definitions(
    assets=[*CRM_REQUESTS, assistance_sync],
    asset_checks=[dead_letter_check(key(TO_SIENGE), "assistance")],
    jobs=[assistance_job],
    schedules=reconcile_schedules(assistance_job.name),
    sensors=[assistance_webhook_sensor(assistance_job.name)],
)

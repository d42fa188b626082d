"""The import flow's Dagster definitions: asset, check, job and per-tenant schedules."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from orchestration.imports.assets import crm_customers_and_sales, id_map_consistent
from orchestration.imports.schedules import import_schedules
from orchestration.imports.sensors import sienge_webhook_sensor
from orchestration.partitions import tenant_partitions

import_job = define_asset_job(
    "customer_sale_import",
    selection=AssetSelection.assets(crm_customers_and_sales),
    partitions_def=tenant_partitions,
    description="Sienge developments, units, customers and sales into CV CRM, for one tenant.",
    executor_def=in_process_executor,
)

DEFS = Definitions(
    assets=[crm_customers_and_sales],
    asset_checks=[id_map_consistent],
    jobs=[import_job],
    schedules=import_schedules(import_job.name),
    sensors=[sienge_webhook_sensor(import_job.name)],
)

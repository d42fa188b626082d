"""The import flow's Dagster definitions: Sienge sources, one CRM asset per entity, checks, job and
per-tenant schedules."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from orchestration.checks import dead_letter_check
from orchestration.executors import executor_from_environment
from orchestration.imports.assets import SIENGE_SOURCES, crm_customers_and_sales, id_map_consistent, key_of
from orchestration.imports.schedules import import_schedules
from orchestration.imports.sensors import sienge_webhook_sensor

#: on the people asset: most import dead letters are customers (the table names each record's entity)
import_dead_letters = dead_letter_check(key_of("customer"), "import")

import_job = define_asset_job(
    "customer_sale_import",
    selection=AssetSelection.assets(crm_customers_and_sales),
    description="Sienge developments, units, customers and sales into CV CRM, for one tenant.",
    # in-process by default (fast sensors on one machine); PONTE_EXECUTOR=celery for workers
    executor_def=executor_from_environment(),
)

DEFS = Definitions(
    assets=[*SIENGE_SOURCES, crm_customers_and_sales],
    asset_checks=[id_map_consistent, import_dead_letters],
    jobs=[import_job],
    schedules=import_schedules(import_job),
    sensors=[sienge_webhook_sensor(import_job.name)],
)

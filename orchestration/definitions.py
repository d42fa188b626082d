"""Ponte's Dagster definitions: `dagster dev` and `dagster definitions validate` load this module.

Thin by design: each flow has a small folder in ``orchestration/`` (imports, dispatch, backsync,
assistance) exposing ``DEFS``, a ``Definitions`` with its assets, jobs, schedules and sensors; this module
merges them with the shared resources.
"""

from __future__ import annotations

import importlib

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    Definitions,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from orchestration.partitions import partition_requests
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from ponte import configure_logging, redact

configure_logging()

FLOWS = [
    "orchestration.imports.defs",
    "orchestration.dispatch.defs",
    "orchestration.backsync.defs",
    "orchestration.assistance.defs",
    "orchestration.reconcile.defs",
]


def _flow_defs() -> list[Definitions]:
    found = []
    for module_name in FLOWS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that flow is not built yet
            raise
        found.append(module.DEFS)
    return found


@sensor(
    name="tenant_files",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Keeps the tenant partitions in step with the tenant files (adds the key of a new file that "
    "loads, deletes the key of a removed file) and reports tenant files that do not load (file:line and the "
    "fix); every other tenant's schedules, sensors and assets keep running.",
)
def tenant_files(context: SensorEvaluationContext) -> SensorResult:
    requests, good, broken = partition_requests(context.instance)
    changes = []
    for request in requests:
        verb = "added" if isinstance(request, AddDynamicPartitionsRequest) else "deleted"
        context.log.info("tenant partition(s) %s: %s", verb, ", ".join(request.partition_keys))
        changes.append(f"{verb} tenant partition(s) {', '.join(request.partition_keys)}")
    for item in broken:
        context.log.error("tenant file %s does not load: %s", item.path.name, redact(item.message))
    if broken:
        listed = "; ".join(f"{item.path.name}: {redact(item.message)}" for item in broken)
        status = f"{len(broken)} broken tenant file(s), skipped until fixed ({len(good)} load): {listed}"
    else:
        status = f"all {len(good)} tenant file(s) load"
    return SensorResult(dynamic_partitions_requests=requests, skip_reason="; ".join([*changes, status]))


defs = Definitions.merge(
    *_flow_defs(),
    Definitions(sensors=[tenant_files]),
    Definitions(
        resources={
            "store": StoreResource(),
            "tenants": TenantsResource(),
            "connectors": ConnectorsResource(),
        }
    ),
)

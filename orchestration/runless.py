"""Work done outside a Dagster run, recorded as runless asset materializations.

A flow that runs as a Dagster run records its materializations itself. When the same work happens with
no run behind it, the tenant's partition of the asset that moved gets a materialization reported with
``DagsterInstance.report_runless_asset_event``, so the asset graph still shows when each tenant's data
last moved, and who moved it (metadata ``ponte/source``):

* ``cli-local``: ``ponte sync import|dispatch|backsync|assistance --local`` while a Dagster instance is
  configured (``DAGSTER_HOME`` set). Without ``--local`` those commands are Dagster runs.

The webhook gateway reports nothing: it stores each delivery and answers, and the sensors start the runs
that apply them.

Only what moved is recorded (an envelope sent, a record created or updated; never a plan), with small
metadata: the counts. Recording never fails the work it records: a missing or broken instance, or a
refused event, is logged as a warning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ponte import get_logger

log = get_logger("dagster")

#: the metadata key naming who did the work
SOURCE = "ponte/source"
CLI_LOCAL = "cli-local"


def configured() -> bool:
    """Whether a Dagster instance is configured for this process (``DAGSTER_HOME`` set)."""
    return bool(os.environ.get("DAGSTER_HOME"))


def report_runless(instance: Any, event: Any) -> bool:
    """Record ``event`` (an ``AssetMaterialization``) outside any run; True when recorded. The tenant's
    partition key is added first if the instance lacks it. A problem is logged, never raised."""
    try:
        if event.partition:
            from orchestration.partitions import ensure_tenant_partitions

            ensure_tenant_partitions(instance, [event.partition])
        instance.report_runless_asset_event(event)
        return True
    except Exception as exc:  # the instance is a bystander here
        log.warning("could not record %s in Dagster: %s", event.asset_key.to_user_string(), exc)
        return False


def report_moved(
    tenant: str,
    moved: Mapping[str, Mapping[str, Any]],
    *,
    source: str = CLI_LOCAL,
    instance: Any | None = None,
) -> int:
    """Record one runless materialization of ``tenant``'s partition per entry of ``moved`` (an entity id
    of :mod:`orchestration.translator` → its metadata), tagged with ``source``; how many were recorded.

    ``instance`` defaults to the one ``DAGSTER_HOME`` names; without one nothing is recorded.
    """
    if not moved or (instance is None and not configured()):
        return 0
    try:
        from dagster import AssetMaterialization, DagsterInstance

        from orchestration.translator import key

        events = [AssetMaterialization(asset_key=key(entity), partition=tenant,
                                       metadata={**metadata, SOURCE: source})
                  for entity, metadata in moved.items()]
        owned = instance is None
        target = DagsterInstance.get() if owned else instance
    except Exception as exc:  # a broken dagster.yaml or translator must not fail the sync
        log.warning("could not record %s's work in Dagster: %s", tenant, exc)
        return 0
    try:
        return sum(report_runless(target, event) for event in events)
    finally:
        if owned:
            target.dispose()

"""Runs are partitioned by tenant: one partition per tenant file, so a re-sync targets one tenant.

The partitions are dynamic (``tenants``): the ``tenant_files`` sensor adds the key of each tenant file that
loads and deletes the key of a file that is gone, so a new tenant needs a file, not a code change. A broken
file keeps its key (its history stays visible) and adds none until it loads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dagster import AddDynamicPartitionsRequest, DeleteDynamicPartitionsRequest, DynamicPartitionsDefinition

from schemas import list_tenants, scan_tenants

TENANTS = "tenants"

tenant_partitions = DynamicPartitionsDefinition(name=TENANTS)


def tenant_ids() -> list[str]:
    return [tenant.id for tenant in list_tenants()]


def known_tenant_keys(instance: Any) -> list[str]:
    """The tenant partition keys ``instance`` holds (added by the ``tenant_files`` sensor)."""
    return list(instance.get_dynamic_partitions(TENANTS))


def ensure_tenant_partitions(instance: Any, tenants: Iterable[str]) -> list[str]:
    """Add the partition keys of ``tenants`` that ``instance`` lacks (before an in-process run); the added."""
    missing = [t for t in dict.fromkeys(tenants) if not instance.has_dynamic_partition(TENANTS, t)]
    if missing:
        instance.add_dynamic_partitions(TENANTS, missing)
    return missing


def scheduled_partition(context: Any, tenant_id: str) -> str:
    """``tenant_id``'s partition key for a schedule's run request, added first when the instance lacks it.

    A new tenant file's schedules exist as soon as the code location reloads, possibly before the
    ``tenant_files`` sensor's next tick adds the key: without this the tick would fail with an unknown
    partition. A context built without an instance (a test's ``build_schedule_context()``) adds nothing.
    """
    from dagster import DagsterInvariantViolationError

    try:
        instance = context.instance
    except DagsterInvariantViolationError:
        return tenant_id
    ensure_tenant_partitions(instance, [tenant_id])
    return tenant_id


def partition_requests(
    instance: Any,
) -> tuple[list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest], list[Any], list[Any]]:
    """What keeps the ``tenants`` partitions in step with the tenant files: the requests (add the keys of
    files that load, delete the keys of files that are gone), and the good and broken files scanned."""
    good, broken = scan_tenants()
    current = set(known_tenant_keys(instance))
    on_disk = {t.id for t in good} | {b.id for b in broken}
    added = sorted({t.id for t in good} - current)
    deleted = sorted(current - on_disk)
    requests: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(tenant_partitions.build_add_request(added))
    if deleted:
        requests.append(tenant_partitions.build_delete_request(deleted))
    return requests, good, broken

"""Failures in plain sight: per-tenant asset checks on open dead letters and the back-sync backlog.

* ``<flow>_dead_letters`` (import, dispatch, assistance): passes with no open dead letter of the
  tenant's flow; WARN with any; ERROR past the tenant's ``options.dead_letter_error_threshold``
  (default 1,000). Its metadata: a table of at most :data:`ROWS` letters (record, reason, field and the
  command that replays it, masked), the open letters by reason, and the command replaying them all.
* ``backsync_backlog`` (on the envelopes asset, whose statuses back-sync keeps current): the age of the
  tenant's oldest unprocessed signing webhook; WARN past :data:`BACKLOG_WARN_MINUTES`.
* ``envelope_package`` (on the envelopes asset): the tenant's envelope package. WARN from the tenant's
  first ``warn_at_percent`` threshold (80 % by default); ERROR when it is used up (100 % or more),
  expired, not yet valid, or missing, since dispatch then sends nothing. Its metadata: the figures,
  the notices sent, and what to do.
"""

# No `from __future__ import annotations`: Dagster reads the check functions' annotations.

import shlex
from datetime import UTC, date, datetime
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
)
from sqlalchemy import func, select

from orchestration.partitions import tenant_partitions
from orchestration.resources import StoreResource, TenantsResource
from pipelines.store import InboxEvent, Store, deadletters
from ponte import redact
from schemas import TenantConfig

#: dead letters a check's table lists (the rest are counted by reason)
ROWS = 50
BACKLOG_WARN_MINUTES = 15
DEAD_LETTER_SCHEMA = TableSchema(
    columns=[
        TableColumn("record", "string"),
        TableColumn("reason", "string"),
        TableColumn("field", "string"),
        TableColumn("replay", "string", description="the command that replays this letter after the fix"),
    ]
)


def dead_letter_result(store: Store, tenant: str, flow: str, threshold: int) -> AssetCheckResult:
    """The dead-letter check of ``tenant``'s ``flow`` (see the module docstring)."""
    count = deadletters.count_open(store, tenant=tenant, flow=flow)
    quoted = f"--tenant {shlex.quote(tenant)} --flow {shlex.quote(flow)}"
    metadata: dict[str, Any] = {"open_dead_letters": count, "error_threshold": threshold}
    if count:
        rows = [
            TableRecord({
                "record": redact(letter.record_key),
                "reason": redact(letter.reason_code or letter.reason or letter.error_kind),
                "field": redact(letter.field or ""),
                "replay": f"ponte deadletter replay {letter.id}",
            })
            for letter in deadletters.page(store, tenant=tenant, flow=flow, limit=ROWS)
        ]
        metadata["dead_letters"] = MetadataValue.table(rows, schema=DEAD_LETTER_SCHEMA)
        metadata["by_reason"] = MetadataValue.json(
            {redact(group.reason): group.count for group in deadletters.by_reason(store, tenant=tenant, flow=flow)}
        )
        metadata["inspect"] = f"ponte deadletter list {quoted} --by-reason"
        metadata["replay_all"] = f"ponte deadletter replay --all {quoted}"
    return AssetCheckResult(
        passed=count == 0,
        severity=AssetCheckSeverity.ERROR if count >= threshold else AssetCheckSeverity.WARN,
        metadata=metadata,
        description=f"{count} open dead letter(s) (error at {threshold})",
    )


def dead_letter_check(asset: Any, flow: str) -> AssetChecksDefinition:
    """A per-tenant check on ``asset``: the tenant's open dead letters of ``flow``."""

    @asset_check(
        asset=asset,
        name=f"{flow}_dead_letters",
        partitions_def=tenant_partitions,
        description=f"No open {flow} dead letters for the tenant (WARN with any; ERROR past the tenant's "
        "options.dead_letter_error_threshold).",
    )
    def _check(context: AssetCheckExecutionContext, store: StoreResource, tenants: TenantsResource) -> AssetCheckResult:
        tenant = tenants.load(context.partition_key)
        return dead_letter_result(store.get(), tenant.id, flow, tenant.options.dead_letter_error_threshold)

    return _check


def backlog_result(store: Store, tenant: str, connectors: list[str], now: datetime | None = None) -> AssetCheckResult:
    """The age of ``tenant``'s oldest unprocessed inbox event of ``connectors``; WARN past 15 minutes."""
    with store.session() as session:
        oldest, waiting = session.execute(
            select(func.min(InboxEvent.received_at), func.count()).where(
                InboxEvent.tenant == tenant,
                InboxEvent.connector.in_(connectors),
                InboxEvent.status.in_(["new", "processing", "failed"]),
            )
        ).one()
    age = 0.0
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = max(0.0, ((now or datetime.now(UTC)) - oldest).total_seconds() / 60)
    return AssetCheckResult(
        passed=age <= BACKLOG_WARN_MINUTES,
        severity=AssetCheckSeverity.WARN,
        metadata={"unprocessed_events": int(waiting or 0), "oldest_age_minutes": round(age, 1),
                  "warn_after_minutes": BACKLOG_WARN_MINUTES},
        description=f"{int(waiting or 0)} unprocessed webhook(s), oldest {age:.0f} min old",
    )


def backsync_backlog_check(asset: Any) -> AssetChecksDefinition:
    from pipelines.backsync.flow import inbox_connectors
    from schemas import list_tenants

    @asset_check(
        asset=asset,
        name="backsync_backlog",
        partitions_def=tenant_partitions,
        description=f"Signing webhooks are applied: WARN when the tenant's oldest unprocessed one is older "
        f"than {BACKLOG_WARN_MINUTES} minutes.",
    )
    def _check(context: AssetCheckExecutionContext, store: StoreResource) -> AssetCheckResult:
        return backlog_result(store.get(), context.partition_key, inbox_connectors(list_tenants()))

    return _check


#: the WARN level when a package lists no threshold of its own
DEFAULT_WARN_PERCENT = 80


def package_result(store: Store, tenant: TenantConfig, on: date | None = None) -> AssetCheckResult:
    """The ``envelope_package`` check of ``tenant`` on day ``on`` (today; see the module docstring)."""
    from pipelines.dispatch.package import summary

    view = summary(store, tenant, on)
    todo = f"buy a new package; update options.envelope_package in tenants/{tenant.id}.yaml"
    inspect = f"ponte tenant package {shlex.quote(tenant.id)}"
    if view["package"] is None:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata={"package": "none", "what_to_do": todo, "inspect": inspect},
            description="no envelope package: dispatch sends nothing",
        )
    warn_at = (view["warn_at_percent"] or [DEFAULT_WARN_PERCENT])[0]
    percent = view["percent"]
    metadata: dict[str, Any] = {
        "package": view["package"],
        "size": str(view["size"]),
        "used": view["used"],
        "remaining": str(view["remaining"]),
        "percent": MetadataValue.float(float(percent)) if percent is not None else "unlimited",
        "valid_from": view["valid_from"],
        "valid_until": view["valid_until"],
        "days_left": view["days_left"],
        "warn_at_percent": warn_at,
        "notices_sent": MetadataValue.json(
            [{"percent": n["percent"], "at": n["at"]} for n in view["notices"] if n["status"] in ("sent", "unsure")]
        ),
        "inspect": inspect,
    }
    used = f"{view['used']} of {view['size']} envelopes used" + (f" ({percent:.1f} %)" if percent is not None else "")
    problem = {
        "expired": f"package {view['package']} expired on {view['valid_until']}: dispatch sends nothing",
        "not_yet_valid": f"package {view['package']} is valid only from {view['valid_from']}: dispatch sends nothing",
        "used_up": f"package {view['package']} is used up ({used}): dispatch sends nothing",
    }.get(view["status"])
    if problem:
        metadata["what_to_do"] = todo
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR, metadata=metadata,
                                description=problem)
    if percent is not None and percent >= warn_at:
        metadata["what_to_do"] = todo + " before it runs out"
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN, metadata=metadata,
                                description=f"package {view['package']}: {used}, past the {warn_at} % warning")
    return AssetCheckResult(passed=True, severity=AssetCheckSeverity.WARN, metadata=metadata,
                            description=f"package {view['package']}: {used}, valid until {view['valid_until']}")


def package_check(asset: Any) -> AssetChecksDefinition:
    """A per-tenant check on ``asset`` (the dispatch asset): the tenant's envelope package."""

    @asset_check(
        asset=asset,
        name="envelope_package",
        partitions_def=tenant_partitions,
        description=f"The tenant's envelope package can send: WARN from its first warn_at_percent threshold "
        f"({DEFAULT_WARN_PERCENT} % by default); ERROR when used up, expired, not yet valid or missing.",
    )
    def _check(context: AssetCheckExecutionContext, store: StoreResource, tenants: TenantsResource) -> AssetCheckResult:
        return package_result(store.get(), tenants.load(context.partition_key))

    return _check

"""The assistance sync as two tenant-partitioned assets, one per direction, whose drift check reports
what webhooks missed: ``cvcrm/assistance_requests`` (external) → ``sienge/technical_assistances`` →
``cvcrm/assistance_statuses`` (names from :mod:`orchestration.translator`). One step, still named
``assistance_sync``, does both directions (the flow runs them together); its config is checked at launch.
Each materialization carries the run's counts and the records behind them, masked: created in Sienge and
failed (with the drift a reconciliation found) on the Sienge side, linked and updated on the CRM side;
``ponte sync assistance`` prints its report from them.

No ``from __future__ import annotations`` here: Dagster reads the Config parameter's annotation at
definition time.
"""

from typing import Any, Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)
from pydantic import Field

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, check_config_at_launch, step_errors, tag_run
from orchestration.translator import key, sources, spec
from pipelines.assistance import DRIFT_KINDS, AssistanceReport, AssistanceRequest, Drift, run_assistance
from ponte import redact

DRIFT_CHECK = "assistance_drift"
STEP = "assistance_sync"
#: CRM → Sienge (new assistências) and Sienge → CRM (statuses); the drift check sits on the Sienge side
TO_SIENGE, TO_CRM = "sienge_technical_assistances", "crm_assistance_statuses"
#: assistance requests opened in CV CRM, as an external asset
CRM_REQUESTS = sources("assistance")


class AssistanceConfig(Config):
    """webhooks: process stored CV CRM / Sienge hooks (the sensor); reconcile: compare, repair, report."""

    mode: Literal["webhooks", "poll", "reconcile"] = Field(
        "webhooks", description="reconcile is what the nightly schedule runs"
    )
    plan: bool = Field(False, description="Dry run: report what would change, write nothing")

    @classmethod
    def mode_of(cls, *, reconcile: bool, poll: bool) -> str:
        """The mode of ``ponte sync assistance``'s flags: --reconcile, else a poll unless --no-poll (a
        reconciliation reads every request, so it polls anyway)."""
        return "reconcile" if reconcile else "poll" if poll else "webhooks"

    def request(self, run_id: str) -> AssistanceRequest:
        return AssistanceRequest(
            events=True,
            poll=self.mode == "poll",
            reconcile=self.mode == "reconcile",
            plan=self.plan,
            run_id=run_id,
        )


def _table(columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> MetadataValue:
    schema = TableSchema(columns=[TableColumn(name, description=text) for name, text in columns])
    return MetadataValue.table(
        records=[TableRecord(dict(zip([name for name, _ in columns], row, strict=True))) for row in rows],
        schema=schema)


def _rows(table: Any) -> list[dict[str, Any]]:
    return [dict(record.data) for record in getattr(table, "records", None) or []]


def report_metadata(report: AssistanceReport, entity: str) -> dict[str, Any]:
    """The materialization metadata of ``entity`` (one direction): the run's counts, then the records
    that direction moved, masked where a reason could name a person."""
    metadata: dict[str, Any] = dict(report.as_metadata())
    if entity == TO_SIENGE:
        metadata["created_in_sienge"] = _table(
            [("crm_id", "CV CRM assistência"), ("sienge_id", "Sienge technical assistance (none in a plan)")],
            [(crm, sienge) for crm, sienge in report.created])
        metadata["failed_records"] = _table(
            [("record", "the record (dead letter key)"), ("reason", "why (masked)")],
            [(record, redact(reason)) for record, reason in report.failed])
        if report.drift is not None:
            drift = report.drift
            metadata["drift"] = MetadataValue.json({
                "total": drift.total, "counts": drift.counts(), "ids": drift.ids(), "details": drift.details,
                "blocked": {k: redact(v) for k, v in drift.blocked.items()},
                "unrepaired": {k: redact(v) for k, v in drift.unrepaired.items()},
            })
    else:
        metadata["linked_in_crm"] = MetadataValue.json(list(report.linked))
        metadata["updated_in_crm"] = _table(
            [("crm_id", "CV CRM assistência"), ("from", "status before"), ("to", "status after")],
            list(report.updated))
    return metadata


def report_from_metadata(tenant: str, by_entity: dict[str, dict[str, Any]]) -> AssistanceReport:
    """The :class:`AssistanceReport` a run's two materializations carry (``entity`` → metadata values,
    unwrapped), as :func:`report_metadata` wrote them."""
    sienge, crm = by_entity.get(TO_SIENGE, {}), by_entity.get(TO_CRM, {})
    counts = sienge or crm
    drift = sienge.get("drift")
    return AssistanceReport(
        tenant=tenant,
        plan=bool(counts.get("plan")),
        created=[(str(r["crm_id"]), r["sienge_id"]) for r in _rows(sienge.get("created_in_sienge"))],
        linked=[str(crm_id) for crm_id in crm.get("linked_in_crm") or []],
        updated=[(str(r["crm_id"]), str(r["from"]), str(r["to"])) for r in _rows(crm.get("updated_in_crm"))],
        unchanged=int(counts.get("unchanged") or 0),
        failed=[(str(r["record"]), str(r["reason"])) for r in _rows(sienge.get("failed_records"))],
        events=int(counts.get("events") or 0),
        ignored=int(counts.get("ignored_events") or 0),
        drift=None if drift is None else Drift(
            **{kind: list(drift["ids"].get(kind, [])) for kind in DRIFT_KINDS},
            details=dict(drift.get("details") or {}), blocked=dict(drift.get("blocked") or {}),
            unrepaired=dict(drift.get("unrepaired") or {})),
        api_calls={name.removeprefix("api_calls_"): int(calls) for name, calls in counts.items()
                   if name.startswith("api_calls_")},
    )


def drift_check_result(report: AssistanceReport) -> AssetCheckResult:
    """Drift as an asset-check result: counts and ids as metadata; any drift is a warning.

    The run already repaired what it could; the check says how far the two sides had drifted (what
    webhooks missed), and which requests could not be repaired or sent.
    """
    drift = report.drift
    if drift is None:
        return AssetCheckResult(
            check_name=DRIFT_CHECK,
            asset_key=key(TO_SIENGE),
            passed=True,
            metadata={"reconciled": False, "note": "not a reconciliation run: no comparison made"},
        )
    metadata: dict[str, object] = {"reconciled": True, "drift_total": drift.total, "plan": report.plan}
    for kind, count in drift.counts().items():
        metadata[f"{kind}_count"] = count
    metadata["drift_ids"] = MetadataValue.json(drift.ids())
    metadata["status_details"] = MetadataValue.json(drift.details)
    metadata["blocked"] = MetadataValue.json(drift.blocked)
    metadata["unrepaired"] = MetadataValue.json(drift.unrepaired)
    return AssetCheckResult(
        check_name=DRIFT_CHECK,
        asset_key=key(TO_SIENGE),
        passed=drift.total == 0 and not drift.unrepaired,
        severity=AssetCheckSeverity.WARN,
        metadata=metadata,
    )


@multi_asset(
    name=STEP,
    specs=[spec(TO_SIENGE, partitions_def=tenant_partitions), spec(TO_CRM, partitions_def=tenant_partitions)],
    retry_policy=STEP_RETRY,
    description="Technical-assistance requests agreed between CV CRM and Sienge (per tenant).",
    check_specs=[
        AssetCheckSpec(
            DRIFT_CHECK,
            asset=key(TO_SIENGE),
            description="CRM and Sienge agree on every assistance (drift found by reconciliation).",
        )
    ],
)
def assistance_sync(
    context: AssetExecutionContext,
    config: AssistanceConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
):
    with step_errors(context):
        tenant = tenants.load(context.partition_key)
        tag_run(context, {"ponte/tenant": tenant.id, "ponte/mode": config.mode})
        state = store.get()
        with connectors.sienge_and_crm(tenant, state) as (sienge, cvcrm):
            report = run_assistance(state, tenant, sienge, cvcrm, config.request(context.run.run_id))
    context.log.info(
        f"assistance {tenant.id} ({config.mode}): created {len(report.created)}, updated "
        f"{len(report.updated)}, failed {len(report.failed)}"
        + (f", drift {report.drift.total}" if report.drift is not None else "")
    )
    # one report for both directions: each asset carries it (the flow does not split its counts)
    yield MaterializeResult(asset_key=key(TO_SIENGE), metadata=report_metadata(report, TO_SIENGE),
                            check_results=[drift_check_result(report)])
    yield MaterializeResult(asset_key=key(TO_CRM), metadata=report_metadata(report, TO_CRM))


check_config_at_launch(assistance_sync, AssistanceConfig)

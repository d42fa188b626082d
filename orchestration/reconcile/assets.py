"""The reconciliation as a tenant-partitioned asset: the drift table as metadata, counts per kind, and an
asset check that warns while drift is left unrepaired.

No ``from __future__ import annotations`` here: Dagster reads the Config parameter's annotation at
definition time.
"""

from typing import Any

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
    asset,
)
from pydantic import Field

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, step_errors
from pipelines.reconcile.report import DriftReport
from pipelines.reconcile.runner import ReconcileRequest, kinds_of, run_reconcile
from ponte import redact

ASSET = "reconciliation"
DRIFT_CHECK = "reconciliation_drift"
#: rows shown in the table metadata (the counts cover them all)
TABLE_ROWS = 200

DRIFT_SCHEMA = TableSchema(columns=[
    TableColumn("kind", "string"),
    TableColumn("record", "string"),
    TableColumn("detail", "string"),
    TableColumn("repaired", "bool"),
    TableColumn("action", "string", description="what was done, or the command a person runs"),
])


class ReconcileConfig(Config):
    """What the nightly schedule runs by default: every kind, repairing what is safe."""

    kinds: list[str] = Field(
        default_factory=list,
        description="envelope_status, signed_pdf_missing, ready_not_sent, import_content; empty: all",
    )
    dry_run: bool = Field(False, description="Report the drift; repair nothing, send nothing")
    send_missed: bool | None = Field(
        None, description="Send ready contracts nobody sent, through dispatch; unset: report them only"
    )

    def request(self, run_id: str) -> ReconcileRequest:
        return ReconcileRequest(kinds=kinds_of(self.kinds), dry_run=self.dry_run,
                                send_missed=self.send_missed, run_id=run_id)


def drift_table(report: DriftReport) -> MetadataValue:
    return MetadataValue.table(
        records=[
            TableRecord({"kind": row.kind, "record": row.record, "detail": redact(row.detail),
                         "repaired": row.repaired, "action": redact(row.action)})
            for row in report.rows[:TABLE_ROWS]
        ],
        schema=DRIFT_SCHEMA,
    )


def report_metadata(report: DriftReport) -> dict[str, Any]:
    metadata: dict[str, Any] = dict(report.as_metadata())
    metadata["drift"] = drift_table(report)
    if report.errors:
        metadata["errors"] = MetadataValue.json({k: redact(v) for k, v in report.errors.items()})
    return metadata


def drift_check_result(report: DriftReport) -> AssetCheckResult:
    """Passed when no drift is left unrepaired and every check ran; otherwise a warning with the rows
    still open (repaired drift is in the asset's metadata: it was found, and fixed)."""
    open_rows = report.unrepaired
    metadata: dict[str, Any] = {
        "unrepaired": len(open_rows),
        "drift_total": report.total,
        "dry_run": report.dry_run,
        "unrepaired_by_kind": MetadataValue.json(
            {kind: sum(1 for row in open_rows if row.kind == kind) for kind in report.kinds}),
        "unrepaired_records": MetadataValue.json([row.record for row in open_rows[:TABLE_ROWS]]),
    }
    if report.errors:
        metadata["errors"] = MetadataValue.json({k: redact(v) for k, v in report.errors.items()})
    return AssetCheckResult(check_name=DRIFT_CHECK, passed=report.clean, severity=AssetCheckSeverity.WARN,
                            metadata=metadata)


@asset(
    name=ASSET,
    group_name="reconciliation",
    partitions_def=tenant_partitions,
    retry_policy=STEP_RETRY,
    description="Ponte's envelopes and imported records agreed with the signing providers and CV CRM "
    "(per tenant): drift found, what was repaired, what is left.",
    kinds={"python"},
    check_specs=[
        AssetCheckSpec(DRIFT_CHECK, asset=ASSET,
                       description="No drift left unrepaired between Ponte, the providers and the CRM."),
    ],
)
def reconciliation(
    context: AssetExecutionContext,
    config: ReconcileConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
) -> MaterializeResult:
    with step_errors(context):
        tenant = tenants.load(context.partition_key)
        state = store.get()

        def opener(key: str):
            return connectors.open(tenant, key, state)

        report = run_reconcile(state, tenant, opener, config.request(context.run.run_id))
    context.log.info(
        f"reconcile {tenant.id}{' (dry run)' if report.dry_run else ''}: "
        + ", ".join(f"{kind} {count}" for kind, count in report.counts().items())
        + f"; {len(report.unrepaired)} unrepaired"
    )
    return MaterializeResult(metadata=report_metadata(report), check_results=[drift_check_result(report)])

"""The import as a tenant-partitioned asset, with counts as metadata and an id-map consistency check."""


from datetime import date
from typing import Any, Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field
from sqlalchemy import func, select

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, step_errors
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.imports.report import ImportReport
from pipelines.imports.webhooks import process_sienge_events
from pipelines.store.models import IdMap
from ponte.errors import ConfigurationError


class ImportConfig(Config):
    """Manual re-sync: everything, since a date, or given Sienge ids. Default: incremental."""

    mode: Literal["incremental", "full", "since", "ids", "webhooks"] = Field(
        "incremental", description="webhooks: import what stored Sienge hooks named (the sensor's mode)"
    )
    since: str | None = Field(None, description="yyyy-mm-dd, with mode=since")
    customer_ids: list[str] = Field(default_factory=list, description="Sienge customer ids, with mode=ids")
    sale_ids: list[str] = Field(default_factory=list, description="Sienge sales-contract ids, with mode=ids")
    unit_ids: list[str] = Field(default_factory=list, description="Sienge unit ids, with mode=ids")
    plan: bool = Field(False, description="Dry run: report what would change, write nothing")

    def since_date(self) -> date | None:
        """The ``since`` date of mode=since (a ConfigurationError when it is missing or not yyyy-mm-dd)."""
        if self.mode != "since":
            return None
        hint = "set since to a date written yyyy-mm-dd, e.g. 2026-11-01"
        if not self.since:
            raise ConfigurationError("mode=since needs a since date", field="since", hint=hint)
        try:
            return date.fromisoformat(self.since)
        except ValueError:
            raise ConfigurationError(f"since {self.since!r} is not a date", field="since", hint=hint) from None

    def request(self, run_id: str) -> ImportRequest:
        ids: dict[str, list[str]] = {}
        if self.mode == "ids":
            for entity, values in (
                ("customer", self.customer_ids),
                ("sale", self.sale_ids),
                ("unit", self.unit_ids),
            ):
                if values:
                    ids[entity] = [str(v) for v in values]
        return ImportRequest(
            full=self.mode == "full",
            since=self.since_date(),
            ids=ids,
            plan=self.plan,
            run_id=run_id,
        )


@asset(
    name="crm_customers_and_sales",
    group_name="customer_sale_import",
    partitions_def=tenant_partitions,
    retry_policy=STEP_RETRY,
    description="Sienge enterprises, units, customers and sales imported into CV CRM (per tenant).",
    kinds={"python"},
)
def crm_customers_and_sales(
    context: AssetExecutionContext,
    config: ImportConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
) -> MaterializeResult:
    with step_errors(context):
        tenant = tenants.load(context.partition_key)
        request = config.request(context.run.run_id) if config.mode != "webhooks" else None
        state = store.get()
        with connectors.sienge_and_crm(tenant, state) as (sienge, cvcrm):
            if request is None:
                outcome = process_sienge_events(state, tenant, sienge, cvcrm, run_id=context.run.run_id)
                report = outcome.report or ImportReport(tenant=tenant.id, plan=False)
                report.api_calls = {"sienge": sienge.api_calls, "cvcrm": cvcrm.api_calls}
            else:
                report = run_import(state, tenant, sienge, cvcrm, request)
    context.log.info(
        f"import {tenant.id}: read {report.total('read')}, created {report.total('created')}, "
        f"updated {report.total('updated')}, unchanged {report.total('unchanged')}, "
        f"dead-lettered {report.total('dead_lettered')}"
    )
    metadata: dict[str, Any] = report.as_metadata()
    if report.dead_letters_by_reason:  # in the run's own log too (the flow's logger may not reach it)
        shown, others, letters = report.shown_reasons()
        more = f"; {letters} more in {others} other reason(s)" if others else ""
        context.log.warning(
            f"import {tenant.id} dead-lettered {report.total('dead_lettered')} record(s) by reason: "
            + "; ".join(f"{count} × {reason}" for reason, count in shown)
            + f"{more}. Inspect: {report.list_command()}; replay after the fix: {report.replay_command()}"
        )
    if report.dead_letters_by_reason:
        # counts by reason, with the commands to inspect and replay them
        metadata["dead_letters_by_reason"] = MetadataValue.md(report.reasons_markdown())
    return MaterializeResult(metadata=metadata)


@asset_check(asset=crm_customers_and_sales, description="Every imported customer and sale has one CRM id.")
def id_map_consistent(store: StoreResource) -> AssetCheckResult:
    state = store.get()
    with state.session() as session:
        missing = session.scalar(
            select(func.count())
            .select_from(IdMap)
            .where(IdMap.entity.in_(["person", "sale"]), IdMap.target_id.is_(None))
        )
        duplicated = session.execute(
            select(IdMap.tenant, IdMap.entity, IdMap.target_id, func.count())
            .where(IdMap.entity.in_(["person", "sale"]), IdMap.target_id.is_not(None))
            .group_by(IdMap.tenant, IdMap.entity, IdMap.target_id)
            .having(func.count() > 1)
        ).all()
    return AssetCheckResult(
        passed=not missing and not duplicated,
        severity=AssetCheckSeverity.ERROR,
        metadata={"without_crm_id": missing or 0, "crm_ids_shared": len(duplicated)},
    )

"""The import as one asset per CRM entity, each tenant-partitioned, with lineage from its Sienge source.

``sienge/<entity>`` (external: Sienge's own data) → ``cvcrm/enterprises``, ``cvcrm/units``,
``cvcrm/people``, ``cvcrm/reservations`` (names from :mod:`orchestration.translator`). The four CRM
assets are one step, ``crm_customers_and_sales`` (run config keeps that name), that can be subset:
materializing ``cvcrm/people`` for tenant ``acme`` from the UI imports only acme's customers
(``ImportRequest.entities``). Each materialization carries its entity's counts; the run's API calls
and dead letters by reason ride along.

The run config (:class:`ImportConfig`) is checked at launch (:func:`orchestration.steps.launch_checked`):
a bad date, ``mode: since`` without ``since`` or a non-numeric id is refused before the run starts.

No ``from __future__ import annotations``: Dagster reads the check functions' annotations.
"""


from datetime import date
from typing import Any, Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset_check,
    multi_asset,
)
from pydantic import Field, field_validator, model_validator
from sqlalchemy import func, select

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, check_config_at_launch, step_errors, tag_run
from orchestration.translator import Entity, sources, targets, translator
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.imports.report import COUNTERS, ImportReport
from pipelines.imports.webhooks import process_sienge_events
from pipelines.store import IdMap
from ponte import ConfigurationError

STEP = "crm_customers_and_sales"
SINCE_HINT = "write it as yyyy-mm-dd, e.g. 2026-11-01"
ID_FIELDS = {"customer_ids": "customer", "sale_ids": "sale", "unit_ids": "unit"}


class ImportConfig(Config):
    """Manual re-sync: everything, since a date, or given Sienge ids. Default: incremental."""

    mode: Literal["incremental", "full", "since", "ids", "webhooks"] = Field(
        "incremental", description="webhooks: import what stored Sienge hooks named (the sensor's mode)"
    )
    since: str | None = Field(None, description="yyyy-mm-dd, with mode=since (required then)")
    customer_ids: list[str] = Field(default_factory=list, description="Sienge customer ids, with mode=ids")
    sale_ids: list[str] = Field(default_factory=list, description="Sienge sales-contract ids, with mode=ids")
    unit_ids: list[str] = Field(default_factory=list, description="Sienge unit ids, with mode=ids")
    plan: bool = Field(False, description="Dry run: report what would change, write nothing")

    @field_validator("since")
    @classmethod
    def _since_is_a_date(cls, value: str | None) -> str | None:
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date; {SINCE_HINT}") from None
        return value or None

    @field_validator("customer_ids", "sale_ids", "unit_ids")
    @classmethod
    def _ids_are_sienge_ids(cls, values: list[str]) -> list[str]:
        bad = [str(v) for v in values if not str(v).strip().isdigit()]
        if bad:
            raise ValueError(f"{', '.join(repr(b) for b in bad)}: a Sienge id is a number, e.g. 42")
        return [str(v).strip() for v in values]

    @model_validator(mode="after")
    def _mode_has_what_it_needs(self) -> "ImportConfig":
        named = any(getattr(self, name) for name in ID_FIELDS)
        if self.mode == "since" and not self.since:
            raise ValueError(f"mode=since needs since: {SINCE_HINT}")
        if self.since and self.mode != "since":
            raise ValueError(f"since is read only with mode=since (mode is {self.mode})")
        if self.mode == "ids" and not named:
            raise ValueError("mode=ids needs customer_ids, sale_ids or unit_ids")
        if named and self.mode != "ids":
            raise ValueError(f"ids are read only with mode=ids (mode is {self.mode})")
        return self

    def since_date(self) -> date | None:
        """The ``since`` date of mode=since (a ConfigurationError when it is missing or not yyyy-mm-dd)."""
        if self.mode != "since":
            return None
        hint = f"set since to a date; {SINCE_HINT}"
        if not self.since:
            raise ConfigurationError("mode=since needs a since date", field="since", hint=hint)
        try:
            return date.fromisoformat(self.since)
        except ValueError:
            raise ConfigurationError(f"since {self.since!r} is not a date", field="since", hint=hint) from None

    def ids(self) -> dict[str, list[str]]:
        if self.mode != "ids":
            return {}
        return {entity: [str(v) for v in getattr(self, name)] for name, entity in ID_FIELDS.items()
                if getattr(self, name)}

    def request(self, run_id: str, entities: tuple[str, ...] | None = None) -> ImportRequest:
        extra = {"entities": entities} if entities is not None else {}
        return ImportRequest(
            full=self.mode == "full",
            since=self.since_date(),
            ids=self.ids(),
            plan=self.plan,
            run_id=run_id,
            **extra,
        )

    def run_tags(self, tenant: str) -> dict[str, str]:
        ids = sum(len(v) for v in self.ids().values())
        return {"ponte/tenant": tenant, "ponte/mode": self.mode, "ponte/since": self.since or "",
                "ponte/ids": str(ids) if ids else ""}


#: the CRM entities this step writes, in the flow's order
IMPORT_ENTITIES: list[Entity] = list(targets("import"))
#: Sienge's entities, as external assets (read, never materialized by Ponte)
SIENGE_SOURCES = sources("import")


def entity_key(entity: Entity) -> AssetKey:
    return translator().get_asset_key(entity)


def key_of(flow_entity: str) -> AssetKey:
    """The asset key of the import entity ``flow_entity`` (enterprise, unit, customer, sale)."""
    return entity_key(next(e for e in IMPORT_ENTITIES if e.flow_entity == flow_entity))


def entity_metadata(report: ImportReport, entity: str) -> dict[str, Any]:
    """One entity's counts, with the run's API calls and (if the entity lost records) its dead letters
    by reason and the commands to inspect and replay them."""
    counts = report.entities[entity]
    metadata: dict[str, Any] = {counter: getattr(counts, counter) for counter in COUNTERS}
    for connector, calls in report.api_calls.items():
        metadata[f"api_calls.{connector}"] = calls
    metadata["plan"] = report.plan
    if report.plan and counts.samples:
        metadata["samples"] = MetadataValue.json(counts.samples)
    if counts.dead_lettered and report.dead_letters_by_reason:
        metadata["dead_letters_by_reason"] = MetadataValue.md(report.reasons_markdown())
    return metadata


def _touched(report: ImportReport, entity: str) -> bool:
    counts = report.entities[entity]
    return bool(counts.read or counts.failed)


@multi_asset(
    name=STEP,
    specs=[translator().get_asset_spec(e, partitions_def=tenant_partitions, skippable=True)
           for e in IMPORT_ENTITIES],
    can_subset=True,
    retry_policy=STEP_RETRY,
    description="Sienge enterprises, units, customers and sales imported into CV CRM, per entity and tenant.",
)
def crm_customers_and_sales(
    context: AssetExecutionContext,
    config: ImportConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
):
    selected = [e for e in IMPORT_ENTITIES if entity_key(e) in context.selected_asset_keys]
    entities = tuple(str(e.flow_entity) for e in selected)
    with step_errors(context):
        tenant = tenants.load(context.partition_key)
        tag_run(context, config.run_tags(tenant.id))
        request = config.request(context.run.run_id, entities) if config.mode != "webhooks" else None
        state = store.get()
        with connectors.sienge_and_crm(tenant, state) as (sienge, cvcrm):
            if request is None:
                outcome = process_sienge_events(state, tenant, sienge, cvcrm, run_id=context.run.run_id)
                report = outcome.report or ImportReport(tenant=tenant.id, plan=False)
                report.api_calls = {"sienge": sienge.api_calls, "cvcrm": cvcrm.api_calls}
            else:
                report = run_import(state, tenant, sienge, cvcrm, request)
    context.log.info(
        f"import {tenant.id} ({', '.join(entities)}): read {report.total('read')}, created "
        f"{report.total('created')}, updated {report.total('updated')}, unchanged {report.total('unchanged')}, "
        f"dead-lettered {report.total('dead_lettered')}"
    )
    if report.dead_letters_by_reason:  # in the run's own log too (the flow's logger may not reach it)
        shown, others, letters = report.shown_reasons()
        more = f"; {letters} more in {others} other reason(s)" if others else ""
        context.log.warning(
            f"import {tenant.id} dead-lettered {report.total('dead_lettered')} record(s) by reason: "
            + "; ".join(f"{count} × {reason}" for reason, count in shown)
            + f"{more}. Inspect: {report.list_command()}; replay after the fix: {report.replay_command()}"
        )
    for entity in selected:
        name = str(entity.flow_entity)
        # webhook runs name a few records: only the entities they touched moved
        if config.mode == "webhooks" and not _touched(report, name):
            continue
        yield MaterializeResult(asset_key=entity_key(entity), metadata=entity_metadata(report, name))


check_config_at_launch(crm_customers_and_sales, ImportConfig)


@asset_check(asset=key_of("customer"), description="Every imported customer and sale has one CRM id.")
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

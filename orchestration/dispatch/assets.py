"""Dispatch as a tenant-partitioned asset, ``esign/envelopes`` (made from the external ``cvcrm/contracts``;
names from :mod:`orchestration.translator`); its step keeps the name ``signing_envelopes``. Counts
(sent, found, dead-lettered...) as metadata, with the envelope package (used, remaining, percent,
valid_until) and the tenant's envelopes by status, and a ``contracts`` table: each contract's result,
envelope, signers and reason (masked), what ``ponte sync dispatch`` prints from a run. The run config is
checked at launch.

No ``from __future__ import annotations`` here: Dagster resolves the Config parameter's annotation.
"""

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from dagster import (
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)
from pydantic import Field, field_validator, model_validator

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, check_config_at_launch, step_errors, tag_run
from orchestration.translator import sources, spec
from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import RESULTS, ContractOutcome, DispatchReport, DispatchRequest, run_dispatch
from pipelines.dispatch.listing import status_counts
from pipelines.dispatch.package import summary
from pipelines.dispatch.webhooks import dispatch_claimed
from pipelines.store import Store
from ponte import redact
from schemas import TenantConfig


def package_metadata(store: Store, tenant: TenantConfig) -> dict[str, Any]:
    """The envelope package and the envelopes by status, as structured materialization metadata."""
    view = summary(store, tenant)
    package = {key: view.get(key) for key in ("package", "size", "used", "remaining", "percent", "valid_from",
                                              "valid_until", "days_left", "status")}
    package["notices_sent"] = [n["percent"] for n in view["notices"] if n["status"] in ("sent", "unsure")]
    return {
        "package": MetadataValue.json(package),
        "package_percent": MetadataValue.float(float(view["percent"])) if view.get("percent") is not None
        else MetadataValue.text("unlimited" if view["package"] else "no package"),
        "package_valid_until": MetadataValue.text(view.get("valid_until") or "-"),
        "envelopes_by_status": MetadataValue.json(status_counts(store, tenant.id)),
    }


STEP = "signing_envelopes"
ID = re.compile(r"[0-9A-Za-z_-]+")
CONTRACT_REF = re.compile(r"[0-9A-Za-z_-]+(:[0-9A-Za-z_-]+)?")


class DispatchConfig(Config):
    """Default: every ready contract (the schedule). Manual: given contracts, or a plan. Webhook: the
    ``dispatch_cvcrm_webhooks`` sensor names contracts (or reservations) and its inbox lease."""

    contracts: list[str] = Field(default_factory=list, description="CV CRM contract ids (or RESERVA:CONTRATO)")
    reservations: list[str] = Field(default_factory=list, description="CV CRM reservation ids: each one's ready contracts")
    all_ready: bool = Field(True, description="Also every validated, unsigned contract")
    ready_only: bool = Field(False, description="Skip named contracts the CRM does not show as validated and unsigned")
    template: str | None = Field(None, description="Render this template instead of the CRM's PDF")
    terms: Literal["none", "with_contract", "alone"] = "none"
    plan: bool = Field(False, description="Dry run: report the envelopes that would be sent")
    resend: bool = Field(
        False,
        description="Send the named contracts again when their envelope was refused, expired or voided (a new "
        "envelope keyed with a resend counter; nothing is voided); needs contracts and all_ready: false",
    )
    inbox_claim: str = Field(
        "",
        description="Set by the webhook sensor: the token leasing this run its CV CRM inbox events; the run "
        "dispatches what the events it still holds name, then marks them processed",
    )

    @field_validator("contracts")
    @classmethod
    def _contract_refs(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not CONTRACT_REF.fullmatch(str(v).strip())]
        if bad:
            raise ValueError(f"{', '.join(repr(b) for b in bad)}: a contract is its CV CRM id (801) or "
                             "RESERVA:CONTRATO (3001:801)")
        return [str(v).strip() for v in values]

    @field_validator("reservations")
    @classmethod
    def _reservation_ids(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not ID.fullmatch(str(v).strip())]
        if bad:
            raise ValueError(f"{', '.join(repr(b) for b in bad)}: a reservation is its CV CRM id, e.g. 3001")
        return [str(v).strip() for v in values]

    @model_validator(mode="after")
    def _resend_names_contracts(self) -> "DispatchConfig":
        if self.resend and (not self.contracts or self.all_ready or self.reservations or self.inbox_claim):
            raise ValueError("resend sends named contracts again: give contracts (801 or 3001:801) with "
                             "all_ready: false, and no reservations")
        return self

    def run_tags(self, tenant: str) -> dict[str, str]:
        named = len(self.contracts) + len(self.reservations)
        mode = "webhooks" if self.inbox_claim else ("ids" if named else "ready")
        return {"ponte/tenant": tenant, "ponte/mode": mode, "ponte/ids": str(named) if named else ""}


#: CV CRM contracts, as an external asset (Ponte reads them; people validate them in the CRM)
CRM_CONTRACTS = sources("dispatch")

#: the ``contracts`` table: one row per contract of the run (what the CLI prints, and reads back)
CONTRACT_COLUMNS = TableSchema(columns=[
    TableColumn("contract", "string", description="CV CRM contract id (idreservacontrato)"),
    TableColumn("result", "string", description="sent | found | already_sent | would_send | skipped | "
                "dead_lettered | deferred"),
    TableColumn("envelope", "string", description="the provider's envelope id"),
    TableColumn("signers", "string", description="order:role/channel, in signing order"),
    TableColumn("reason", "string", description="why it was not sent, or what happened (masked)"),
    TableColumn("reservation", "string", description="CV CRM reservation id"),
    TableColumn("envelope_id", "int", description="Ponte's envelope id (`ponte envelopes show`)"),
    TableColumn("positions", "int", description="signature positions placed on the document"),
    TableColumn("document_sha256", "string", description="the document sent"),
    TableColumn("replaced_envelope", "string", description="the earlier version's envelope, voided first"),
])
SIGNER = re.compile(r"(\d+):([^/,]+)/([^,]+)")


def signers_text(signers: Iterable[dict[str, Any]]) -> str:
    """``1:client/email, 2:spouse/whatsapp``: each signer's order, role and channel."""
    return ", ".join(f"{s['routing_order']}:{s['role']}/{s['channel']}" for s in signers)


#: rows the ``contracts`` table keeps: a first ``--all-ready`` over thousands of contracts would otherwise
#: put every row in Dagster's event log; the counts stay complete and ``ponte envelopes list`` /
#: ``ponte deadletter list`` list every contract
TABLE_ROWS = 500
#: results an operator must see by id: kept first when the table is capped
NEEDS_ATTENTION = ("dead_lettered", "deferred", "skipped")


def shown_outcomes(outcomes: Sequence[ContractOutcome], limit: int | None = None) -> list[ContractOutcome]:
    """At most ``limit`` (:data:`TABLE_ROWS`) outcomes, in run order, those needing attention first."""
    limit = TABLE_ROWS if limit is None else limit
    if len(outcomes) <= limit:
        return list(outcomes)
    attention = {id(o) for o in outcomes if o.result in NEEDS_ATTENTION}
    chosen = [o for o in outcomes if id(o) in attention][:limit]
    chosen += [o for o in outcomes if id(o) not in attention][:limit - len(chosen)]
    keep = {id(o) for o in chosen}
    return [o for o in outcomes if id(o) in keep]


def contracts_table(outcomes: Iterable[ContractOutcome]) -> MetadataValue:
    """The per-contract outcomes as a table, masked where personal data could appear (the reason)."""
    return MetadataValue.table(
        schema=CONTRACT_COLUMNS,
        records=[TableRecord({
            "contract": o.contract_id, "result": o.result, "envelope": o.provider_envelope_id,
            "signers": signers_text(o.signers), "reason": redact(o.reason) if o.reason else None,
            "reservation": o.reservation_id, "envelope_id": o.envelope_id, "positions": o.positions,
            "document_sha256": o.document_sha256, "replaced_envelope": o.replaced_envelope_id,
        }) for o in outcomes],
    )


def outcomes_from_table(table: Any) -> list[ContractOutcome]:
    """The outcomes :func:`contracts_table` recorded (a run's ``contracts`` metadata), in order."""
    outcomes = []
    for record in getattr(table, "records", None) or []:
        row = record.data
        signers = [{"role": role.strip(), "routing_order": int(order), "channel": channel.strip()}
                   for order, role, channel in SIGNER.findall(row.get("signers") or "")]
        outcomes.append(ContractOutcome(
            str(row["contract"]), str(row["result"]), row.get("envelope_id"), row.get("envelope"),
            row.get("reason"), signers, int(row.get("positions") or 0), row.get("document_sha256"),
            row.get("reservation"), row.get("replaced_envelope"),
        ))
    return outcomes


def report_metadata(report: DispatchReport) -> dict[str, Any]:
    """A dispatch's counts, API calls per connector and per-contract table (the materialization's)."""
    metadata: dict[str, Any] = dict(report.as_metadata())
    for connector, calls in report.api_calls.items():
        metadata[f"api_calls.{connector}"] = calls
    metadata.update(capped_table(report))
    return metadata


def capped_table(report: DispatchReport) -> dict[str, Any]:
    """The ``contracts`` table (at most :data:`TABLE_ROWS` rows) and, when capped, ``contracts_not_shown``."""
    shown = shown_outcomes(report.outcomes)
    table: dict[str, Any] = {"contracts": contracts_table(shown)}
    if len(shown) < len(report.outcomes):
        table["contracts_not_shown"] = len(report.outcomes) - len(shown)
    return table


def report_from_metadata(tenant: str, plan: bool, metadata: dict[str, Any]) -> DispatchReport:
    """The :class:`DispatchReport` a run's materialization carries (metadata values, unwrapped)."""
    package = metadata.get("package") or {}
    remaining = package.get("remaining")
    return DispatchReport(
        tenant=tenant,
        plan=plan,
        outcomes=outcomes_from_table(metadata.get("contracts")),
        package={"package": package.get("package"), "size": package.get("size") or "unlimited",
                 "used": package.get("used") or 0, "remaining": "unlimited" if remaining is None else remaining,
                 "valid_until": package.get("valid_until")},
        stopped=metadata.get("stopped"),
        api_calls={name.split(".", 1)[1]: int(calls) for name, calls in metadata.items()
                   if name.startswith("api_calls.")},
        totals={result: int(metadata.get(result) or 0) for result in RESULTS},
    )


@multi_asset(
    name=STEP,
    specs=[spec("envelopes", partitions_def=tenant_partitions)],
    retry_policy=STEP_RETRY,
    description="CV CRM contracts sent as envelopes to the tenant's signing provider, exactly once each.",
)
def signing_envelopes(
    context: AssetExecutionContext,
    config: DispatchConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
) -> MaterializeResult:
    with step_errors(context):
        tenant = tenants.load(context.partition_key)
        tag_run(context, config.run_tags(tenant.id))
        state = store.get()
        named = bool(config.contracts or config.reservations)
        request = DispatchRequest(contracts=list(config.contracts), reservations=list(config.reservations),
                                  all_ready=config.all_ready or not named, ready_only=config.ready_only,
                                  template=config.template, terms=config.terms, plan=config.plan,
                                  resend=config.resend, run_id=context.run.run_id)
        with TenantConnectors(tenant, state) as conns:
            if config.inbox_claim and not config.plan:
                claimed = dispatch_claimed(state, tenant, config.inbox_claim, request, conns)
                context.log.info(
                    f"dispatch {tenant.id} from CV CRM webhooks: {claimed.events} event(s) held, "
                    f"{claimed.done} processed, {claimed.retry} to retry"
                    + (" (handed to another run; nothing done)" if claimed.superseded else "")
                )
                table = capped_table(claimed.report) if claimed.report else {}
                return MaterializeResult(metadata={**claimed.as_metadata(), **table,
                                                   **package_metadata(state, tenant)})
            report = run_dispatch(state, tenant, request, conns)
    context.log.info(
        f"dispatch {tenant.id}: sent {report.count('sent')}, found {report.count('found')}, "
        f"already sent {report.count('already_sent')}, dead-lettered {report.count('dead_lettered')}, "
        f"deferred {report.count('deferred')}"
    )
    return MaterializeResult(metadata={**report_metadata(report), **package_metadata(state, tenant)})


check_config_at_launch(signing_envelopes, DispatchConfig)

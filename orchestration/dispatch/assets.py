"""Dispatch as a tenant-partitioned asset, ``esign/envelopes`` (made from the external ``cvcrm/contracts``;
names from :mod:`orchestration.translator`); its step keeps the name ``signing_envelopes``. Counts
(sent, found, dead-lettered...) as metadata, with the envelope package (used, remaining, percent,
valid_until) and the tenant's envelopes by status. The run config is checked at launch.

No ``from __future__ import annotations`` here: Dagster resolves the Config parameter's annotation.
"""

import re
from typing import Any, Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, multi_asset
from pydantic import Field, field_validator

from orchestration.partitions import tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, check_config_at_launch, step_errors, tag_run
from orchestration.translator import sources, spec
from pipelines.dispatch.connections import ConnectorSet
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.listing import status_counts
from pipelines.dispatch.package import summary
from pipelines.dispatch.webhooks import dispatch_claimed
from pipelines.store import Store
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

    def run_tags(self, tenant: str) -> dict[str, str]:
        named = len(self.contracts) + len(self.reservations)
        mode = "webhooks" if self.inbox_claim else ("ids" if named else "ready")
        return {"ponte/tenant": tenant, "ponte/mode": mode, "ponte/ids": str(named) if named else ""}


#: CV CRM contracts, as an external asset (Ponte reads them; people validate them in the CRM)
CRM_CONTRACTS = sources("dispatch")


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
                                  run_id=context.run.run_id)
        with ConnectorSet(tenant, state) as conns:
            if config.inbox_claim and not config.plan:
                claimed = dispatch_claimed(state, tenant, config.inbox_claim, request, conns)
                context.log.info(
                    f"dispatch {tenant.id} from CV CRM webhooks: {claimed.events} event(s) held, "
                    f"{claimed.done} processed, {claimed.retry} to retry"
                    + (" (handed to another run; nothing done)" if claimed.superseded else "")
                )
                return MaterializeResult(metadata={**claimed.as_metadata(), **package_metadata(state, tenant)})
            report = run_dispatch(state, tenant, request, conns)
    context.log.info(
        f"dispatch {tenant.id}: sent {report.count('sent')}, found {report.count('found')}, "
        f"already sent {report.count('already_sent')}, dead-lettered {report.count('dead_lettered')}, "
        f"deferred {report.count('deferred')}"
    )
    return MaterializeResult(metadata={**report.as_metadata(), **package_metadata(state, tenant)})


check_config_at_launch(signing_envelopes, DispatchConfig)

"""The back-sync flow in Dagster: a sensor draining provider webhooks, a polling schedule, manual sync.

One job, ``signature_backsync``, partitioned by tenant, runs :mod:`pipelines.backsync.flow` in one of
three modes (op config ``mode``): ``inbox`` (drain stored webhooks in batches; what the sensor asks
for), ``poll`` (re-read envelopes with no news; the schedule) and ``contract`` (an operator's "sync
signature" for ``contract``, from the Launchpad). The in-process executor keeps webhook-to-CRM latency
to seconds (ARCHITECTURE.md pitfalls: the multiprocess executor alone costs 6-15 s per run).

In the asset graph the flow is ``cvcrm/signed_documents`` (made from ``esign/envelopes``): an asset
this job reports rather than owns (its step is an op, so the sensor, schedule and launchpad keep one
job). Each run that moved something (applied an event, finished an envelope, re-read a status) records
a materialization of the tenant's partition; a back-sync done outside a run (``ponte sync backsync
--local`` with a Dagster instance) records a runless one (:func:`report_backsync`), so the graph shows
when each tenant's documents last moved. The run config is checked at launch (a bad mode, or
``mode: contract`` without a contract, never starts a run).
"""
# No `from __future__ import annotations` here: Dagster reads the Config annotations at run time.

import re
from datetime import timedelta
from typing import Literal

from dagster import (
    AssetMaterialization,
    Config,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    in_process_executor,
    job,
    op,
    schedule,
    sensor,
)
from pydantic import Field, field_validator, model_validator

from orchestration.inbox_sensing import inbox_run_requests
from orchestration.partitions import scheduled_partition, tenant_ids, tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.runless import CLI_LOCAL, report_moved
from orchestration.steps import (
    STEP_RETRY,
    check_config_at_launch,
    run_tags,
    step_errors,
    tag_requests,
    tag_run,
)
from orchestration.translator import key, spec
from pipelines.backsync.flow import BacksyncReport, drain_inbox, inbox_connectors, poll_stale, sync_contract
from pipelines.backsync.history import contract_history
from pipelines.store import InboxEvent
from ponte import ConfigurationError
from schemas import list_tenants

JOB = "signature_backsync"
CONTRACT = re.compile(r"[0-9A-Za-z_-]+")
#: the asset this job reports: envelope statuses and signed PDFs on the CRM
SIGNED_DOCUMENTS = spec("crm_signed_documents", partitions_def=tenant_partitions)


class BacksyncConfig(Config):
    mode: Literal["inbox", "poll", "contract"] = Field("inbox", description="inbox | poll | contract")
    contract: str = Field("", description="CV CRM contract id (idreservacontrato), for mode=contract")
    quiet_minutes: int = Field(30, ge=1, description="poll: envelopes with no news for this long are re-read")
    batch: int = Field(200, ge=1, le=5000, description="inbox: events per batch")

    @field_validator("contract")
    @classmethod
    def _contract_id(cls, value: str) -> str:
        value = value.strip()
        if value and not CONTRACT.fullmatch(value):
            raise ValueError(f"{value!r}: a contract is its CV CRM id (idreservacontrato), e.g. 801")
        return value

    @model_validator(mode="after")
    def _contract_with_its_mode(self) -> "BacksyncConfig":
        if self.mode == "contract" and not self.contract:
            raise ValueError("mode=contract needs contract: the CV CRM contract id (idreservacontrato)")
        if self.contract and self.mode != "contract":
            raise ValueError(f"contract is read only with mode=contract (mode is {self.mode})")
        return self


def moved(report: BacksyncReport) -> bool:
    """Whether a back-sync changed anything on the CRM side worth a materialization."""
    return bool(report.applied or report.completed or report.envelopes_synced or report.notifications)


def materialization(tenant: str, report: BacksyncReport, mode: str) -> AssetMaterialization:
    """The ``cvcrm/signed_documents`` materialization of ``tenant``'s partition for ``report``."""
    return AssetMaterialization(asset_key=key("crm_signed_documents"), partition=tenant,
                                metadata={"mode": mode, **report.as_metadata()})


def report_backsync(instance: DagsterInstance | None, tenant: str, report: BacksyncReport, mode: str,
                    source: str = CLI_LOCAL) -> bool:
    """Record a back-sync done outside a Dagster run (runless, :mod:`orchestration.runless`), tagged
    ``ponte/source: source``; True when one was recorded. ``instance`` None: the one ``DAGSTER_HOME``
    names, if any (a broken one is a warning, never a failed sync)."""
    if not moved(report):
        return False
    return bool(report_moved(tenant, {"crm_signed_documents": {"mode": mode, **report.as_metadata()}},
                             source=source, instance=instance))


def _merge(total: BacksyncReport, part: BacksyncReport) -> None:
    for name in ("events", "applied", "unchanged", "ignored", "unknown", "failed", "notifications",
                 "envelopes_synced"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.completed += part.completed
    total.statuses.update(part.statuses)


@op(description="Back-sync signing status for one tenant: webhooks, polling or one contract.",
    retry_policy=STEP_RETRY)
def backsync(
    context: OpExecutionContext,
    config: BacksyncConfig,
    store: StoreResource,
    tenants: TenantsResource,
    connectors: ConnectorsResource,
) -> Output[dict]:
    with step_errors(context):
        tenant = tenants.load(context.partition_key if context.has_partition_key else "demo")
        tag_run(context, {"ponte/tenant": tenant.id, "ponte/mode": config.mode})
        state = store.get()

        def opener(key: str):
            return connectors.open(tenant, key, state)

        run_id = context.run_id
        metadata: dict = {"tenant": tenant.id, "mode": config.mode}
        if config.mode == "contract":
            if not config.contract:
                raise ConfigurationError("mode=contract needs a contract", field="contract",
                                         hint="set config.contract to the CV CRM contract id (idreservacontrato)")
            result = sync_contract(state, tenant, config.contract, opener, run_id=run_id)
            report = result.report
            context.log.info(result.message)
            metadata.update({"message": result.message, "pending": result.pending,
                             "history": contract_history(state, tenant.id, config.contract,
                                                         tenant.options.verification_base_url)})
        elif config.mode == "poll":
            report = poll_stale(state, tenant, opener, quiet_for=timedelta(minutes=config.quiet_minutes),
                                run_id=run_id)
        elif config.mode == "inbox":
            report = BacksyncReport(tenant.id)
            for _ in range(50):  # bounded: a flood is finished by the next sensor tick
                part = drain_inbox(state, tenant, opener, limit=config.batch, run_id=run_id)
                _merge(report, part)
                if part.events == 0:
                    break
        else:
            raise ConfigurationError(f"unknown back-sync mode {config.mode!r}", field="mode",
                                     hint="use inbox, poll or contract")
    metadata.update(report.as_metadata())
    if moved(report):
        context.log_event(materialization(tenant.id, report, config.mode))
    return Output(report.as_metadata(), metadata=metadata)


check_config_at_launch(backsync, BacksyncConfig)


@job(name=JOB, partitions_def=tenant_partitions, executor_def=in_process_executor,
     description="Signing status back-sync: provider news into envelopes, signed PDFs into the CRM.")
def signature_backsync() -> None:
    backsync()


@sensor(name="signing_webhook_backsync", job=signature_backsync, minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Starts a back-sync run per tenant with stored signing webhooks (DocuSign, Clicksign, "
        "WhatsApp, and providers described in YAML).")
def signing_webhook_backsync(context: SensorEvaluationContext, store: StoreResource) -> SensorResult | SkipReason:
    return tag_requests(inbox_run_requests(
        context,
        store.get(),
        job_name=JOB,
        wanted=InboxEvent.connector.in_(inbox_connectors(list_tenants())),
        key_prefix="backsync",
        run_config={"ops": {"backsync": {"config": {"mode": "inbox"}}}},
        known_tenants=tenant_ids(),
        nothing="no new signing webhooks",
    ), mode="inbox")


@schedule(name="signature_backsync_poll", job=signature_backsync, cron_schedule="*/15 * * * *",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Polling fallback: re-reads envelopes with no news (lost webhooks).")
def signature_backsync_poll(context: ScheduleEvaluationContext):
    for tenant in tenant_ids():
        yield RunRequest(run_key=None, partition_key=scheduled_partition(context, tenant),
                         run_config={"ops": {"backsync": {"config": {"mode": "poll"}}}},
                         tags=run_tags(tenant, "poll", mode="poll"))


DEFS = Definitions(assets=[SIGNED_DOCUMENTS], jobs=[signature_backsync], sensors=[signing_webhook_backsync],
                   schedules=[signature_backsync_poll])

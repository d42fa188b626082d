"""The back-sync flow in Dagster: a sensor draining provider webhooks, a polling schedule, manual sync.

One job, ``signature_backsync``, partitioned by tenant, runs :mod:`pipelines.backsync.flow` in one of
three modes (op config ``mode``): ``inbox`` (drain stored webhooks in batches; what the sensor asks
for), ``poll`` (re-read envelopes with no news; the schedule) and ``contract`` (an operator's "sync
signature" for ``contract``, from the Launchpad). The in-process executor keeps webhook-to-CRM latency
to seconds (ARCHITECTURE.md pitfalls: the multiprocess executor alone costs 6-15 s per run).
"""
# No `from __future__ import annotations` here: Dagster reads the Config annotations at run time.

from datetime import timedelta

from dagster import (
    Config,
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
from pydantic import Field

from orchestration.inbox_sensing import inbox_run_requests
from orchestration.partitions import tenant_ids, tenant_partitions
from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from orchestration.steps import STEP_RETRY, step_errors
from pipelines.backsync.flow import BacksyncReport, drain_inbox, inbox_connectors, poll_stale, sync_contract
from pipelines.backsync.history import contract_history
from pipelines.store.models import InboxEvent
from ponte.errors import ConfigurationError
from schemas.tenant import list_tenants

JOB = "signature_backsync"


class BacksyncConfig(Config):
    mode: str = Field("inbox", description="inbox | poll | contract")
    contract: str = Field("", description="CV CRM contract id (idreservacontrato), for mode=contract")
    quiet_minutes: int = Field(30, description="poll: envelopes with no news for this long are re-read")
    batch: int = Field(200, description="inbox: events per batch")


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
    return Output(report.as_metadata(), metadata=metadata)


@job(name=JOB, partitions_def=tenant_partitions, executor_def=in_process_executor,
     description="Signing status back-sync: provider news into envelopes, signed PDFs into the CRM.")
def signature_backsync() -> None:
    backsync()


@sensor(name="signing_webhook_backsync", job=signature_backsync, minimum_interval_seconds=1,
        default_status=DefaultSensorStatus.RUNNING,
        description="Starts a back-sync run per tenant with stored signing webhooks (DocuSign, Clicksign, "
        "WhatsApp, and providers described in YAML).")
def signing_webhook_backsync(context: SensorEvaluationContext, store: StoreResource) -> SensorResult | SkipReason:
    return inbox_run_requests(
        context,
        store.get(),
        job_name=JOB,
        wanted=InboxEvent.connector.in_(inbox_connectors(list_tenants())),
        key_prefix="backsync",
        run_config={"ops": {"backsync": {"config": {"mode": "inbox"}}}},
        known_tenants=tenant_ids(),
        nothing="no new signing webhooks",
    )


@schedule(name="signature_backsync_poll", job=signature_backsync, cron_schedule="*/15 * * * *",
          default_status=DefaultScheduleStatus.RUNNING,
          description="Polling fallback: re-reads envelopes with no news (lost webhooks).")
def signature_backsync_poll(context: ScheduleEvaluationContext):
    for tenant in tenant_ids():
        yield RunRequest(run_key=None, partition_key=tenant,
                         run_config={"ops": {"backsync": {"config": {"mode": "poll"}}}},
                         tags={"ponte/trigger": "poll"})


DEFS = Definitions(jobs=[signature_backsync], sensors=[signing_webhook_backsync],
                   schedules=[signature_backsync_poll])

"""A sensor that starts a dispatch run when CV CRM says a contract is ready to be signed.

The gateway stores CV CRM deliveries in the inbox (``/webhooks/<tenant>/cvcrm/events/<secret>``). Every
few seconds this sensor, per tenant, leases the pending deliveries whose type is one of the tenant's
dispatch triggers (CV CRM value ``dispatch_events``, default ``CV:*``) to one new run, and requests
that run with the named contracts (``contracts``; reservations for ``RS`` triggers), ``ready_only`` and
the lease's token (``inbox_claim``). The run key is the lease's, so one inbox event never starts two
runs: a second evaluation does not see leased events.

Why a lease, and not "mark processed once requested": a request the daemon never submitted, or a run
that crashed, must not lose its events, and a run must not mark an event processed before it
dispatched its contract. So the run marks the events itself, after dispatching; if it never does, the
lease runs out and the events are leased again (a new run key). A lease that ran out while its run is
still queued or running (a tenant's runs queue one at a time) is renewed here instead of handed to a
second run. The full argument is in :mod:`pipelines.dispatch.webhooks`.

One consequence: the sensor writes (the lease) when it is evaluated, so the UI's "test sensor" button
leases events to a run that is never launched; they come back after ``LAUNCH_LEASE_SECONDS``.

Stricter than the other webhook sensors (``orchestration/inbox_sensing.py``, which only wait for a
run that has not started yet), a tenant with a dispatch run queued or going gets no new run: one
dispatcher per tenant, since two could overshoot the envelope package. Its new events wait for the next
tick after that run, and go together. Unlike the others, this sensor leases the events itself instead of letting the run drain the inbox,
because the run is asked for named contracts: the set of events behind a request must be fixed when the
request is made.

The 10-minute schedule (``dispatch_<tenant>``) stays as the fallback for lost or unconfigured webhooks.
"""
# No `from __future__ import annotations` here: Dagster reads the resource annotations at run time.

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from orchestration.inbox_sensing import ACTIVE, busy_tenants
from orchestration.partitions import tenant_partitions
from orchestration.resources import StoreResource, TenantsResource
from pipelines.dispatch.webhooks import (
    LAUNCH_LEASE_SECONDS,
    expired_leases,
    hand_over,
    renew,
    run_key,
    tenant_triggers,
)
from pipelines.store import Store
from ponte import ConfigurationError

SENSOR = "dispatch_cvcrm_webhooks"
#: the tag Dagster puts on a sensor's run with its run key
RUN_KEY_TAG = "dagster/run_key"


def _keep_waiting_runs(context: SensorEvaluationContext, state: Store) -> None:
    """Renew expired leases whose run is still queued or running, so it is not doubled."""
    for tenant, token in expired_leases(state):
        runs = context.instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: run_key(tenant, token)}), limit=1)
        if runs and not runs[0].is_finished:
            renew(state, token, LAUNCH_LEASE_SECONDS)


def contract_webhook_sensor(job_name: str):
    @sensor(
        name=SENSOR,
        job_name=job_name,
        minimum_interval_seconds=5,
        default_status=DefaultSensorStatus.RUNNING,
        description="Dispatches the contracts CV CRM webhooks name as ready to sign, one run per tenant batch.",
    )
    def _sensor(
        context: SensorEvaluationContext, store: StoreResource, tenants: TenantsResource
    ) -> SensorResult | SkipReason:
        state = store.get()
        _keep_waiting_runs(context, state)
        known = set(tenant_partitions.get_partition_keys(dynamic_partitions_store=context.instance))
        busy = busy_tenants(context, job_name, ACTIVE)  # one dispatcher per tenant: the package ledger
        requests, waiting = [], []
        for tenant in tenants.all():
            if tenant.id not in known:
                continue
            if tenant.id in busy:
                waiting.append(tenant.id)
                continue
            try:
                triggers = tenant_triggers(tenant)
            except ConfigurationError as exc:
                context.log.error(f"tenant {tenant.id}: CV CRM webhooks not dispatched: {exc}")
                continue
            handover = hand_over(state, tenant.id, triggers)
            if handover is None:
                continue
            config = {
                "contracts": handover.contracts,
                "reservations": handover.reservations,
                "all_ready": False,
                "ready_only": True,
                "inbox_claim": handover.token,
            }
            requests.append(
                RunRequest(
                    run_key=handover.run_key,
                    partition_key=tenant.id,
                    run_config={"ops": {"signing_envelopes": {"config": config}}},
                    tags={"ponte/tenant": tenant.id, "ponte/trigger": "webhook"},
                )
            )
        if requests:
            return SensorResult(run_requests=requests)
        if waiting:
            return SkipReason(f"nothing leased; a dispatch run is already queued or going for {', '.join(waiting)}")
        return SkipReason("no CV CRM contract webhooks")

    return _sensor

"""A sensor that runs the assistance sync for each tenant with stored assistance webhooks.

CV CRM ``AS:*`` deliveries (a new assistência) and Sienge's assistance hooks (the tenant's configured
prefix) share inboxes with other flows, so only those event types are looked at.
"""


from dagster import (
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import and_, or_

from orchestration.inbox_sensing import inbox_run_requests
from orchestration.resources import StoreResource
from pipelines.assistance import CRM_EVENT_PREFIX, DEFAULT_EVENT_PREFIX
from pipelines.store import InboxEvent
from schemas import list_tenants


def _prefixes() -> set[str]:
    found = {DEFAULT_EVENT_PREFIX}
    for tenant in list_tenants():
        sienge = tenant.connectors.get("sienge")
        if sienge is not None and sienge.values.get("assistance_event_prefix"):
            found.add(str(sienge.values["assistance_event_prefix"]))
    return found


def assistance_webhook_sensor(job_name: str):
    @sensor(
        name="assistance_webhooks",
        job_name=job_name,
        minimum_interval_seconds=5,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends new CRM assistências to Sienge and applies Sienge's status hooks, per tenant.",
    )
    def _sensor(context: SensorEvaluationContext, store: StoreResource) -> SensorResult | SkipReason:
        state = store.get()
        wanted = or_(
            and_(InboxEvent.connector == "cvcrm", InboxEvent.event_type.startswith(CRM_EVENT_PREFIX)),
            and_(
                InboxEvent.connector == "sienge",
                or_(*(InboxEvent.event_type.startswith(f"{p}_") for p in sorted(_prefixes()))),
            ),
        )
        return inbox_run_requests(
            context,
            state,
            job_name=job_name,
            wanted=wanted,
            key_prefix="assistance-hooks",
            run_config={"ops": {"assistance_sync": {"config": {"mode": "webhooks"}}}},
            nothing="no new assistance webhooks",
        )

    return _sensor

"""A sensor that turns stored Sienge hooks into single-record import runs (one per tenant with news)."""


from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor
from sqlalchemy import and_, or_

from orchestration.inbox_sensing import inbox_run_requests
from orchestration.resources import StoreResource
from orchestration.steps import tag_requests
from pipelines.imports.webhooks import EVENTS
from pipelines.store import InboxEvent


def sienge_webhook_sensor(job_name: str):
    @sensor(
        name="sienge_webhook_import",
        job_name=job_name,
        minimum_interval_seconds=5,
        default_status=DefaultSensorStatus.RUNNING,
        description="Imports the records Sienge hooks named (re-read by id), per tenant.",
    )
    def _sensor(context: SensorEvaluationContext, store: StoreResource) -> SensorResult | SkipReason:
        return tag_requests(inbox_run_requests(
            context,
            store.get(),
            job_name=job_name,
            wanted=and_(InboxEvent.connector == "sienge", or_(*(InboxEvent.event_type.startswith(p) for p in EVENTS))),
            key_prefix="sienge-hooks",
            run_config={"ops": {"crm_customers_and_sales": {"config": {"mode": "webhooks"}}}},
            nothing="no new Sienge hooks",
        ), mode="webhooks")

    return _sensor

"""A sensor that turns stored Sienge hooks into single-record import runs (one per tenant with news)."""


from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import func, or_, select

from orchestration.resources import StoreResource
from pipelines.imports.webhooks import EVENTS
from pipelines.store.models import InboxEvent


def sienge_webhook_sensor(job_name: str):
    @sensor(
        name="sienge_webhook_import",
        job_name=job_name,
        minimum_interval_seconds=5,
        default_status=DefaultSensorStatus.RUNNING,
        description="Imports the records Sienge hooks named (re-read by id), per tenant.",
    )
    def _sensor(context: SensorEvaluationContext, store: StoreResource) -> SensorResult | SkipReason:
        state = store.get()
        with state.session() as session:
            rows = session.execute(
                select(InboxEvent.tenant, func.max(InboxEvent.id))
                .where(
                    InboxEvent.connector == "sienge",
                    InboxEvent.status.in_(("new", "failed")),
                    or_(*(InboxEvent.event_type.startswith(p) for p in EVENTS)),
                )
                .group_by(InboxEvent.tenant)
            ).all()
        if not rows:
            return SkipReason("no new Sienge hooks")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"sienge-hooks-{tenant}-{last_id}",
                    partition_key=tenant,
                    run_config={"ops": {"crm_customers_and_sales": {"config": {"mode": "webhooks"}}}},
                    tags={"ponte/trigger": "webhook"},
                )
                for tenant, last_id in rows
            ]
        )

    return _sensor

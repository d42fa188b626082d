"""A small tenant-partitioned job for the scale-out topology test: an import step and a back-sync step.

Each step writes into Ponte's state store (id-map rows, outbox items) and records the process it ran in
(a sync cursor ``pid:<n>`` per step, plus output metadata), so the test can prove that each step ran in
a celery worker and not in the process that launched the run. The import step hands its target ids to
the back-sync step through Dagster's IO manager, as a real multi-step job would.

The module is importable by the worker (``tests.deploy.jobs``): celery workers reconstruct jobs by
module and attribute name.
"""

import os

from dagster import (
    ConfigurableResource,
    JobDefinition,
    OpExecutionContext,
    StaticPartitionsDefinition,
    job,
    op,
)
from dagster_celery import celery_executor

from orchestration.executors import executor_from_environment
from pipelines.store import Store, open_store
from pipelines.store.models import IdMap, OutboxItem, SyncCursor

PROBE = "deploy-probe"
CUSTOMERS = ("1", "2", "3")

probe_partitions = StaticPartitionsDefinition(["demo", "acme"])


class ProbeStore(ConfigurableResource):
    """Ponte's state store at an explicit URL (already migrated by the test)."""

    database_url: str

    def open(self) -> Store:
        return open_store(self.database_url, upgrade=False)


def _record_pid(session, tenant: str, step: str) -> None:
    session.add(SyncCursor(tenant=tenant, connector=PROBE, stream=step, value=f"pid:{os.getpid()}"))


@op
def import_customers(context: OpExecutionContext, store: ProbeStore) -> list[str]:
    tenant = context.partition_key
    db = store.open()
    try:
        with db.session() as session:
            for customer in CUSTOMERS:
                session.add(
                    IdMap(
                        tenant=tenant,
                        entity="customer",
                        source_system="sienge",
                        source_id=customer,
                        target_system="cvcrm",
                        target_id=f"cv-{customer}",
                        mapping_version=PROBE,
                    )
                )
            _record_pid(session, tenant, "import_customers")
    finally:
        db.dispose()
    context.add_output_metadata({"pid": os.getpid(), "created": len(CUSTOMERS)})
    return [f"cv-{customer}" for customer in CUSTOMERS]


@op
def back_sync(context: OpExecutionContext, store: ProbeStore, target_ids: list[str]) -> int:
    tenant = context.partition_key
    db = store.open()
    try:
        with db.session() as session:
            for target_id in target_ids:
                session.add(
                    OutboxItem(
                        tenant=tenant,
                        connector="sienge",
                        action="update_customer",
                        idempotency_key=f"{PROBE}:{tenant}:{target_id}",
                        payload={"cvcrm_id": target_id},
                        run_id=context.run_id,
                    )
                )
            _record_pid(session, tenant, "back_sync")
    finally:
        db.dispose()
    context.add_output_metadata({"pid": os.getpid(), "queued": len(target_ids)})
    return len(target_ids)


@job(
    partitions_def=probe_partitions,
    executor_def=celery_executor,
    resource_defs={"store": ProbeStore.configure_at_launch()},
    description="Topology probe: an import step then a back-sync step, each in a celery worker.",
)
def deploy_probe() -> None:
    back_sync(import_customers())


def deploy_probe_from_environment() -> JobDefinition:
    """The same job with the executor production code picks from the environment (PONTE_EXECUTOR=celery,
    PONTE_CELERY_*). A reconstructor function, so each process (launcher, worker) reads its own env."""
    return deploy_probe.with_executor_def(executor_from_environment())


def customer_sale_import_on_celery() -> JobDefinition:
    """Ponte's real import job with the executor from the environment, whatever executor its definition
    names today: ``build_reconstructable_job("tests.deploy.jobs", "customer_sale_import_on_celery")``.
    Imported lazily: the definitions are loaded only by the run that asks for them."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("customer_sale_import").with_executor_def(executor_from_environment())

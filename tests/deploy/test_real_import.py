"""Ponte's real import (`customer_sale_import`) through the scale-out topology: the sandbox's Sienge and
CV CRM, the job's step in a celery worker, Dagster's storage and Ponte's store on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, build_reconstructable_job
from sqlalchemy import func, select

from connectors.sandbox import start_sandbox
from pipelines.store import open_store
from pipelines.store.models import IdMap
from tests.deploy.topology import REPO, Topology, celery_topology

pytestmark = [
    pytest.mark.xdist_group("deploy"),
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered"),
]

CUSTOMERS = 12


def _write_sandbox_tenant(sandbox, tenants: Path) -> None:
    """tenants/demo.yaml with every connector pointed at the running sandbox (ephemeral ports)."""
    data = yaml.safe_load((REPO / "tenants" / "demo.yaml").read_text(encoding="utf-8"))
    for key, connector in data["connectors"].items():
        if key == "smtp":
            connector["values"]["host"] = sandbox.smtp.host
            connector["values"]["port"] = str(sandbox.smtp.port)
        elif key in sandbox.urls:
            connector["values"]["base_url"] = sandbox.urls[key]
    tenants.mkdir(parents=True, exist_ok=True)
    (tenants / "demo.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def import_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    workdir = tmp_path_factory.mktemp("real-import")
    with start_sandbox(customers=CUSTOMERS, seed=7) as sandbox:
        _write_sandbox_tenant(sandbox, workdir / "tenants")
        env = {"PONTE_TENANTS_DIR": str(workdir / "tenants"), "PONTE_HOME": str(workdir / "ponte-home")}
        with celery_topology(workdir, extra_env=env) as topology:
            yield topology


def test_the_real_import_runs_in_a_celery_worker(import_topology: Topology) -> None:
    topology = import_topology
    job = build_reconstructable_job("tests.deploy.jobs", "customer_sale_import_on_celery")
    result = topology.run_job_through_celery(job, partition_key="demo")
    if not result.success:
        pytest.fail(f"the import failed; celery worker log:\n{topology.worker.log()[-6000:]}")

    steps = topology.step_processes(result.run_id)
    assert "crm_customers_and_sales" in steps  # and its asset check, when the job has one
    for step, info in steps.items():
        assert info["worker"].startswith(topology.worker.hostname_prefix), (step, info)

    materializations = topology.instance.all_logs(
        result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    )
    # one materialization per entity the import wrote (enterprises, units, people, reservations)
    assert len(materializations) == 4
    for event in materializations:
        metadata = event.dagster_event.event_specific_data.materialization.metadata
        assert metadata["failed"].value == 0 and metadata["created"].value > 0

    # customers (persons) and sales landed in CV CRM and in the id map on PostgreSQL
    mapped = _mapped_per_entity(topology.store_url)
    assert mapped.get("person", 0) > 0 and mapped.get("sale", 0) > 0, mapped


def _mapped_per_entity(url: str) -> dict[str, int]:
    store = open_store(url, upgrade=False)
    try:
        with store.session() as session:
            rows = session.execute(
                select(IdMap.entity, func.count(IdMap.target_id))
                .where(
                    IdMap.tenant == "demo", IdMap.source_system == "sienge", IdMap.target_system == "cvcrm"
                )
                .group_by(IdMap.entity)
            ).all()
    finally:
        store.dispose()
    return {entity: count for entity, count in rows}

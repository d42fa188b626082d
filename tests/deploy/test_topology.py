"""The scale-out topology of docs/deploy.md on this machine: PostgreSQL for Dagster's storage and Ponte's
state store, Redis as the celery broker, a Dagster celery worker executing every step, and two webhook
gateway processes sharing one inbox.

Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (`make services` starts both); it fails,
never skips, when they are missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus, build_reconstructable_job, in_process_executor
from dagster_celery.cli import get_validated_config
from dagster_postgres import PostgresRunStorage
from sqlalchemy import create_engine, select, text

from orchestration.executors import celery_execution_config, executor_from_environment
from pipelines.store import open_store
from pipelines.store.models import IdMap, OutboxItem, SyncCursor
from ponte.errors import ConfigurationError
from tests.deploy.jobs import CUSTOMERS, PROBE, deploy_probe
from tests.deploy.topology import REPO, Topology, TopologyError, celery_topology, require_celery_executor

pytestmark = [
    pytest.mark.xdist_group("deploy"),
    pytest.mark.postgres,
    pytest.mark.slow,
    # dagster-celery re-creates its task object per step; celery warns about the duplicate name
    pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered"),
]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with celery_topology(tmp_path_factory.mktemp("topology")) as started:
        yield started


def test_an_import_and_a_back_sync_run_in_celery_workers_on_postgresql(topology: Topology) -> None:
    result = topology.run_job_through_celery(
        deploy_probe,
        partition_key="demo",
        run_config={"resources": {"store": {"config": {"database_url": topology.store_url}}}},
    )
    if not result.success:
        pytest.fail(f"the run failed; celery worker log:\n{topology.worker.log()[-4000:]}")

    # Dagster's run and event log live in PostgreSQL, and say where each step ran
    assert isinstance(topology.instance.run_storage, PostgresRunStorage)
    run = topology.instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == "demo"
    dagster_db = create_engine(topology.dagster_url)
    try:
        with dagster_db.connect() as conn:
            stored = conn.execute(text("SELECT status FROM runs WHERE run_id = :id"), {"id": result.run_id})
            assert stored.scalar_one() == "SUCCESS"
    finally:
        dagster_db.dispose()

    steps = topology.step_processes(result.run_id)
    assert set(steps) == {"import_customers", "back_sync"}
    worker_group = topology.worker.process_group()
    for step, info in steps.items():
        assert info["worker"].startswith(topology.worker.hostname_prefix), (step, info)
        assert info["pid"] != os.getpid(), f"{step} ran in the launching process"
        # the step's process belongs to the worker we started (celery's pool child or the worker itself)
        assert os.getpgid(info["pid"]) == worker_group, (step, info)

    # both steps' side effects are in Ponte's state store on PostgreSQL, written by those processes
    store = open_store(topology.store_url, upgrade=False)
    try:
        with store.session() as session:
            imported = session.scalars(
                select(IdMap.source_id).where(IdMap.tenant == "demo", IdMap.mapping_version == PROBE)
            ).all()
            queued = session.scalars(select(OutboxItem).where(OutboxItem.tenant == "demo")).all()
            pids = dict(
                session.execute(
                    select(SyncCursor.stream, SyncCursor.value).where(SyncCursor.connector == PROBE)
                ).all()
            )
    finally:
        store.dispose()
    assert sorted(imported) == sorted(CUSTOMERS)
    assert sorted(item.payload["cvcrm_id"] for item in queued) == [f"cv-{c}" for c in sorted(CUSTOMERS)]
    assert {item.run_id for item in queued} == {result.run_id}
    assert pids == {step: f"pid:{info['pid']}" for step, info in steps.items()}


def test_the_executor_chosen_by_ponte_executor_runs_steps_in_the_worker(topology: Topology) -> None:
    # what production definitions do: executor_def=executor_from_environment(), broker and queue from env
    job = build_reconstructable_job("tests.deploy.jobs", "deploy_probe_from_environment")
    result = topology.run_job_through_celery(
        job,
        partition_key="acme",
        run_config={"resources": {"store": {"config": {"database_url": topology.store_url}}}},
    )
    assert result.success, topology.worker.log()[-4000:]
    steps = topology.step_processes(result.run_id)
    assert set(steps) == {"import_customers", "back_sync"}
    assert all(info["worker"].startswith(topology.worker.hostname_prefix) for info in steps.values())
    assert all(info["pid"] != os.getpid() for info in steps.values())


def test_a_job_that_would_run_in_process_is_refused() -> None:
    with pytest.raises(TopologyError, match="in_process executor"):
        require_celery_executor(deploy_probe.with_executor_def(in_process_executor))
    require_celery_executor(deploy_probe)


def test_the_example_celery_config_is_what_the_worker_and_executor_accept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PONTE_CELERY_BROKER_URL", "redis://broker.invalid:6379/0")
    monkeypatch.setenv("PONTE_CELERY_BACKEND_URL", "redis://broker.invalid:6379/1")
    validated = get_validated_config(str(REPO / "deploy" / "celery.yaml.example"))
    assert validated["broker"] == "redis://broker.invalid:6379/0"
    assert validated["config_source"]["task_default_queue"] == "ponte"

    generated = tmp_path / "celery.yaml"
    config = celery_execution_config("redis://a:6379/0", "redis://a:6379/1", queue="tenant-heavy")
    generated.write_text(yaml.safe_dump({"execution": {"config": config}}))
    assert get_validated_config(str(generated))["config_source"] == {"task_default_queue": "tenant-heavy"}


def test_the_executor_follows_ponte_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PONTE_EXECUTOR", raising=False)
    assert executor_from_environment().name == "in_process"
    monkeypatch.setenv("PONTE_EXECUTOR", "celery")
    assert executor_from_environment().name == "celery"
    monkeypatch.setenv("PONTE_EXECUTOR", "kubernetes")
    with pytest.raises(ConfigurationError, match="PONTE_EXECUTOR"):
        executor_from_environment()

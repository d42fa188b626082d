"""The scale-out topology of docs/deploy.md, started on this machine for a test.

``celery_topology(workdir)`` creates two fresh PostgreSQL databases (Dagster's storage, with
``deploy/dagster.yaml.example`` as the instance config, and Ponte's state store, migrated), starts a
Dagster celery worker in its own process group on a queue no other run uses, and yields a
``Topology``; on exit it stops the worker's whole process group and drops both databases.

``topology.run_job_through_celery(job, partition_key, run_config)`` launches a run from this process;
every step is executed by the worker. ``job`` is a module-level ``JobDefinition``, a job name in
``orchestration.definitions`` (``"customer_sale_import"``) or ``"package.module:job_name"`` for a
module with a ``defs`` Definitions object, or a ``build_reconstructable_job(...)`` (whose function is
called again in the worker). The job's executor must be celery: a plain ``celery_executor`` gets the
topology's broker and queue as run config, ``executor_from_environment()`` reads them from the
environment the topology sets.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterEventType, DagsterInstance, JobDefinition, execute_job, reconstructable
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.execution.job_execution_result import JobExecutionResult
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orchestration.executors import celery_execution_config
from pipelines.store import open_store
from tests.support.process_groups import group_alive

REPO = Path(__file__).resolve().parents[2]
DAGSTER_YAML_EXAMPLE = REPO / "deploy" / "dagster.yaml.example"
POSTGRES_ADMIN_URL = os.environ.get(
    "PONTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PONTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER_READY_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0
PARTITION_TAG = "dagster/partition"


class TopologyError(RuntimeError):
    """A service the topology needs is missing, or a process of it did not start."""


def with_driver(url: str, driver: str, database: str | None = None) -> str:
    """The same PostgreSQL URL with an explicit driver (``psycopg2`` for Dagster, ``psycopg`` for Ponte)."""
    parsed = make_url(url).set(drivername=f"postgresql+{driver}")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def require_redis(url: str = REDIS_URL) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as exc:
        raise TopologyError(
            f"Redis (the celery broker) is not reachable at {url}: {exc}; start it with `make services`"
            " (or set PONTE_TEST_REDIS_URL)."
        ) from exc


def forget_queue(queue: str, url: str = REDIS_URL) -> None:
    """Delete what the broker kept for a test queue (its lists and exchange binding)."""
    import redis

    with suppress(Exception):
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        keys = list(client.scan_iter(match=f"*{queue}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _admin_engine():
    return create_engine(with_driver(POSTGRES_ADMIN_URL, "psycopg"), isolation_level="AUTOCOMMIT")


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise TopologyError(
            f"cannot create a PostgreSQL database through {POSTGRES_ADMIN_URL}: {exc}."
            " Start PostgreSQL with `make services` (or set PONTE_TEST_POSTGRES_URL)."
        ) from exc
    finally:
        admin.dispose()
    return name


def drop_database(name: str) -> None:
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass
class CeleryWorker:
    """``dagster-celery worker start`` in its own process group, logging to a file."""

    config_yaml: Path
    queue: str
    env: dict[str, str]
    log_path: Path
    concurrency: int = 2
    name: str = field(default_factory=lambda: f"ponte-test-{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def hostname_prefix(self) -> str:
        return f"{self.name}@"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "dagster_celery.cli", "worker", "start",
            "-A", "dagster_celery.app",
            "-y", str(self.config_yaml),
            "-q", self.queue,
            "-n", self.name,
            "-l", "INFO",
            "--",
            "--pool", "prefork", "-c", str(self.concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the celery children too
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = WORKER_READY_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise TopologyError(
                    f"the celery worker exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            time.sleep(0.2)
        raise TopologyError(f"the celery worker was not ready within {timeout:.0f} s:\n{self.log()[-4000:]}")

    def process_group(self) -> int:
        assert self.process is not None
        return self.process.pid  # start_new_session: the leader's pid is the group id

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        pgid = self.process_group()
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)  # warm shutdown of the worker and its pool
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and group_alive(pgid):
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.2)
        if group_alive(pgid):
            with suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


@dataclass
class Topology:
    dagster_home: Path
    dagster_url: str
    store_url: str
    broker_url: str
    queue: str
    instance: DagsterInstance
    worker: CeleryWorker
    env: dict[str, str]

    def execution_config(self) -> dict[str, Any]:
        return celery_execution_config(self.broker_url, self.broker_url, self.queue)

    def run_job_through_celery(
        self,
        job: JobDefinition | ReconstructableJob | str,
        partition_key: str | None = None,
        run_config: Mapping[str, Any] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        timeout: float = RUN_TIMEOUT,
    ) -> JobExecutionResult:
        """Launch a run here; its steps execute in the worker. Adds the celery ``execution`` block
        unless ``run_config`` has one or the job's executor is already configured
        (``PONTE_EXECUTOR=celery``, which the topology sets for the worker and for this process)."""
        require_celery_executor(job)
        recon = _reconstructable(job)
        config = dict(run_config or {})
        if "execution" not in config and _executor_takes_config(recon):
            config["execution"] = {"config": self.execution_config()}
        run_tags = dict(tags or {})
        if partition_key is not None:
            run_tags[PARTITION_TAG] = partition_key
            # tenant partitions are dynamic: the key must exist in the instance the worker reads
            # (in production the tenant_files sensor adds it; `ponte sync` adds it before a run)
            from orchestration.partitions import ensure_tenant_partitions

            ensure_tenant_partitions(self.instance, [partition_key])
        # in a thread, so a step no worker picks up fails the test instead of hanging it
        outcome: dict[str, Any] = {}

        def launch() -> None:
            try:
                outcome["result"] = execute_job(
                    recon, instance=self.instance, run_config=config, tags=run_tags
                )
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=launch, name="ponte-topology-run", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TopologyError(
                f"the run did not finish within {timeout:.0f} s; celery worker log:\n{self.worker.log()[-4000:]}"
            )
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def step_processes(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Per step, from Dagster's event log on PostgreSQL: the celery worker that took it and the
        ``pid`` output metadata the step reported (when it did)."""
        steps: dict[str, dict[str, Any]] = {}
        for record in self.instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            info = steps.setdefault(event.step_key, {})
            if event.event_type == DagsterEventType.ENGINE_EVENT:
                metadata = event.engine_event_data.metadata or {}
                if "Celery worker" in metadata:
                    info["worker"] = metadata["Celery worker"].value
            elif event.event_type == DagsterEventType.STEP_OUTPUT:
                metadata = event.step_output_data.metadata or {}
                if "pid" in metadata:
                    info["pid"] = metadata["pid"].value
        return steps


def require_celery_executor(job: JobDefinition | ReconstructableJob | str) -> None:
    """Refuse a job that would quietly run its steps in the launching process."""
    definition = job if isinstance(job, JobDefinition) else _reconstructable(job).get_definition()
    executor = definition.executor_def
    if executor.name != "celery":
        raise TopologyError(
            f"job {definition.name!r} runs with the {executor.name} executor, not celery:"
            " build it with executor_def=executor_from_environment() (this topology sets"
            " PONTE_EXECUTOR=celery) and make sure its module is first imported inside the topology"
            " (or pass a build_reconstructable_job(...) reconstructor)"
        )


def _reconstructable(job: JobDefinition | ReconstructableJob | str) -> ReconstructableJob:
    if isinstance(job, ReconstructableJob):
        return job
    if isinstance(job, JobDefinition):
        return reconstructable(job)
    module, _, name = job.rpartition(":")
    repository = ReconstructableRepository.for_module(
        module or "orchestration.definitions", "defs", working_directory=str(REPO)
    )
    return repository.get_reconstructable_job(name)


def _executor_takes_config(recon: ReconstructableJob) -> bool:
    """A plain celery executor takes broker and queue from run config; a ``configured`` one does not."""
    fields = getattr(recon.get_definition().executor_def.config_schema.config_type, "fields", {})
    return "broker" in fields


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def celery_topology(
    workdir: Path, *, concurrency: int = 2, extra_env: Mapping[str, str] | None = None
) -> Iterator[Topology]:
    """PostgreSQL (Dagster's storage and Ponte's store), Redis as broker and backend, one celery worker."""
    require_redis()
    token = uuid.uuid4().hex[:10]
    queue = f"ponte-test-{token}"  # a queue of our own: parallel runs never take each other's steps
    dagster_db = create_database("ponte_dagster")
    store_db: str | None = None
    worker: CeleryWorker | None = None
    instance: DagsterInstance | None = None
    try:
        store_db = create_database("ponte_store")
        dagster_url = with_driver(POSTGRES_ADMIN_URL, "psycopg2", dagster_db)
        store_url = with_driver(POSTGRES_ADMIN_URL, "psycopg", store_db)
        open_store(store_url).dispose()  # migrate before any step writes

        dagster_home = workdir / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DAGSTER_YAML_EXAMPLE, dagster_home / "dagster.yaml")
        celery_yaml = workdir / "celery.yaml"
        execution = celery_execution_config(REDIS_URL, REDIS_URL, queue)
        celery_yaml.write_text(yaml.safe_dump({"execution": {"config": execution}}))

        env = {
            "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_POSTGRES_URL": dagster_url,
            "DAGSTER_ARTIFACT_DIR": str(workdir / "artifacts"),
            "PONTE_DATABASE_URL": store_url,
            "PONTE_EXECUTOR": "celery",
            "PONTE_CELERY_BROKER_URL": REDIS_URL,
            "PONTE_CELERY_BACKEND_URL": REDIS_URL,
            "PONTE_CELERY_QUEUE": queue,
            **(extra_env or {}),
        }
        worker_env = {
            **os.environ,
            **env,
            # the worker imports job modules by name (tests.deploy.jobs, orchestration.definitions)
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            # dagster-celery runs `celery` from PATH: the one beside this interpreter
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
        }
        with _environment(env):
            # create Dagster's tables once, here, before the worker opens the same storage
            instance = DagsterInstance.from_config(str(dagster_home))
            worker = CeleryWorker(
                config_yaml=celery_yaml,
                queue=queue,
                env=worker_env,
                log_path=workdir / "celery-worker.log",
                concurrency=concurrency,
            )
            worker.start()
            worker.wait_ready()
            yield Topology(
                dagster_home=dagster_home,
                dagster_url=dagster_url,
                store_url=store_url,
                broker_url=REDIS_URL,
                queue=queue,
                instance=instance,
                worker=worker,
                env=env,
            )
    finally:
        if worker is not None:
            worker.stop()
        if instance is not None:
            instance.dispose()
        forget_queue(queue)
        if store_db is not None:
            drop_database(store_db)
        drop_database(dagster_db)

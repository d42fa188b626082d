"""`ponte sync …` as a Dagster run, so a manual re-sync shows in the UI's run history like any other.

All four sync commands (``import``, ``dispatch``, ``backsync``, ``assistance``) choose where they run:

* **a Dagster run** when a Dagster instance is configured (``DAGSTER_HOME`` set) and ``--local`` is not
  given, or whenever ``--dagster`` is given (then ``DAGSTER_HOME`` must be set). The run is the flow's
  own job (``customer_sale_import``, ``envelope_dispatch``, ``signature_backsync``,
  ``assistance_sync_job``) for the tenant's partition, executed by this process against that instance
  (``execute_in_process``), with the same run config a launchpad run takes (checked before the run
  starts: a refused config creates no run) and the tags ``ponte/source: cli``, ``ponte/trigger: manual``
  and the tenant, mode, since and ids. The command waits for it and prints what it did, rebuilt from
  what the run recorded (its materializations' metadata; back-sync: its step's output): the same table
  and ``--json`` keys as a local run, with ``dagster_run_id`` added to the JSON of dispatch, back-sync
  and assistance. The UI shows the run, its logs, materializations and checks.
* **in this process only** (with progress bars where the flow has them) with ``--local``, or when no
  instance is configured. With ``--local`` and an instance configured, what moved is recorded as a
  runless materialization of the tenant's partition (``ponte/source: cli-local``;
  :mod:`orchestration.runless`), so the asset graph still shows it.
"""

from __future__ import annotations

import os
from typing import Any

from orchestration.cli.console import err_console, fail

SOURCE_TAGS = {"ponte/source": "cli", "ponte/trigger": "manual"}


def dagster_instance(local: bool, dagster: bool) -> Any | None:
    """The Dagster instance a sync runs on, or None to run locally (see the module docstring)."""
    if local and dagster:
        fail("choose --local or --dagster, not both")
    if local:
        return None
    if not os.environ.get("DAGSTER_HOME"):
        if dagster:
            fail("--dagster needs a Dagster instance: set DAGSTER_HOME (the folder holding dagster.yaml), "
                 "or run here with --local")
        return None
    from dagster import DagsterInstance

    return DagsterInstance.get()


def _config_reason(message: str) -> str:
    """The reason of one config error: a validator's own sentence (``ImportConfig: since: …``) without
    Dagster's wrapping and stack trace, or Dagster's one line for a wrong type or unknown field."""
    lines = [line.strip() for line in message.split("Stack Trace:")[0].strip().splitlines() if line.strip()]
    last = lines[-1] if lines else message.strip()
    return last.split("PostProcessingError: ", 1)[-1]


def run_job(instance: Any, job_name: str, tenant: str, step: str, config: dict[str, Any],
            tags: dict[str, str], *, quiet: bool = False) -> Any:
    """Run ``job_name`` for ``tenant``'s partition on ``instance`` and wait; a run config Dagster refuses
    at launch, or a failed step, ends the command with the reason (exit 2)."""
    from dagster import DagsterEventType, DagsterInvalidConfigError

    from orchestration.definitions import defs
    from orchestration.partitions import ensure_tenant_partitions

    job = defs.resolve_job_def(job_name)
    ensure_tenant_partitions(instance, [tenant])  # a tenant file added since the sensor's last tick
    run_tags = {**SOURCE_TAGS, "ponte/tenant": tenant, **{k: v for k, v in tags.items() if v}}
    if not quiet:
        err_console.print(f"running {job_name} for {tenant} as a Dagster run (--local runs here instead)")
    try:
        result = job.execute_in_process(run_config={"ops": {step: {"config": config}}}, instance=instance,
                                        partition_key=tenant, tags=run_tags, raise_on_error=False)
    except DagsterInvalidConfigError as exc:
        reasons = [_config_reason(error.message) for error in exc.errors] or [str(exc)]
        fail("Dagster refused the run config: " + "; ".join(reasons))
        raise  # unreachable: fail exits
    if not quiet:
        err_console.print(f"Dagster run {result.run_id}: {'success' if result.success else 'failure'}")
    if not result.success:
        failures = [event for event in result.all_events if event.event_type == DagsterEventType.STEP_FAILURE]
        reason = "the run failed"
        if failures:
            data = failures[-1].step_failure_data
            user = data.user_failure_data
            reason = (user.description if user and user.description else None) or (
                data.error.message.strip() if data.error else reason)
        fail(f"Dagster run {result.run_id} failed: {reason}")
    return result


def materializations(result: Any, step: str) -> dict[str, dict[str, Any]]:
    """Each materialized asset of ``step`` (its key, as a/b) → its metadata values."""
    return {
        event.asset_key.to_user_string(): {key: value.value for key, value in event.metadata.items()}
        for event in result.asset_materializations_for_node(step)
    }

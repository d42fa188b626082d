"""What the webhook sensors share: which tenants have inbox events a run would take now, and run keys
that never leave an event stuck.

A sensor requests a run per tenant with due events. Two things must hold:

* **No stuck event.** A run key made only of the newest event id repeats, tick after tick, when a run
  failed before claiming its events or an event is waiting out its retry delay; Dagster skips a run
  key it has seen, so such events waited for a *newer* webhook. Here an event is "due" by the same test
  the claim uses (``pipelines/store/claims.py``: new or failed and available now, or a lease that ran
  out), and the key also carries the claim attempts (a run that claimed and failed makes a new key) and
  a five-minute bucket (a run that died before claiming is retried within five minutes).
* **No pile of empty runs, no waiting behind a busy one.** Each run starts a process (seconds). A
  tenant whose run is still waiting to start (queued, not started, starting) gets no second one: that
  run has not drained yet and will take the new events. A run already executing does not block the
  next: it may have drained before these events arrived, and starting the next run while it finishes
  hides the seconds a run takes to start (measured: p95 webhook-to-CRM 14.9 s when every run waited
  for the previous one to end; 11.8 and 13.6 s with runs overlapping, 7.5 s with the deploy example's
  one-second dequeue).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from dagster import (
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)
from sqlalchemy import ColumnElement, func, select

from pipelines.store import InboxEvent, Store, claimable, utcnow

#: a run that died before it claimed anything is asked for again after at most this long
RETRY_BUCKET_SECONDS = 300
#: runs that have not started executing yet: they will still see whatever is in the inbox
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
#: every run not finished (for flows that must run one at a time per tenant, e.g. dispatch)
ACTIVE = [*WAITING, DagsterRunStatus.STARTED]


def due_by_tenant(store: Store, wanted: ColumnElement[bool]) -> list[tuple[str, int, int]]:
    """(tenant, newest due event id, claim attempts so far) for events matching ``wanted`` that a claim
    would take now."""
    due = claimable(InboxEvent, utcnow())
    with store.session() as session:
        rows = session.execute(
            select(InboxEvent.tenant, func.max(InboxEvent.id), func.sum(InboxEvent.attempts))
            .where(due, wanted)
            .group_by(InboxEvent.tenant)
        ).all()
    return [(tenant, int(last), int(attempts or 0)) for tenant, last, attempts in rows]


def busy_tenants(
    context: SensorEvaluationContext, job_name: str, statuses: Sequence[DagsterRunStatus] = WAITING
) -> set[str]:
    """Tenants (partitions) with a run of ``job_name`` in one of ``statuses`` (default: not executing yet)."""
    runs = context.instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=list(statuses)))
    return {run.tags.get("dagster/partition", "") for run in runs}


def inbox_run_requests(
    context: SensorEvaluationContext,
    store: Store,
    *,
    job_name: str,
    wanted: ColumnElement[bool],
    key_prefix: str,
    run_config: dict[str, Any],
    known_tenants: Sequence[str] | None = None,
    nothing: str = "no new webhooks",
    now: float | None = None,
) -> SensorResult | SkipReason:
    """One run request per tenant with due events and no run of the job still waiting to start."""
    due = due_by_tenant(store, wanted)
    if known_tenants is not None:
        due = [row for row in due if row[0] in set(known_tenants)]
    if not due:
        return SkipReason(nothing)
    busy = busy_tenants(context, job_name)
    bucket = int((time.time() if now is None else now) // RETRY_BUCKET_SECONDS)
    requests = [
        RunRequest(
            run_key=f"{key_prefix}-{tenant}-{last_id}-{attempts}-{bucket}",
            partition_key=tenant,
            run_config=run_config,
            tags={"ponte/trigger": "webhook"},
        )
        for tenant, last_id, attempts in due
        if tenant not in busy
    ]
    if not requests:
        return SkipReason(f"webhooks waiting for the run about to start ({', '.join(sorted(busy))})")
    return SensorResult(run_requests=requests)

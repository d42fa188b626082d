"""The webhook sensors never leave an inbox event waiting for a newer webhook, and never pile runs up.

Run keys matter because the Dagster daemon skips a run key it has seen: a key made of the newest event
id alone repeated forever when a run died before claiming its events, or an event was waiting out its
retry delay (seen in the webhook-to-CRM latency benchmark).
"""

from __future__ import annotations

import uuid

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, SkipReason, build_sensor_context

from orchestration.inbox_sensing import RETRY_BUCKET_SECONDS, inbox_run_requests
from pipelines.store.claims import claim, release
from pipelines.store.db import Store
from pipelines.store.inbox import store_event
from pipelines.store.models import InboxEvent

JOB = "signature_backsync"
WANTED = InboxEvent.connector == "docusign"
NOW = 1_800_000_000.0


def _event(store: Store, tenant: str = "demo") -> int:
    stored = store_event(store, tenant=tenant, connector="docusign", event_id=str(uuid.uuid4()),
                         event_type="envelope-completed", body=b"{}")
    assert stored.id is not None
    return stored.id


def _run(instance: DagsterInstance, status: DagsterRunStatus, tenant: str) -> None:
    instance.add_run(DagsterRun(job_name=JOB, run_id=str(uuid.uuid4()), status=status,
                                tags={"dagster/partition": tenant}))


def _keys(store: Store, instance: DagsterInstance, now: float = NOW) -> list[str] | str:
    result = inbox_run_requests(build_sensor_context(instance=instance), store, job_name=JOB, wanted=WANTED,
                                key_prefix="backsync", run_config={}, now=now)
    if isinstance(result, SkipReason):
        return result.skip_message or ""
    return [r.run_key or "" for r in result.run_requests or []]


def test_an_event_left_new_by_a_dead_run_gets_a_new_run_key_within_the_retry_bucket(store: Store) -> None:
    _event(store)
    with DagsterInstance.ephemeral() as instance:
        first = _keys(store, instance)
        assert isinstance(first, list) and len(first) == 1
        assert _keys(store, instance, NOW + 1) == first  # same tick window: the daemon dedupes it
        later = _keys(store, instance, NOW + RETRY_BUCKET_SECONDS)
        assert isinstance(later, list) and later != first  # the run died: asked for again


def test_a_run_that_claimed_and_failed_makes_a_new_key_and_waits_out_the_retry_delay(store: Store) -> None:
    event_id = _event(store)
    with DagsterInstance.ephemeral() as instance:
        before = _keys(store, instance)
        [claimed] = claim(store, InboxEvent, worker="w1", tenant="demo", connector="docusign")
        assert claimed == event_id
        assert release(store, InboxEvent, event_id, worker="w1", status="failed", retry_in_seconds=600)
        assert _keys(store, instance) == "no new webhooks"  # not due yet: no empty run
        assert release(store, InboxEvent, event_id, worker="w1", status="failed") is False  # lease gone
        with store.session() as session:
            row = session.get(InboxEvent, event_id)
            assert row is not None
            row.available_at = row.received_at  # the retry delay is over
        after = _keys(store, instance)
        assert isinstance(after, list) and after and after != before


def test_a_tenant_whose_run_has_not_started_gets_no_second_run_but_others_do(store: Store) -> None:
    _event(store, "demo")
    _event(store, "other")
    with DagsterInstance.ephemeral() as instance:
        _run(instance, DagsterRunStatus.NOT_STARTED, "demo")
        keys = _keys(store, instance)
        assert isinstance(keys, list) and len(keys) == 1 and keys[0].startswith("backsync-other-")
        _run(instance, DagsterRunStatus.STARTING, "other")
        skipped = _keys(store, instance)
        assert isinstance(skipped, str) and "about to start" in skipped


def test_a_run_already_executing_does_not_hold_back_the_next(store: Store) -> None:
    """It may have drained before these events arrived; the next run starts while it finishes."""
    _event(store, "demo")
    with DagsterInstance.ephemeral() as instance:
        _run(instance, DagsterRunStatus.STARTED, "demo")
        keys = _keys(store, instance)
        assert isinstance(keys, list) and len(keys) == 1 and keys[0].startswith("backsync-demo-")

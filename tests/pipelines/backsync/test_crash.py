"""A crash between storing a webhook and finishing its processing loses nothing and doubles nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from pipelines.backsync.flow import drain_inbox
from pipelines.store.models import Envelope, InboxEvent, OutboxItem
from tests.pipelines.backsync.conftest import Hub
from tests.pipelines.backsync.helpers import crm_contracts, send_envelope


class Killed(BaseException):
    """Stands for SIGKILL: no except clause of the flow catches it, nothing is cleaned up."""


def test_a_worker_killed_mid_batch_leaves_its_events_to_the_next_worker(hub: Hub) -> None:
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=1)
    hub.sb.sign(env.provider_envelope_id, "client")
    hub.sb.dispatcher.wait_for(
        lambda attempts: any(a.event == "envelope-completed" and a.outcome == "delivered" for a in attempts))
    time.sleep(0.1)

    def dying_opener(key: str):
        raise Killed(f"killed while opening {key}")  # after the state moved, before the PDF came home

    with pytest.raises(Killed):
        drain_inbox(hub.store, hub.tenant, dying_opener, worker="worker-a", lease_seconds=60)
    with hub.store.session() as session:
        stuck = list(session.scalars(select(InboxEvent)))
        assert stuck and all(e.status == "processing" and e.claimed_by == "worker-a" for e in stuck)
        assert session.get(Envelope, env.id).status == "completed"  # applied, but not finalized

    # while worker A's lease is alive nobody else takes the events
    assert drain_inbox(hub.store, hub.tenant, hub.opener, worker="worker-b").events == 0
    with hub.store.session() as session:  # worker A's lease runs out (no waiting: machines are noisy)
        session.execute(update(InboxEvent).values(claimed_until=datetime.now(UTC) - timedelta(seconds=1)))
    report = drain_inbox(hub.store, hub.tenant, hub.opener, worker="worker-b")
    assert report.events == len(stuck) and report.completed == [env.contract_id]
    assert drain_inbox(hub.store, hub.tenant, hub.opener, worker="worker-c").events == 0

    with hub.store.session() as session:
        events = list(session.scalars(select(InboxEvent)))
        assert all(e.status == "done" and e.attempts == 2 for e in events)
        uploads = list(session.scalars(select(OutboxItem).where(OutboxItem.action == "upload_contrato")))
        assert len(uploads) == 1 and uploads[0].status == "done"
        done = session.get(Envelope, env.id)
        reservation = done.details["reservation_id"]
    assert [c["assinado"] for c in crm_contracts(hub.sb, reservation)] == ["S"]

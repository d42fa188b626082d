"""Replaying a back-sync dead letter through the flow's own path; the provider is read again first.

``envelope:<id>``: the envelope is re-read at its provider and finished (signed PDF stamped and sent to
the CRM once) by :func:`pipelines.backsync.flow.resync`, as the poll does. ``inbox:<id>``: the stored
delivery is made ready again and drained alone by :func:`pipelines.backsync.flow.drain_inbox`, as if it
had just arrived.
"""

from __future__ import annotations

from sqlalchemy import update

from connectors.runtime import Connector
from pipelines.backsync.apply import FLOW
from pipelines.backsync.flow import BacksyncReport, drain_inbox, resync
from pipelines.connections import TenantConnectors, open_connector
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import DeadLetter, InboxEvent, utcnow
from ponte import ConfigurationError, DataError
from schemas import load_tenant


def replay_backsync(store: Store, letter: DeadLetter, run_id: str | None) -> None:
    kind, _, ident = letter.record_key.partition(":")
    if not ident.isdigit() or kind not in ("envelope", "inbox"):
        raise ConfigurationError(
            f"unknown back-sync dead letter {letter.record_key!r}",
            hint="back-sync dead letters are envelope:<id> or inbox:<id>",
        )
    tenant = load_tenant(letter.tenant)

    def opener(key: str) -> Connector:
        return open_connector(tenant, key, store=store)

    if kind == "envelope":
        with TenantConnectors(opener=opener) as connectors:
            failure = resync(store, tenant, int(ident), connectors, BacksyncReport(tenant.id), run_id=run_id)
        if failure is not None and failure.retryable:
            raise failure  # nothing was decided: say why; the dead letter stays open
        return
    with store.session() as session:
        found = session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == int(ident), InboxEvent.tenant == tenant.id)
            .values(status="new", available_at=utcnow(), claimed_by=None, claimed_until=None)
        ).rowcount
    if not found:
        raise DataError(
            f"the stored delivery {ident} of dead letter {letter.id} is gone",
            hint="nothing to replay; discard the dead letter",
        )
    report = drain_inbox(store, tenant, opener, event_ids=[int(ident)], run_id=run_id)
    if report.failed == 0:
        deadletters.resolve(store, tenant.id, FLOW, letter.record_key)

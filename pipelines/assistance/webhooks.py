"""Stored webhooks: claim the assistance events from the inbox and hand each request to its direction.

CV CRM ``AS`` events (a new assistência) go CRM -> Sienge (``to_sienge.py``), Sienge's ``<prefix>_*``
hooks go Sienge -> CRM (``from_sienge.py``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select

from pipelines.assistance.core import CRM, CRM_EVENT_PREFIX, ERP
from pipelines.assistance.from_sienge import SiengeToCrm
from pipelines.assistance.machine import RANK, event_status
from pipelines.assistance.to_sienge import CrmToSienge
from pipelines.store.claims import claim, release
from pipelines.store.inbox import load_events
from pipelines.store.models import InboxEvent
from schemas.canonical import AssistanceStatus


def _body(event: InboxEvent) -> dict[str, Any]:
    try:
        data = json.loads(event.body)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


class InboxEvents(CrmToSienge, SiengeToCrm):
    """The webhook mode of a run (:meth:`process_events`)."""

    def _pending_event_ids(self, connector: str, prefixes: tuple[str, ...]) -> list[int]:
        """Plan mode: the events a real run would take, without claiming them."""
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(InboxEvent.id)
                    .where(
                        InboxEvent.tenant == self.tenant.id,
                        InboxEvent.connector == connector,
                        InboxEvent.status.in_(("new", "failed")),
                        or_(*(InboxEvent.event_type.startswith(p) for p in prefixes)),
                    )
                    .order_by(InboxEvent.id)
                    .limit(500)
                )
            )

    def _take(self, connector: str, prefixes: tuple[str, ...]) -> list[InboxEvent]:
        if self.request.plan:
            ids = self._pending_event_ids(connector, prefixes)
        else:
            ids = claim(
                self.store,
                InboxEvent,
                worker=self.worker,
                limit=500,
                tenant=self.tenant.id,
                connector=connector,
                event_type_prefixes=prefixes,
            )
        return load_events(self.store, ids) if ids else []

    def _finish(self, events: list[InboxEvent], failed: set[int], error: str | None = None) -> None:
        if self.request.plan:
            return
        for event in events:
            if event.id in failed:
                release(
                    self.store,
                    InboxEvent,
                    event.id,
                    worker=self.worker,
                    status="failed",
                    error=(error or "transient failure")[:500],
                    retry_in_seconds=60,
                )
            else:
                release(self.store, InboxEvent, event.id, worker=self.worker, status="done")

    def process_events(self) -> None:
        """Stored webhooks: CV CRM ``AS`` (new assistência) first, then Sienge's assistance hooks.

        Several events about one request collapse into one re-read; a transient failure leaves its
        events to be claimed again in a minute, anything else is a dead letter (events done).
        """
        crm_events = self._take(CRM, (CRM_EVENT_PREFIX,))
        by_crm: dict[str, list[InboxEvent]] = {}
        ignored: list[InboxEvent] = []
        for event in crm_events:
            subject = _body(event).get("id")
            if subject in (None, ""):
                ignored.append(event)
            else:
                by_crm.setdefault(str(subject), []).append(event)
        failed: set[int] = set()
        for crm_id, events in by_crm.items():
            if self.send_to_sienge(crm_id) == "retry":
                failed.update(e.id for e in events)
        self._finish(crm_events, failed)

        prefix = self.event_prefix
        erp_events = self._take(ERP, (f"{prefix}_",))
        by_erp: dict[str, tuple[AssistanceStatus | None, list[InboxEvent]]] = {}
        for event in erp_events:
            status = event_status(event.event_type, prefix)
            subject = _body(event).get("technicalAssistanceId")
            if status is None or subject in (None, ""):
                ignored.append(event)
                continue
            hint, events = by_erp.get(str(subject), (None, []))
            if hint is None or RANK[status] > RANK[hint]:
                hint = status
            by_erp[str(subject)] = (hint, [*events, event])
        failed = set()
        for sienge_id, (hint, events) in by_erp.items():
            if self.apply_sienge(sienge_id, hint) == "retry":
                failed.update(e.id for e in events)
        self._finish(erp_events, failed)
        self.report.events += len(crm_events) + len(erp_events)
        self.report.ignored += len(ignored)
        if ignored and not self.request.plan:
            for event in ignored:
                self._audit(
                    "webhook_ignored", str(event.id), f"{event.connector}:inbox", None, type=event.event_type
                )

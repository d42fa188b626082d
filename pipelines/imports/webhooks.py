"""Single-record imports triggered by Sienge hooks (CUSTOMER_*, SALES_CONTRACT_*, UNIT_*).

Webhooks are hints, reads are truth: a hook carries only an id, so the record is re-read from Sienge and
imported through the same code path as a scheduled run. Events are claimed with a lease; a crash leaves
them to be claimed again, and the import itself is idempotent, so nothing is lost or doubled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from connectors.runtime import Connector
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.imports.report import ImportReport
from pipelines.store.claims import claim, release, worker_name
from pipelines.store.db import Store
from pipelines.store.inbox import load_events
from pipelines.store.models import InboxEvent
from pipelines.store.repos import audit
from ponte import get_logger
from schemas import TenantConfig

log = get_logger("import.webhooks")

#: event prefix -> (entity, id field in the body)
EVENTS = {
    "CUSTOMER_": ("customer", "customerId"),
    "SALES_CONTRACT_": ("sale", "salesContractId"),
    "UNIT_": ("unit", "unitId"),
}


@dataclass
class WebhookImportResult:
    events: int = 0
    ignored: int = 0
    report: ImportReport | None = None
    by_entity: dict[str, list[str]] = field(default_factory=dict)


def _entity_of(event: InboxEvent) -> tuple[str, str] | None:
    event_type = event.event_type or ""
    for prefix, (entity, id_field) in EVENTS.items():
        if event_type.startswith(prefix):
            try:
                record_id = json.loads(event.body)[id_field]
            except (ValueError, KeyError, TypeError):
                return None
            return entity, str(record_id)
    return None



def process_sienge_events(
    store: Store,
    tenant: TenantConfig,
    sienge: Connector,
    cvcrm: Connector,
    *,
    limit: int = 200,
    run_id: str | None = None,
) -> WebhookImportResult:
    worker = worker_name()
    ids = claim(
        store,
        InboxEvent,
        worker=worker,
        limit=limit,
        tenant=tenant.id,
        connector="sienge",
        event_type_prefixes=tuple(EVENTS),
    )
    result = WebhookImportResult(events=len(ids))
    if not ids:
        return result
    events = load_events(store, ids)
    wanted: dict[str, list[str]] = {}
    ignored: list[InboxEvent] = []
    for event in events:
        target = _entity_of(event)
        if target is None or (event.event_type or "").endswith(("_REMOVED", "_DISABLED")):
            ignored.append(event)  # a removed record cannot be re-read; the CRM keeps its history
            continue
        entity, record_id = target
        if record_id not in wanted.setdefault(entity, []):
            wanted[entity].append(record_id)
    result.by_entity = wanted
    try:
        if wanted:
            entities = tuple(e for e in ("enterprise", "unit", "customer", "sale") if e in wanted)
            result.report = run_import(
                store, tenant, sienge, cvcrm, ImportRequest(ids=wanted, entities=entities, run_id=run_id)
            )
    except Exception as exc:
        for event in events:
            release(
                store,
                InboxEvent,
                event.id,
                worker=worker,
                status="failed",
                error=str(exc)[:500],
                retry_in_seconds=60,
            )
        raise
    with store.session() as session:
        for event in ignored:
            audit(
                session,
                tenant=tenant.id,
                flow="import",
                action="webhook_ignored",
                entity="inbox",
                entity_id=str(event.id),
                details={"event_type": event.event_type},
            )
    for event in events:
        release(store, InboxEvent, event.id, worker=worker, status="done")
    result.ignored = len(ignored)
    return result

"""What every part of the assistance sync shares: names, the run request, and one run's state.

:class:`AssistanceCore` holds one run for one tenant (store, connectors, request, report, mappings) and
the bookkeeping all directions do the same way: id map look-ups and writes, audit rows, dead letters,
and writing Sienge's id on the CRM record. The directions build on it: CRM -> Sienge in
``to_sienge.py``, Sienge -> CRM in ``from_sienge.py``, reconciliation in ``reconcile.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select

from connectors.runtime import Connector
from mappings import MappingContext, load_mapping
from pipelines.assistance.report import AssistanceReport
from pipelines.store import deadletters
from pipelines.store.claims import worker_name
from pipelines.store.db import Store
from pipelines.store.models import IdMap
from pipelines.store.repos import audit, get_xref, put_xref
from ponte import PonteError, get_logger
from schemas import TenantConfig

log = get_logger("assistance")

FLOW = "assistance"
ENTITY = "assistance"
CRM, ERP = "cvcrm", "sienge"
#: CV CRM webhook event types are "<funcionalidade>:<gatilho>"; AS = assistência
CRM_EVENT_PREFIX = "AS:"
DEFAULT_EVENT_PREFIX = "TECHNICAL_ASSISTANCE"

TO_CANONICAL = "cvcrm/assistencia_to_assistance"
TO_SIENGE = "sienge/assistance_to_technical_assistance"
FROM_SIENGE = "sienge/technical_assistance_to_assistance"
TO_CRM_UPDATE = "cvcrm/assistance_to_assistencia_update"

#: downloads one attachment (CV CRM links are plain URLs); injectable for tests and other transports
Fetcher = Callable[[str], bytes]


@dataclass
class AssistanceRequest:
    """What to do in one run. Default: process stored webhooks (the sensor's mode)."""

    events: bool = True
    #: also read the CRM for active assistências never sent (a poll, for tenants without webhooks)
    poll: bool = False
    #: compare both sides, repair and report drift
    reconcile: bool = False
    plan: bool = False
    crm_ids: list[str] = field(default_factory=list)
    sienge_ids: list[str] = field(default_factory=list)
    run_id: str | None = None


class AssistanceCore:
    """One run for one tenant. Connectors are opened by the caller (Dagster, CLI, tests)."""

    def __init__(
        self,
        store: Store,
        tenant: TenantConfig,
        sienge: Connector,
        cvcrm: Connector,
        request: AssistanceRequest | None = None,
        fetch: Fetcher | None = None,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.sienge = sienge
        self.cvcrm = cvcrm
        self.request = request or AssistanceRequest()
        #: the connector runtime's one download path: CV CRM's hosts only, on every redirect hop too, no
        #: credentials sent off the CRM's API origin, the tenant's size limit while the file streams
        self.fetch = fetch or partial(cvcrm.fetch_url, what="attachment", credentials=False)
        self.options = tenant.options.assistance
        self.report = AssistanceReport(tenant=tenant.id, plan=self.request.plan)
        self.context = MappingContext(lookup=self._lookup, tenant=tenant)
        self.worker = worker_name()
        self._mappings: dict[str, Any] = {}

    @property
    def event_prefix(self) -> str:
        """The tenant's Sienge assistance event prefix (configurable: Sienge's public API has none)."""
        return str(self.sienge.values.get("assistance_event_prefix") or DEFAULT_EVENT_PREFIX)

    def _mapping(self, name: str) -> Any:
        if name not in self._mappings:
            self._mappings[name] = load_mapping(name)
        return self._mappings[name]

    def lineage(self, *names: str) -> str:
        """Mapping versions as the store keeps them (``1+1``, like the import; columns are short).

        The full ``name@version`` lineage goes into each audit row's details.
        """
        return "+".join(str(self._mapping(n).version) for n in names)

    def full_lineage(self, *names: str) -> list[str]:
        return [self._mapping(n).lineage for n in names]

    def _lookup(self, entity: str, source: str, source_id: str, target: str) -> str | None:
        """Id map lookup in both directions (the import stores people as sienge -> cvcrm)."""
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, entity, source, str(source_id), target)
            if row is not None and row.target_id:
                return row.target_id
            reverse = session.scalars(
                select(IdMap.source_id).where(
                    IdMap.tenant == self.tenant.id,
                    IdMap.entity == entity,
                    IdMap.source_system == target,
                    IdMap.target_system == source,
                    IdMap.target_id == str(source_id),
                )
            ).first()
        return reverse

    def _dead(self, record_key: str, error: PonteError, payload: dict[str, Any], mapping: str | None) -> None:
        error.context(tenant=self.tenant.id)
        self.report.failed.append((record_key, str(error)))
        log.warning("assistance %s failed: %s", record_key, error)
        if self.request.plan or error.retryable:
            return
        deadletters.put(
            self.store,
            tenant=self.tenant.id,
            flow=FLOW,
            record_key=record_key,
            error=error,
            payload=payload,
            mapping_version=mapping,
            run_id=self.request.run_id,
        )

    def _resolved(self, record_key: str) -> None:
        if not self.request.plan:
            deadletters.resolve(self.store, self.tenant.id, FLOW, record_key)

    def _audit(self, action: str, entity_id: str, source: str, mapping: str | None, **details: Any) -> None:
        with self.store.session() as session:
            audit(
                session,
                tenant=self.tenant.id,
                flow=FLOW,
                action=action,
                entity=ENTITY,
                entity_id=entity_id,
                source_record=source,
                mapping_version=mapping,
                run_id=self.request.run_id,
                details=details,
            )

    def _remember(self, crm_id: str, sienge_id: str, digest: str | None, mapping: str) -> None:
        if self.request.plan:
            return
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, ENTITY, CRM, crm_id, ERP)
            if row is not None and row.target_id == sienge_id:
                return
            put_xref(session, self.tenant.id, ENTITY, CRM, crm_id, ERP, sienge_id, digest, mapping)

    def _link(self, crm_id: str, sienge_id: str, mapping: str) -> None:
        """Write Sienge's id on the CRM record ("assistance data"); a PUT, safe to repeat."""
        if self.request.plan:
            self.report.linked.append(crm_id)
            return
        self.cvcrm.call("update_assistencia", {"idassistencia": int(crm_id), "idassistencia_erp": sienge_id})
        self._remember(crm_id, sienge_id, None, mapping)
        self._audit(
            "linked", crm_id, f"sienge:technical_assistance:{sienge_id}", mapping, sienge_id=sienge_id
        )
        self.report.linked.append(crm_id)

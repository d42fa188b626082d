"""Technical-assistance sync between CV CRM and Sienge, both directions, plain Python: one run.

:class:`AssistanceSync` puts the parts together and :func:`run_assistance` runs it; each part has its
own file:

- ``to_sienge.py``: CRM -> Sienge, an assistência created in Sienge exactly once, Sienge's id written back;
- ``from_sienge.py``: Sienge -> CRM, Sienge's status moves the CRM record forward (``state.py``);
- ``reconcile.py``: both sides compared, what webhooks missed repaired, the drift reported;
- ``events.py``: stored webhooks claimed and routed to their direction;
- ``core.py``: names, :class:`AssistanceRequest` and the bookkeeping all of them share.

A bad record becomes a dead letter (flow ``assistance``) and never stops the batch; every write is
audited with the mapping that produced it. The names below stay importable from here.
"""

from __future__ import annotations

from connectors.runtime import Connector
from pipelines.assistance.core import (
    CRM,
    CRM_EVENT_PREFIX,
    DEFAULT_EVENT_PREFIX,
    ENTITY,
    ERP,
    FLOW,
    FROM_SIENGE,
    TO_CANONICAL,
    TO_CRM_UPDATE,
    TO_SIENGE,
    AssistanceRequest,
    Fetcher,
)
from pipelines.assistance.reconcile import Reconciliation
from pipelines.assistance.report import AssistanceReport
from pipelines.assistance.to_sienge import content_hash, missing_minimum_days, normalize_assistencia
from pipelines.assistance.webhooks import InboxEvents
from pipelines.store.db import Store
from schemas import TenantConfig

__all__ = [
    "CRM",
    "CRM_EVENT_PREFIX",
    "DEFAULT_EVENT_PREFIX",
    "ENTITY",
    "ERP",
    "FLOW",
    "FROM_SIENGE",
    "TO_CANONICAL",
    "TO_CRM_UPDATE",
    "TO_SIENGE",
    "AssistanceRequest",
    "AssistanceSync",
    "Fetcher",
    "content_hash",
    "missing_minimum_days",
    "normalize_assistencia",
    "run_assistance",
]


class AssistanceSync(Reconciliation, InboxEvents):
    """One run for one tenant. Connectors are opened by the caller (Dagster, CLI, tests)."""

    def run(self) -> AssistanceReport:
        for crm_id in self.request.crm_ids:
            self.send_to_sienge(str(crm_id))
        for sienge_id in self.request.sienge_ids:
            self.apply_sienge(str(sienge_id))
        if self.request.events:
            self.process_events()
        if self.request.poll and not self.request.reconcile:
            self.poll()
        if self.request.reconcile:
            self.reconcile()
        self.report.api_calls = {"sienge": self.sienge.api_calls, "cvcrm": self.cvcrm.api_calls}
        return self.report


def run_assistance(
    store: Store,
    tenant: TenantConfig,
    sienge: Connector,
    cvcrm: Connector,
    request: AssistanceRequest | None = None,
    fetch: Fetcher | None = None,
) -> AssistanceReport:
    """One assistance run for one tenant; safe to repeat (creates are exactly-once, moves idempotent)."""
    return AssistanceSync(store, tenant, sienge, cvcrm, request, fetch).run()

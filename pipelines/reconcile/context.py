"""What every drift check gets: the store, the tenant, its connectors (opened on first use, closed
together), the request and the report it adds rows to."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.connections import TenantConnectors
from pipelines.reconcile.report import DriftReport
from pipelines.store.db import Store
from schemas import TenantConfig


@dataclass
class ReconcileRequest:
    """Which drift kinds to check, and whether to repair what is safe (``dry_run``: report only)."""

    kinds: tuple[str, ...] = ()
    dry_run: bool = False
    #: send ready contracts nobody sent (kind ready_not_sent); None: the tenant's ``auto_send_missed``
    send_missed: bool | None = None
    run_id: str | None = None


@dataclass
class Reconciliation:
    store: Store
    tenant: TenantConfig
    connectors: TenantConnectors
    request: ReconcileRequest
    report: DriftReport
    #: CV CRM reservations read once per run (two checks walk them)
    _reservas: list[dict] | None = field(default=None, repr=False)

    @property
    def dry_run(self) -> bool:
        return self.request.dry_run

    @property
    def send_missed(self) -> bool:
        if self.request.send_missed is not None:
            return self.request.send_missed
        return self.tenant.options.auto_send_missed

    def reservas(self) -> list[dict]:
        if self._reservas is None:
            self._reservas = list(self.connectors("cvcrm").read("reservas"))
        return self._reservas

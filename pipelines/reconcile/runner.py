"""Runs the drift checks of one tenant, in order, each repairing what is safe; returns the drift table.

A check that cannot run (an outside system down, a bad credential) is recorded in ``report.errors`` and
the others go on: "could not look" is never reported as "no drift".
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.backsync.flow import ConnectorOpener
from pipelines.connections import TenantConnectors
from pipelines.reconcile import envelopes, imported, signed_pdfs, unsent
from pipelines.reconcile.context import ReconcileRequest, Reconciliation
from pipelines.reconcile.report import (
    ENVELOPE_STATUS,
    IMPORT_CONTENT,
    KINDS,
    READY_NOT_SENT,
    SIGNED_PDF_MISSING,
    DriftReport,
)
from pipelines.store.db import Store
from ponte import ConfigurationError, PonteError, get_logger
from schemas import TenantConfig

log = get_logger("reconcile")

CHECKS: dict[str, Callable[[Reconciliation], None]] = {
    ENVELOPE_STATUS: envelopes.check,
    SIGNED_PDF_MISSING: signed_pdfs.check,
    READY_NOT_SENT: unsent.check,
    IMPORT_CONTENT: imported.check,
}


def kinds_of(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The kinds asked for, in the order they run (empty: all); an unknown name is a usage error."""
    if not names:
        return KINDS
    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise ConfigurationError(f"unknown drift kind {', '.join(unknown)}", field="kind",
                                 hint=f"one of {', '.join(KINDS)}")
    return tuple(kind for kind in KINDS if kind in names)


def _needed(tenant: TenantConfig, kind: str) -> list[str]:
    """Connectors a kind cannot do without that the tenant lacks (the kind is then skipped, said why)."""
    wanted = {IMPORT_CONTENT: ["sienge", "cvcrm"]}.get(kind, ["cvcrm"])
    return [key for key in wanted if key not in tenant.connectors]


def run_reconcile(
    store: Store,
    tenant: TenantConfig,
    opener: ConnectorOpener,
    request: ReconcileRequest | None = None,
) -> DriftReport:
    """Compare Ponte's state with the providers' and the CRM's for ``tenant``; repair what is safe
    (unless ``request.dry_run``); return every drift found, repaired or not."""
    request = request or ReconcileRequest()
    kinds = kinds_of(request.kinds)
    report = DriftReport(tenant.id, dry_run=request.dry_run, kinds=kinds)
    with TenantConnectors(opener=opener) as connectors:
        ctx = Reconciliation(store, tenant, connectors, request, report)
        for kind in kinds:
            missing = _needed(tenant, kind)
            if missing:
                report.errors[kind] = f"not checked: the tenant has no {' / '.join(missing)} connector"
                continue
            try:
                CHECKS[kind](ctx)
            except PonteError as exc:
                exc.context(tenant=tenant.id)
                report.errors[kind] = str(exc)
                log.warning("reconcile %s: the %s check could not finish: %s", tenant.id, kind, exc)
    found = report.counts()
    log.info(
        "reconcile %s%s: %s; %d unrepaired%s",
        tenant.id,
        " (dry run)" if request.dry_run else "",
        ", ".join(f"{kind} {count}" for kind, count in found.items()),
        len(report.unrepaired),
        f"; checks that did not finish: {', '.join(report.errors)}" if report.errors else "",
    )
    return report

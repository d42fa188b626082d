"""Drift kind ``ready_not_sent``: a CRM contract ready to sign (validated, unsigned: dispatch's
``is_ready``) that was never sent: no envelope at Ponte and no open dispatch dead letter (a known
problem with its reason is not drift). Contracts the tenant's dispatch rules leave out of automatic
runs (``poll_refusal``) are not expected to be sent, so they are not drift either.

Reported only by default: sending a contract is not a repair a person did not ask for. Asked for
(``ponte reconcile --send-missed``, the asset's ``send_missed`` config, or a tenant option
``options.auto_send_missed: true``), the missed ones
go through dispatch itself (``run_dispatch``, ready-only), exactly once like any dispatch.
"""

from __future__ import annotations

from sqlalchemy import select

from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import FLOW as DISPATCH_FLOW
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.source import contracts_of, is_ready
from pipelines.dispatch.webhooks import poll_refusal
from pipelines.reconcile.context import Reconciliation
from pipelines.reconcile.report import READY_NOT_SENT, DriftRow
from pipelines.store import deadletters
from pipelines.store.models import Envelope
from ponte import NotFoundError, PonteError

KIND = READY_NOT_SENT
SENT = ("sent", "found", "already_sent")


def check(ctx: Reconciliation) -> None:
    tenant = ctx.tenant.id
    cvcrm = ctx.connectors("cvcrm")
    with ctx.store.session() as session:
        enveloped = set(session.scalars(select(Envelope.contract_id).where(Envelope.tenant == tenant)))
    letters = deadletters.open_keys(ctx.store, tenant, DISPATCH_FLOW, prefix="contract:")
    missed: dict[str, DriftRow] = {}
    checked = 0
    for reserva in ctx.reservas():
        try:
            contratos = contracts_of(cvcrm, reserva)
        except NotFoundError:
            continue  # removed between the listing and this read
        for contrato in contratos:
            checked += 1
            contract_id = str(contrato.get("idreservacontrato"))
            if not is_ready(contrato) or contract_id in enveloped or f"contract:{contract_id}" in letters:
                continue
            if poll_refusal(ctx.tenant, contrato) is not None:
                continue
            ref = f"{reserva['idreserva']}:{contract_id}"
            missed[ref] = ctx.report.add(
                KIND, f"contract:{contract_id}",
                f"reservation {reserva['idreserva']}, contract {contract_id} ({contrato.get('contrato') or '?'}) "
                "is validated and unsigned in the CRM but was never sent (no envelope, no dead letter)",
                action=f"reported only: send it with `ponte sync dispatch --tenant {tenant} --contract {ref}`",
            )
    ctx.report.checked[KIND] = checked
    if missed and ctx.send_missed and not ctx.dry_run:
        _send(ctx, missed)


def _send(ctx: Reconciliation, missed: dict[str, DriftRow]) -> None:
    """The tenant asked for missed contracts to be sent: dispatch them (ready-only: re-read first)."""
    request = DispatchRequest(contracts=list(missed), ready_only=True, run_id=ctx.request.run_id)
    by_contract = {ref.partition(":")[2]: row for ref, row in missed.items()}
    try:
        with TenantConnectors(ctx.tenant, ctx.store) as connectors:
            connectors.provide("cvcrm", ctx.connectors("cvcrm"))
            outcomes = run_dispatch(ctx.store, ctx.tenant, request, connectors).outcomes
    except PonteError as exc:  # a tenant-wide stop (no verified manager, package used up)
        for row in missed.values():
            row.action = f"auto_send_missed: dispatch stopped ({exc}); {row.action}"
        return
    for outcome in outcomes:
        row = by_contract.get(outcome.contract_id)
        if row is None:
            continue
        row.repaired = outcome.result in SENT
        row.action = (f"sent (auto_send_missed): envelope {outcome.envelope_id}" if row.repaired else
                      f"auto_send_missed: not sent ({outcome.result}{': ' + outcome.reason if outcome.reason else ''})")

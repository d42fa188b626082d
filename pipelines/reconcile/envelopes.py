"""Drift kind ``envelope_status``: an envelope Ponte still has as sent/delivered that the provider has
completed, voided, declined or expired (every webhook about it lost, and the poll not there yet).

Detector: the provider's current state, read as back-sync reads it (``read_provider``), folded through
the envelope state machine from Ponte's status. Repair: back-sync's own re-read of that envelope
(``resync``: the poll's and a dead letter's replay path), which applies the provider's state, closes or
opens the envelope's dead letter and, for a completion, brings the stamped signed PDF home.
"""

from __future__ import annotations

from sqlalchemy import select

from pipelines.backsync.flow import BacksyncReport, read_provider, resync
from pipelines.backsync.machine import ENVELOPE_TERMINAL, next_envelope_status
from pipelines.reconcile.context import Reconciliation
from pipelines.reconcile.report import ENVELOPE_STATUS
from pipelines.store.models import Envelope
from ponte import PonteError
from schemas.canonical import EnvelopeStatus

KIND = ENVELOPE_STATUS
#: statuses that say "out for signature" at Ponte (a draft was never sent, so it has nothing to drift)
WATCHED = (EnvelopeStatus.sent, EnvelopeStatus.delivered)


def provider_status(ctx: Reconciliation, env: Envelope) -> str:
    """Where the provider's events take the envelope from Ponte's status (terminal states absorb)."""
    status = str(env.status)
    for event in read_provider(ctx.connectors(env.provider), str(env.provider_envelope_id)):
        status = next_envelope_status(status, event.kind) or status
    return status


def _status_now(ctx: Reconciliation, envelope_id: int) -> tuple[str, bool]:
    """(status, signed PDF uploaded) as the store has it now."""
    with ctx.store.session() as session:
        env = session.get(Envelope, envelope_id)
        assert env is not None
        crm = (env.details or {}).get("crm") or {}
        return str(env.status), bool(env.signed_sha256 and crm.get("sha256") == env.signed_sha256)


def check(ctx: Reconciliation) -> None:
    tenant = ctx.tenant.id
    with ctx.store.session() as session:
        rows = list(session.scalars(
            select(Envelope)
            .where(Envelope.tenant == tenant, Envelope.status.in_(WATCHED),
                   Envelope.provider_envelope_id.is_not(None))
            .order_by(Envelope.id)
        ))
        session.expunge_all()
    ctx.report.checked[KIND] = len(rows)
    unreadable: list[str] = []
    for env in rows:
        try:
            theirs = provider_status(ctx, env)
        except PonteError as exc:
            unreadable.append(f"envelope {env.id}: {exc}")
            continue
        if theirs not in ENVELOPE_TERMINAL:
            continue
        row = ctx.report.add(
            KIND, f"envelope:{env.id}",
            f"contract {env.contract_id}: Ponte has the {env.provider} envelope {env.status}, the provider "
            f"has it {theirs}",
        )
        if ctx.dry_run:
            row.action = f"would apply {theirs} through back-sync's re-read (`ponte sync backsync --tenant " \
                         f"{tenant} --contract {env.contract_id}`)"
            continue
        failure = resync(ctx.store, ctx.tenant, env.id, ctx.connectors, BacksyncReport(tenant),
                         run_id=ctx.request.run_id)
        status, uploaded = _status_now(ctx, env.id)
        row.repaired = status == theirs
        if failure is not None:
            row.action = (f"back-sync's re-read failed ({failure}); status now {status}: see `ponte deadletter "
                          f"list --tenant {tenant} --flow backsync`")
        elif status == EnvelopeStatus.completed:
            row.action = "applied through back-sync: completed" + (
                ", signed PDF stamped and uploaded to the CRM" if uploaded else
                ", signed PDF not uploaded yet (the next back-sync poll finishes it)")
        else:
            row.action = f"applied through back-sync: now {status}"
    if unreadable:
        ctx.report.errors[KIND] = (f"{len(unreadable)} envelope(s) could not be read at the provider, first: "
                                   f"{unreadable[0]}")

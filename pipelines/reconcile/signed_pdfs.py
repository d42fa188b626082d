"""Drift kind ``signed_pdf_missing``: a completed envelope whose stamped signed PDF the CRM reservation
does not list.

Detector: the reservation's contracts in CV CRM (one read per reservation), looked for the signed upload
Ponte recorded (``details.crm``: its CRM contract id and file name, marked signed).

- Ponte never uploaded it (the finalization did not finish: the CRM or the provider's download failed,
  a crash): repaired through back-sync's own re-read and finalization (``resync``), whose upload goes
  through the outbox keyed by (tenant, contract, signed SHA-256), so it reaches the CRM exactly once.
- Ponte uploaded it and the CRM no longer lists it (removed in the CRM): reported only. The outbox holds
  that upload as done, so back-sync never sends it twice; whether the file should be there again is a
  person's call, not a repair.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pipelines.backsync.completion import reservation_of
from pipelines.backsync.flow import BacksyncReport, resync
from pipelines.dispatch.source import contracts_of
from pipelines.reconcile.context import Reconciliation
from pipelines.reconcile.report import SIGNED_PDF_MISSING
from pipelines.store.models import Envelope
from ponte import NotFoundError, PonteError
from schemas.canonical import EnvelopeStatus

KIND = SIGNED_PDF_MISSING


def _uploaded(env: Envelope) -> dict[str, Any] | None:
    """What Ponte recorded of this envelope's signed upload, or None when it never uploaded it."""
    crm = (env.details or {}).get("crm") or {}
    if env.signed_sha256 and crm.get("sha256") == env.signed_sha256:
        return crm
    return None


def listed(contratos: list[dict[str, Any]], upload: dict[str, Any]) -> bool:
    """Whether the reservation lists Ponte's signed upload (by its CRM id, else by its file name)."""
    for item in contratos:
        if str(item.get("assinado", "")).upper() != "S":
            continue
        if upload.get("contrato") and str(item.get("idreservacontrato")) == str(upload["contrato"]):
            return True
        if upload.get("name") and item.get("contrato") == upload["name"]:
            return True
    return False


class _Reservations:
    """Each reservation's contracts, read once per run."""

    def __init__(self, ctx: Reconciliation) -> None:
        self.ctx = ctx
        self.known: dict[str, list[dict[str, Any]] | None] = {}

    def __call__(self, reservation: str, *, fresh: bool = False) -> list[dict[str, Any]] | None:
        if fresh or reservation not in self.known:
            try:
                self.known[reservation] = contracts_of(self.ctx.connectors("cvcrm"), {"idreserva": reservation})
            except NotFoundError:
                self.known[reservation] = None
        return self.known[reservation]


def check(ctx: Reconciliation) -> None:
    tenant = ctx.tenant.id
    with ctx.store.session() as session:
        rows = list(session.scalars(
            select(Envelope)
            .where(Envelope.tenant == tenant, Envelope.status == EnvelopeStatus.completed)
            .order_by(Envelope.id)
        ))
        session.expunge_all()
    ctx.report.checked[KIND] = len(rows)
    contracts = _Reservations(ctx)
    for env in rows:
        record = f"envelope:{env.id}"
        show = f"`ponte envelopes show {env.contract_id} --tenant {tenant}`"
        reservation = reservation_of(env)
        if reservation is None:
            ctx.report.add(KIND, record, f"contract {env.contract_id}: completed, but the envelope names no CRM "
                           "reservation to hold the signed PDF",
                           action=f"reported only: attach the signed PDF in CV CRM by hand ({show})")
            continue
        upload = _uploaded(env)
        found = contracts(reservation)
        if upload is not None and found and listed(found, upload):
            continue
        if upload is not None:
            gone = "no longer exists in the CRM" if found is None else "no longer lists it"
            ctx.report.add(
                KIND, record,
                f"contract {env.contract_id}: the signed PDF was uploaded {upload.get('uploaded_at', '')} as CRM "
                f"contract {upload.get('contrato')} ({upload.get('name')}), and reservation {reservation} {gone}",
                action="reported only: the outbox holds that upload as done, so it is never sent twice; if it "
                f"was not removed on purpose, attach the stamped PDF in CV CRM by hand ({show})",
            )
            continue
        row = ctx.report.add(
            KIND, record,
            f"contract {env.contract_id}: completed at Ponte, but its signed PDF never reached reservation "
            f"{reservation} (the finalization did not finish)",
        )
        if ctx.dry_run:
            row.action = "would stamp and upload it through back-sync's finalization (exactly once)"
            continue
        failure = _finish(ctx, env.id)
        with ctx.store.session() as session:
            now = session.get(Envelope, env.id)
            upload = _uploaded(now) if now is not None else None
        found = contracts(reservation, fresh=True) if upload is not None else None
        row.repaired = bool(upload is not None and found and listed(found, upload))
        if row.repaired:
            row.action = f"stamped and uploaded through back-sync as CRM contract {upload.get('contrato')}"  # type: ignore[union-attr]
        elif failure is not None:
            row.action = (f"back-sync's finalization failed ({failure}): see `ponte deadletter list --tenant "
                          f"{tenant} --flow backsync`")
        else:
            row.action = "back-sync's finalization did not finish it (another worker holds it?); the next " \
                         "poll or reconciliation retries"


def _finish(ctx: Reconciliation, envelope_id: int) -> PonteError | None:
    return resync(ctx.store, ctx.tenant, envelope_id, ctx.connectors, BacksyncReport(ctx.tenant.id),
                  run_id=ctx.request.run_id)

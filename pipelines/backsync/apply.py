"""Applying canonical signing events to the envelope and signer rows, under a row lock.

One envelope is changed by one transaction at a time (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
serialises writers with ``BEGIN IMMEDIATE``), so two workers that got the same envelope's events never
interleave. Transitions come from :mod:`pipelines.backsync.machine` and are monotone; an audit row is
written only when something changed, so replays and duplicates leave no trace but a counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pipelines.backsync.machine import (
    SIGNER_DONE,
    SIGNER_TERMINAL,
    next_envelope_status,
    next_signer_status,
    signer_after_envelope,
    signer_when_turn_comes,
)
from pipelines.store.db import Store
from pipelines.store.models import Envelope, EnvelopeSigner
from pipelines.store.repos import audit
from schemas.canonical import EnvelopeStatus, SigningEvent, SigningEventKind

FLOW = "backsync"
K = SigningEventKind
#: the interaction of a recipient who only receives a copy (schemas.tenant.Interaction)
RECEIVE_COPY = "receive_copy"


@dataclass
class ApplyOutcome:
    envelope_id: int | None
    status: str | None = None
    changed: bool = False
    #: signers that finished in this batch, signed or approved or got their copy (for Ponte-sent
    #: invitations of the next routing order)
    newly_signed: list[int] = field(default_factory=list)
    #: every signer who must act (sign or approve) did; copy recipients never hold an envelope up
    all_signed: bool = False

    @property
    def found(self) -> bool:
        return self.envelope_id is not None


def find_envelope(
    session: Session, store: Store, tenant: str, provider: str, provider_envelope_id: str, lock: bool = True
) -> Envelope | None:
    query = (
        select(Envelope)
        .where(
            Envelope.tenant == tenant,
            Envelope.provider == provider,
            Envelope.provider_envelope_id == provider_envelope_id,
        )
        .options(selectinload(Envelope.signers))
    )
    if lock and store.is_postgres:
        query = query.with_for_update(of=Envelope)
    return session.scalars(query).first()


def _signer_for(envelope: Envelope, event: SigningEvent) -> EnvelopeSigner | None:
    if event.recipient_id:
        for signer in envelope.signers:
            if signer.provider_recipient_id and signer.provider_recipient_id == event.recipient_id:
                return signer
    if event.signer_email:
        hits = [s for s in envelope.signers if (s.email or "").strip().lower() == event.signer_email]
        if len(hits) == 1:
            return hits[0]
    if event.routing_order is not None:
        hits = [s for s in envelope.signers if s.routing_order == event.routing_order]
        if len(hits) == 1:
            return hits[0]
    return None


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def apply_events(
    store: Store,
    tenant: str,
    provider: str,
    provider_envelope_id: str,
    events: Iterable[SigningEvent],
    *,
    source: str | None = None,
    mapping_version: str | None = None,
    run_id: str | None = None,
    advance_waiting: bool = True,
) -> ApplyOutcome:
    """Apply ``events`` (any order, duplicates allowed) to one envelope; never moves it backwards.

    ``advance_waiting``: the provider invites the next routing order itself (tenant
    ``notifications.by: provider``), so its signers leave "waiting" when the previous order is done;
    with ``by: ponte`` dispatch's ``notify_next_signers`` invites them and moves them instead.
    """
    ordered = sorted(events, key=lambda e: e.occurred_at)
    with store.session() as session:
        envelope = find_envelope(session, store, tenant, provider, provider_envelope_id)
        if envelope is None:
            return ApplyOutcome(None)
        outcome = ApplyOutcome(envelope.id, envelope.status)
        changes: list[dict[str, object]] = []
        for event in ordered:
            signer = _signer_for(envelope, event) if event.recipient_id or event.signer_email else None
            if signer is not None:
                _apply_to_signer(signer, event, outcome, changes)
            # envelope-level: a signer event moves the envelope too (signature => at least delivered)
            _apply_to_envelope(envelope, event, changes)
        if envelope.status in (
            EnvelopeStatus.completed,
            EnvelopeStatus.expired,
            EnvelopeStatus.voided,
            EnvelopeStatus.declined,
        ):
            _settle_signers(envelope, outcome, changes)
        elif advance_waiting:
            _advance_waiting(envelope, changes)
        outcome.status = envelope.status
        acting = [s for s in envelope.signers if s.interaction != RECEIVE_COPY]
        outcome.all_signed = bool(acting) and all(s.status in SIGNER_DONE for s in acting)
        if changes:
            outcome.changed = True
            audit(
                session,
                tenant=tenant,
                flow=FLOW,
                action="status_changed",
                entity="envelope",
                entity_id=str(envelope.id),
                source_record=source,
                mapping_version=mapping_version,
                run_id=run_id,
                details={"contract": envelope.contract_id, "changes": changes},
            )
        return outcome


def _apply_to_signer(
    signer: EnvelopeSigner, event: SigningEvent, outcome: ApplyOutcome, changes: list[dict[str, object]]
) -> None:
    """One event on its signer: the status move the machine allows, the evidence collected with a
    signature, approval or refusal, and a view as proof the invitation arrived."""
    new = next_signer_status(signer.status, event.kind, signer.interaction)
    if new is not None:
        changes.append(
            {
                "signer": signer.id,
                "role": signer.role,
                "from": signer.status,
                "to": new,
                "event": event.kind.value,
                "at": event.occurred_at.isoformat(),
            }
        )
        signer.status = new
        if new in SIGNER_DONE:
            signer.signed_at = signer.signed_at or event.occurred_at
            outcome.newly_signed.append(signer.id)
    if event.evidence is not None and event.kind in (K.signature, K.approval, K.refusal):
        collected = event.evidence.model_dump(mode="json", exclude_none=True)
        if collected and (signer.evidence or {}).get("collected") != collected:
            signer.evidence = {**(signer.evidence or {}), "collected": collected}
            changes.append({"signer": signer.id, "evidence": True})
    if event.kind == K.view and signer.status not in SIGNER_DONE:
        signer.notified_at = signer.notified_at or event.occurred_at


def _apply_to_envelope(envelope: Envelope, event: SigningEvent, changes: list[dict[str, object]]) -> None:
    """One event on the envelope: the status move the machine allows, and the last event's time."""
    new_status = next_envelope_status(envelope.status, event.kind)
    if new_status is not None:
        changes.append(
            {
                "envelope": envelope.id,
                "from": envelope.status,
                "to": new_status,
                "event": event.kind.value,
                "at": event.occurred_at.isoformat(),
            }
        )
        envelope.status = new_status
        if new_status == EnvelopeStatus.completed:
            envelope.completed_at = envelope.completed_at or event.occurred_at
    envelope.last_event_at = _later(envelope.last_event_at, event.occurred_at)


def _settle_signers(envelope: Envelope, outcome: ApplyOutcome, changes: list[dict[str, object]]) -> None:
    """The envelope reached a final status: each signer follows it (machine.signer_after_envelope)."""
    for signer in envelope.signers:
        new = signer_after_envelope(signer.status, envelope.status, signer.interaction)
        if new is not None:
            changes.append(
                {
                    "signer": signer.id,
                    "role": signer.role,
                    "from": signer.status,
                    "to": new,
                    "event": f"envelope_{envelope.status}",
                }
            )
            signer.status = new
            if new in SIGNER_DONE:
                signer.signed_at = signer.signed_at or envelope.completed_at
                outcome.newly_signed.append(signer.id)


def _advance_waiting(envelope: Envelope, changes: list[dict[str, object]]) -> None:
    """Signers of the lowest unsigned routing order are no longer "waiting" (their turn came).

    A copy recipient never holds the chain up: the provider delivers its copy on its own."""
    pending = [
        s
        for s in envelope.signers
        if s.status not in SIGNER_TERMINAL
        and s.interaction != RECEIVE_COPY
    ]
    if not pending:
        return
    current = min(s.routing_order for s in pending)
    for signer in pending:
        turn = signer_when_turn_comes(signer.status) if signer.routing_order == current else None
        if turn is not None:
            # the provider invites them (or Ponte does, through dispatch's notify_next_signers)
            changes.append(
                {
                    "signer": signer.id,
                    "role": signer.role,
                    "from": str(signer.status),
                    "to": turn,
                    "event": "previous_order_signed",
                }
            )
            signer.status = turn

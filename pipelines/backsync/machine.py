"""The envelope and signer state machines: which signing event may move a record, and where.

Providers retry, duplicate and reorder deliveries, and polling replays what webhooks already said, so
every transition here is *monotone*: a status has a rank, an event may only raise it, and terminal
statuses (completed, declined, voided, expired for envelopes; signed, declined, expired for signers)
absorb everything. Applying the same event twice, or an old event after a newer one, is a no-op. That
property, not careful ordering, is what makes back-sync correct (tests/pipelines/backsync/test_machine.py checks
it on random event sequences).

A signer's *interaction* (the tenant's chain: sign, approve, receive_copy) decides which final status a
finished signer gets: ``signed``, ``approved`` (DocuSign certified delivery completed, Clicksign
approval) or ``copy_delivered`` (DocuSign carbon copy, Clicksign signature watcher). A provider may
report an approval or a delivered copy as a plain "completed" recipient; the row still ends as what the
signer was asked to do.
"""

from __future__ import annotations

from schemas.canonical import EnvelopeStatus, SignerStatus, SigningEventKind

E, S, K = EnvelopeStatus, SignerStatus, SigningEventKind

ENVELOPE_RANK: dict[str, int] = {E.draft: 0, E.sent: 1, E.delivered: 2}
ENVELOPE_TERMINAL = frozenset({E.completed, E.declined, E.voided, E.expired})
SIGNER_RANK: dict[str, int] = {S.created: 0, S.waiting: 0, S.sent: 1, S.delivered: 2}
#: a signer's final status when it did what it was asked to do (by interaction)
APPROVED, COPY_DELIVERED = "approved", "copy_delivered"
DONE_BY_INTERACTION: dict[str, str] = {"sign": S.signed, "approve": APPROVED, "receive_copy": COPY_DELIVERED}
#: signer statuses of someone who is done (nobody waits on them any more)
SIGNER_DONE = frozenset({S.signed, APPROVED, COPY_DELIVERED})
SIGNER_TERMINAL = SIGNER_DONE | {S.declined, S.expired}

#: what an envelope-level event asks for (None: no envelope change)
_ENVELOPE_TARGET: dict[K, EnvelopeStatus | None] = {
    K.sent: E.sent,
    K.view: E.delivered,
    K.signature: E.delivered,  # somebody signed: the envelope was at least delivered
    K.approval: E.delivered,
    K.refusal: E.declined,  # one refusal ends a chained contract (DocuSign declines the envelope)
    K.expiry: E.expired,
    K.cancellation: E.voided,
    K.completion: E.completed,
    K.delivery_failure: None,
}

_SIGNER_TARGET: dict[K, SignerStatus | None] = {
    K.sent: S.sent,
    K.view: S.delivered,
    K.signature: S.signed,
    K.approval: S.signed,
    K.refusal: S.declined,
    K.expiry: None,
    K.cancellation: None,
    K.completion: S.signed,
    K.delivery_failure: None,
}


def _rank(status: str, ranks: dict[str, int], terminal: frozenset[str]) -> int:
    return 3 if status in terminal else ranks.get(status, 0)


def next_envelope_status(current: str, kind: K) -> str | None:
    """The envelope's new status after ``kind``, or None when the event must not move it."""
    if current in ENVELOPE_TERMINAL:
        return None
    target = _ENVELOPE_TARGET[kind]
    if target is None:
        return None
    if target in ENVELOPE_TERMINAL:
        return target
    if ENVELOPE_RANK[target] > _rank(current, ENVELOPE_RANK, ENVELOPE_TERMINAL):
        return target
    return None


def done_status(interaction: str | None) -> str:
    """The final status of a signer who did what ``interaction`` asks (unknown: signed)."""
    return DONE_BY_INTERACTION.get(interaction or "sign", S.signed)


def next_signer_status(current: str, kind: K, interaction: str | None = "sign") -> str | None:
    """A signer's new status after an event about *that* signer, or None."""
    if current in SIGNER_TERMINAL:
        return None
    target = _SIGNER_TARGET[kind]
    if target is None:
        return None
    if target == S.signed:
        target = done_status(interaction)
    if target in SIGNER_TERMINAL:
        return target
    if SIGNER_RANK[target] > _rank(current, SIGNER_RANK, SIGNER_TERMINAL):
        return target
    return None


def signer_after_envelope(current: str, envelope_status: str, interaction: str | None = "sign") -> str | None:
    """What an envelope's terminal status means for a signer who had not finished."""
    if current in SIGNER_TERMINAL:
        return None
    if envelope_status == E.completed:
        return done_status(interaction)
    if envelope_status in (E.expired, E.voided, E.declined):
        return S.expired
    return None


def signer_when_turn_comes(current: str) -> str | None:
    """A waiting signer whose routing order is now the lowest unfinished one is sent the envelope (the
    provider invites them, or Ponte does through dispatch); anyone else stays where they are."""
    return S.sent if current == S.waiting else None


def envelope_rank(status: str) -> int:
    return _rank(status, ENVELOPE_RANK, ENVELOPE_TERMINAL)


def signer_rank(status: str) -> int:
    return _rank(status, SIGNER_RANK, SIGNER_TERMINAL)

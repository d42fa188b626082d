"""The state machines never move backwards: random event sequences (duplicates, any order) on the pure
transitions, and through apply_events on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.backsync.apply import apply_events
from pipelines.backsync.machine import (
    ENVELOPE_TERMINAL,
    SIGNER_TERMINAL,
    envelope_rank,
    next_envelope_status,
    next_signer_status,
    signer_rank,
)
from pipelines.store import Store
from pipelines.store.models import Envelope, EnvelopeSigner
from schemas.canonical.signing import EnvelopeStatus, SignerStatus, SigningEvent, SigningEventKind

KINDS = st.sampled_from(list(SigningEventKind))


@given(st.sampled_from(list(EnvelopeStatus)), st.lists(KINDS, max_size=30))
def test_envelope_status_only_rises_and_terminal_absorbs(start: EnvelopeStatus, kinds: list) -> None:
    status = start.value
    for kind in kinds:
        new = next_envelope_status(status, kind)
        if new is None:
            continue
        assert status not in ENVELOPE_TERMINAL, f"{status} left by {kind}"
        assert envelope_rank(new) > envelope_rank(status)
        status = new


@given(st.sampled_from(list(SignerStatus)), st.lists(KINDS, max_size=30))
def test_signer_status_only_rises_and_terminal_absorbs(start: SignerStatus, kinds: list) -> None:
    status = start.value
    for kind in kinds:
        new = next_signer_status(status, kind)
        if new is None:
            continue
        assert status not in SIGNER_TERMINAL
        assert signer_rank(new) > signer_rank(status)
        status = new


@pytest.mark.parametrize("late", list(SigningEventKind))
def test_completed_never_returns(late: SigningEventKind) -> None:
    assert next_envelope_status("completed", late) is None
    assert next_signer_status("signed", late) is None


T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
#: (kind, recipient): the life of a two-signer DocuSign envelope, as Connect would tell it
LIFE = [
    (SigningEventKind.sent, None), (SigningEventKind.sent, "1"), (SigningEventKind.view, "1"),
    (SigningEventKind.view, None), (SigningEventKind.signature, "1"), (SigningEventKind.sent, "2"),
    (SigningEventKind.view, "2"), (SigningEventKind.signature, "2"), (SigningEventKind.completion, None),
]


def _event(pid: str, index: int, kind: SigningEventKind, rid: str | None) -> SigningEvent:
    return SigningEvent(provider="docusign", event_id=f"{pid}:{index}", kind=kind, provider_envelope_id=pid,
                        occurred_at=T0 + timedelta(seconds=index), recipient_id=rid)


def _envelope(store: Store) -> str:
    pid = str(uuid.uuid4())
    with store.session() as session:
        env = Envelope(tenant="t", contract_id="1", document_hash="0" * 64, idempotency_key=pid,
                       provider="docusign", provider_envelope_id=pid, status="sent")
        env.signers = [EnvelopeSigner(role="client", routing_order=1, name="A B", provider_recipient_id="1",
                                      status="sent"),
                       EnvelopeSigner(role="spouse", routing_order=2, name="C D", provider_recipient_id="2",
                                      status="waiting")]
        session.add(env)
    return pid


def _state(store: Store, pid: str) -> tuple[str, list[str]]:
    with store.session() as session:
        env = session.query(Envelope).filter_by(provider_envelope_id=pid).one()
        return env.status, [s.status for s in env.signers]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(LIFE))), dupes=st.lists(st.integers(0, len(LIFE) - 1), max_size=6),
       batch=st.integers(1, 4))
def test_any_delivery_order_with_duplicates_ends_completed_and_never_regresses(
    store: Store, order: list[int], dupes: list[int], batch: int
) -> None:
    pid = _envelope(store)
    deliveries = [_event(pid, i, *LIFE[i]) for i in [*order, *dupes]]
    seen = (envelope_rank("sent"), [signer_rank("sent"), signer_rank("waiting")])
    for start in range(0, len(deliveries), batch):
        apply_events(store, "t", "docusign", pid, deliveries[start:start + batch])
        status, signers = _state(store, pid)
        ranks = (envelope_rank(status), [signer_rank(s) for s in signers])
        assert ranks[0] >= seen[0] and all(a >= b for a, b in zip(ranks[1], seen[1], strict=True))
        seen = ranks
    assert _state(store, pid) == ("completed", ["signed", "signed"])
    # a late refusal or expiry after completion changes nothing
    late = [_event(pid, 99, SigningEventKind.refusal, "2"), _event(pid, 100, SigningEventKind.expiry, None)]
    assert not apply_events(store, "t", "docusign", pid, late).changed
    assert _state(store, pid) == ("completed", ["signed", "signed"])


def test_only_a_waiting_signer_is_sent_when_their_turn_comes() -> None:
    from pipelines.backsync.machine import signer_when_turn_comes

    assert signer_when_turn_comes("waiting") == "sent"
    for status in ("created", "sent", "delivered", "signed", "approved", "copy_delivered", "declined", "expired"):
        assert signer_when_turn_comes(status) is None, status

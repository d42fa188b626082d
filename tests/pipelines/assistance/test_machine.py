"""The assistance state machine: any delivery order, any duplicates, terminal stays terminal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.assistance.machine import (
    RANK,
    apply_events,
    can_move,
    crm_status,
    event_status,
    next_status,
)
from schemas.canonical.assistance import TERMINAL_ASSISTANCE, AssistanceStatus
from schemas.tenant import AssistanceOptions

S = AssistanceStatus
ALL = list(S)


@st.composite
def sienge_histories(draw: st.DrawFn) -> list[AssistanceStatus]:
    """What Sienge can really do to one request: optional progress (repeatable), optionally an end, maybe deleted."""
    events: list[AssistanceStatus] = [S.in_progress] * draw(st.integers(0, 3))
    end = draw(st.sampled_from([None, S.finished, S.cancelled]))
    if end is not None:
        events.append(end)
    if draw(st.booleans()):
        events.append(S.deleted)
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[AssistanceStatus], list[AssistanceStatus]]:
    """A history and how the webhooks arrived: shuffled, each event delivered one to three times."""
    history = draw(sienge_histories())
    copies = [event for event in history for _ in range(draw(st.integers(1, 3)))]
    return history, draw(st.permutations(copies))


@settings(max_examples=200, deadline=None)
@given(deliveries())
def test_any_order_with_duplicates_ends_where_sienge_ended(case: tuple[list[S], list[S]]) -> None:
    history, arrived = case
    expected = history[-1] if history else S.open
    assert apply_events(S.open, arrived) == expected


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(TERMINAL_ASSISTANCE)), st.lists(st.sampled_from(ALL), max_size=12))
def test_terminal_is_terminal(terminal: S, later: list[S]) -> None:
    """After finished/cancelled only deletion moves a request; after deletion nothing does."""
    final = apply_events(terminal, later)
    if terminal == S.deleted or S.deleted not in later:
        assert final == terminal
    else:
        assert final == S.deleted
    assert next_status(S.finished, S.in_progress) is None
    assert next_status(S.cancelled, S.finished) is None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL), st.lists(st.sampled_from(ALL), max_size=12))
def test_never_moves_backwards_and_duplicates_change_nothing(start: S, events: list[S]) -> None:
    state = start
    for event in events:
        new = next_status(state, event)
        if new is not None:
            assert RANK[new] > RANK[state] or (state in TERMINAL_ASSISTANCE and new == S.deleted)
            assert next_status(new, event) is None  # the same event again is a no-op
            state = new
    assert can_move(state, state) is False


def test_event_names_follow_the_tenant_prefix() -> None:
    assert event_status("TECHNICAL_ASSISTANCE_FINISHED", "TECHNICAL_ASSISTANCE") == S.finished
    assert event_status("TECHNICAL_ASSISTANCE_CANCELED", "TECHNICAL_ASSISTANCE") == S.cancelled
    assert event_status("AT_DELETED", "AT") == S.deleted
    assert event_status("AT_IN_PROGRESS", "TECHNICAL_ASSISTANCE") is None
    assert event_status("CUSTOMER_UPDATED", "TECHNICAL_ASSISTANCE") is None


def test_crm_status_reads_the_tenant_workflow() -> None:
    options = AssistanceOptions(situation_opened=10, situation_in_progress=11, situation_finished=12,
                                situation_cancelled=13)
    assert crm_status({"idsituacao": 12, "ativo": "S"}, options) == S.finished
    assert crm_status({"idsituacao": "11"}, options) == S.in_progress
    assert crm_status({"idsituacao": 12, "ativo": "N"}, options) == S.deleted
    assert crm_status({"idsituacao": 99}, options) is None
    # an unmapped situation counts as open: Sienge's progress still moves it
    assert next_status(None, S.in_progress) == S.in_progress

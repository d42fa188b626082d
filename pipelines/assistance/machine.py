"""The assistance state machine, pure: which status a request may move to, and how each side shows it.

Webhooks arrive late, twice or out of order, and the CRM is written by people as well as by Ponte, so
every write is decided here from two reads (the CRM's current status and Sienge's), never from the
event alone. The rule that makes any delivery order converge: a request only moves *forward*.

    open (0) -> in_progress (1) -> finished | cancelled (2) -> deleted (3)

``finished`` and ``cancelled`` are terminal for the workflow: an "in progress" arriving after either
changes nothing, and one never replaces the other. ``deleted`` (Sienge removed the request; the CRM
record is deactivated) may follow any state and is absorbing. Sienge itself refuses to leave
FINISHED/CANCELED except by deletion, so every real history is a strictly rising path and applying its
events in any order, with duplicates, ends where the history ended.
"""

from __future__ import annotations

from typing import Any

from schemas import AssistanceOptions
from schemas.canonical import TERMINAL_ASSISTANCE, AssistanceStatus

S = AssistanceStatus

RANK: dict[AssistanceStatus, int] = {
    S.open: 0,
    S.in_progress: 1,
    S.finished: 2,
    S.cancelled: 2,
    S.deleted: 3,
}

#: Sienge hook event suffix (after the tenant's prefix and "_") -> the status it announces
EVENT_STATUS: dict[str, AssistanceStatus] = {
    "IN_PROGRESS": S.in_progress,
    "FINISHED": S.finished,
    "CANCELED": S.cancelled,
    "CANCELLED": S.cancelled,
    "DELETED": S.deleted,
}

#: Sienge's status field -> canonical status (the mapping's enum table says the same)
SIENGE_STATUS: dict[str, AssistanceStatus] = {
    "OPEN": S.open,
    "IN_PROGRESS": S.in_progress,
    "FINISHED": S.finished,
    "CANCELED": S.cancelled,
    "CANCELLED": S.cancelled,
    "DELETED": S.deleted,
}


def can_move(current: AssistanceStatus, new: AssistanceStatus) -> bool:
    """Whether ``current`` may become ``new`` (same status is not a move)."""
    if current == new or current == S.deleted:
        return False
    if current in TERMINAL_ASSISTANCE:
        return new == S.deleted
    return RANK[new] > RANK[current]


def next_status(current: AssistanceStatus | None, observed: AssistanceStatus) -> AssistanceStatus | None:
    """The status to write after observing ``observed`` on Sienge, or None when nothing changes.

    ``current`` None means the CRM shows a situation this tenant did not map (a workflow step of its
    own); it counts as open, so Sienge's progress still moves it forward.
    """
    return observed if can_move(current or S.open, observed) else None


def apply_events(start: AssistanceStatus, events: list[AssistanceStatus]) -> AssistanceStatus:
    """Fold events through the machine (what the CRM ends at after receiving them in this order)."""
    state = start
    for event in events:
        state = next_status(state, event) or state
    return state


def event_status(event_type: str | None, prefix: str) -> AssistanceStatus | None:
    """``TECHNICAL_ASSISTANCE_FINISHED`` (with this tenant's prefix) -> finished; other events -> None."""
    head = f"{prefix}_"
    if not event_type or not event_type.startswith(head):
        return None
    return EVENT_STATUS.get(event_type[len(head) :])


def situation_ids(options: AssistanceOptions) -> dict[AssistanceStatus, int]:
    """This tenant's CV CRM situation id for each status it configured."""
    pairs = {
        S.open: options.situation_opened,
        S.in_progress: options.situation_in_progress,
        S.finished: options.situation_finished,
        S.cancelled: options.situation_cancelled,
    }
    return {status: value for status, value in pairs.items() if value is not None}


def crm_status(record: dict[str, Any], options: AssistanceOptions) -> AssistanceStatus | None:
    """The status a CV CRM assistência shows: deactivated = deleted, else its situation, reverse-mapped.

    None when its situation is not one the tenant mapped (read as open by :func:`next_status`).
    """
    if str(record.get("ativo") or "S").upper() == "N":
        return S.deleted
    situation = record.get("idsituacao")
    if situation is None:
        return None
    # terminal first: a tenant may (oddly) configure one id twice; the further state wins
    for status, value in sorted(situation_ids(options).items(), key=lambda kv: -RANK[kv[0]]):
        if str(value) == str(situation):
            return status
    return None

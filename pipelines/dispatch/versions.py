"""Document versions: what dispatch does when a contract's document may have changed since it was sent.

A contract's envelope key is ``<tenant>:contract:<id>:<pdf sha256>`` (:mod:`pipelines.dispatch.identity`),
so a changed document (a new file in the CRM, or a template filled from changed data) is a new
*version*. The rules, as pure functions over what Ponte recorded for the contract:

- **one live envelope per contract.** A live envelope (sent, delivered) for another version is voided
  at the provider first, as its own exactly-once step (outbox key ``<old key>:void``), and only then is
  the new version created: a crash between the two never leaves two live envelopes;
- **a signed version stands.** A completed envelope (or a provider that answers the void with
  "already completed") means the contract was signed: no new version is sent, the contract is
  dead-lettered for a person to decide;
- **a dead envelope is not voided.** Refused, expired or voided envelopes are over at the provider: a
  changed document is sent as a new version straight away; the *same* document again only when an
  operator asks (``ponte sync dispatch --contract X --resend``);
- **a key is used once.** The same bytes sent again (a resend, or a document that changed back to an
  earlier version) get the key ``<base key>:resend:<n>``, ``n`` one past the highest recorded for those
  bytes; the key is derived from what is recorded, so a rerun after a crash derives the same one;
- **an unrecorded create is finished first.** A create of this version that was sent but never recorded
  (a crash) is resumed under its own key (the outbox looks it up before anything is sent again); one of
  another version cannot be finished any more (its document is gone) and a person checks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

#: envelope statuses (schemas.canonical.signing.EnvelopeStatus) by what they mean for a new version
LIVE = frozenset({"draft", "sent", "delivered"})
SIGNED = frozenset({"completed"})
DEAD = frozenset({"declined", "voided", "expired"})

RESEND = ":resend:"
#: the dead letter's field for a create of another version that was sent but never recorded; replaying
#: the letter is the person's word that they checked the provider (flow.replay_dispatch)
UNFINISHED_FIELD = "document_version.unfinished_create"
#: the dead letter's field for a changed document whose earlier version was already signed
SIGNED_FIELD = "document_version.signed"

Action = Literal["send", "replace", "already_sent", "signed_stands", "unfinished"]
#: what the provider holds for an envelope, read before and after a void (:func:`provider_state`)
ProviderState = Literal["live", "completed", "declined", "expired", "voided", "gone"]


@dataclass(frozen=True)
class Sent:
    """An envelope Ponte recorded for the contract (oldest first in a history)."""

    key: str
    sha256: str
    status: str
    id: int | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    #: the key to send under (send, replace)
    key: str | None = None
    #: the envelope the decision is about: the one to void (replace), the one already out (already_sent),
    #: the signed one (signed_stands)
    current: Sent | None = None
    reason: str | None = None
    #: unrecorded creates of other versions (unfinished)
    unfinished: tuple[str, ...] = ()


def sha8(sha256: str) -> str:
    return sha256[:8]


def void_reason(new_sha256: str) -> str:
    """The voidedReason Ponte gives the provider (and records) for a replaced envelope."""
    return f"replaced by version {sha8(new_sha256)}"


def index_in(base_key: str, key: str) -> int | None:
    """0 for ``base_key`` itself, ``n`` for ``<base_key>:resend:<n>``, None for a key of other bytes."""
    if key == base_key:
        return 0
    if key.startswith(base_key + RESEND):
        tail = key[len(base_key) + len(RESEND):]
        if tail.isdigit() and int(tail) > 0 and str(int(tail)) == tail:
            return int(tail)
    return None


def next_key(history: Iterable[Sent], base_key: str) -> str:
    """The key of the next envelope for ``base_key``'s bytes: the base key if none was recorded, else
    ``<base>:resend:<n>`` one past the highest recorded."""
    taken = [i for s in history if (i := index_in(base_key, s.key)) is not None]
    if not taken:
        return base_key
    return f"{base_key}{RESEND}{max(taken) + 1}"


_VERSION_KEY = re.compile(r"^(?P<base>.+:[0-9a-f]{64})(?::resend:[1-9][0-9]*)?$")


def base_of(key: str) -> str | None:
    """The base key (``...:<sha256>``) of an envelope key, or None for a key of another shape."""
    match = _VERSION_KEY.match(key)
    return match.group("base") if match else None


def decide(
    history: Sequence[Sent],
    new_sha256: str,
    base_key: str,
    *,
    resend: bool = False,
    unrecorded: Sequence[str] = (),
) -> Decision:
    """What to do with the contract's document ``new_sha256`` (base key ``base_key``), given its
    recorded envelopes ``history`` (oldest first) and the keys of creates that were sent but never
    recorded (``unrecorded``). ``resend``: an operator asked to send the same document again."""
    mine = [k for k in unrecorded if index_in(base_key, k) is not None]
    others = tuple(sorted(k for k in unrecorded if index_in(base_key, k) is None))
    signed = [s for s in history if s.status in SIGNED]
    if signed:
        last = signed[-1]
        if last.sha256 == new_sha256:
            return Decision("already_sent", current=last, reason="this document version was already signed")
        return Decision(
            "signed_stands",
            current=last,
            reason=f"the contract's document changed (version {sha8(new_sha256)}) after version "
            f"{sha8(last.sha256)} was signed: the signed version stands and nothing new was sent",
        )
    live = [s for s in history if s.status in LIVE]
    current = live[-1] if live else None
    if current is not None and current.sha256 == new_sha256:
        reason = "this document version was already sent"
        if resend:
            reason += " and is still out for signature: --resend sends again only a refused, expired or voided one"
        return Decision("already_sent", current=current, reason=reason)
    if others:
        return Decision(
            "unfinished",
            unfinished=others,
            reason="a create of another version of this contract's document was sent but never recorded "
            f"({', '.join(others)}); it may be live at the provider, so nothing new was sent",
        )
    key = min(mine, key=lambda k: index_in(base_key, k) or 0) if mine else next_key(history, base_key)
    if current is not None:  # live, another version: void it first
        return Decision("replace", key=key, current=current)
    latest = history[-1] if history else None
    if latest is not None and latest.sha256 == new_sha256 and not resend and not mine:
        return Decision(
            "already_sent",
            current=latest,
            reason=f"this document version was already sent and is {latest.status} at the provider: change "
            "the document in the CRM, or send it again with `ponte sync dispatch --contract "
            "<id> --resend`",
        )
    return Decision("send", key=key, current=latest)


def provider_state(kinds: Iterable[str]) -> ProviderState:
    """What the provider holds for an envelope, from the kinds of the canonical events its read gave
    (schemas.canonical.signing.SigningEventKind): a completion wins (the signed version stands)."""
    seen = set(kinds)
    if "completion" in seen:
        return "completed"
    for kind, state in (("cancellation", "voided"), ("refusal", "declined"), ("expiry", "expired")):
        if kind in seen:
            return state  # type: ignore[return-value]
    return "live"


__all__ = [
    "DEAD",
    "LIVE",
    "SIGNED",
    "SIGNED_FIELD",
    "UNFINISHED_FIELD",
    "Decision",
    "Sent",
    "base_of",
    "decide",
    "index_in",
    "next_key",
    "provider_state",
    "void_reason",
]

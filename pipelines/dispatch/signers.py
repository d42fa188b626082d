"""Who signs, in which order, and whether each signer can be reached: pure rules, no I/O.

Kept apart from the flow so the rules can be tested exhaustively (property tests) and so a contract
that breaks one is rejected with a sentence naming the person and the missing field *before* anything
leaves Ponte. A missing CPF, e-mail or phone is never skipped silently: the contract is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mappings.transforms import ENUM_TABLES, fold
from schemas.tenant import SignerSlot, TenantOptions

#: signer statuses after which a signer no longer blocks nor needs an invitation
FINAL_SIGNER = frozenset({"signed", "completed"})
STOPPED_SIGNER = frozenset({"declined", "expired"})
#: providers whose connector specs always send an e-mail address for each signer
PROVIDERS_NEEDING_EMAIL = frozenset({"docusign", "clicksign"})


def role_of(papel: Any) -> str | None:
    """The hub's role for a CV CRM ``papel`` (titular → client, cônjuge → spouse...), or None."""
    if papel in (None, ""):
        return None
    table = ENUM_TABLES["cvcrm_signer_role"]
    folded = fold(str(papel))
    for key, value in table.items():
        if fold(key) == folded:
            return str(value)
    return folded  # already a hub role (client, witness...) or an unknown one, left out by the chain


@dataclass(frozen=True)
class Problem:
    """One reason a contract cannot be sent, phrased for the person who will fix it in the CRM."""

    role: str
    field: str
    message: str


def _channel(slot: SignerSlot, options: TenantOptions) -> str:
    return (slot.channel or options.default_channel).value


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def check_people(
    people: Sequence[Mapping[str, Any]], options: TenantOptions, provider: str | None = None
) -> list[Problem]:
    """Every problem that stops this contract's people from becoming a signer chain.

    ``people`` are CV CRM ``pessoas`` (papel, nome, documento, email, celular). Rules: each required
    slot of the tenant's chain has a person; a role signs once; each signer has a CPF/CNPJ, an e-mail
    for the e-mail channel (and for providers that always need one), a mobile phone for WhatsApp.
    """
    slots = {slot.role.value: slot for slot in options.signer_chain}
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for person in people:
        role = role_of(person.get("papel"))
        if role is None or role not in slots:
            continue
        seen[role] = seen.get(role, 0) + 1
        if seen[role] > 1:
            if seen[role] == 2:
                problems.append(Problem(role, "papel", f"more than one person has the role {role}"))
            continue
        who = f"{role} {str(person.get('nome') or '').strip() or '(no name)'}"
        if not _present(person.get("nome")):
            problems.append(Problem(role, "nome", f"signer {role} has no name"))
        if not _present(person.get("documento")):
            problems.append(Problem(role, "documento", f"signer {who} has no CPF/CNPJ"))
        channel = _channel(slots[role], options)
        if channel not in {c.value for c in options.channels}:
            problems.append(Problem(role, "channel", f"signer {who}: channel {channel} is not enabled"))
        if channel == "email" and not _present(person.get("email")):
            problems.append(Problem(role, "email", f"signer {who} is invited by e-mail but has no e-mail"))
        elif channel == "whatsapp" and not _present(person.get("celular")):
            problems.append(
                Problem(role, "celular", f"signer {who} is invited by WhatsApp but has no mobile phone")
            )
        if channel != "email" and provider in PROVIDERS_NEEDING_EMAIL and not _present(person.get("email")):
            problems.append(
                Problem(role, "email", f"signer {who} has no e-mail, which {provider} needs for every signer")
            )
    for role, slot in slots.items():
        if slot.required and role not in seen:
            problems.append(Problem(role, "pessoas", f"the contract has no {role}, a required signer"))
    return problems


@dataclass(frozen=True)
class ChainMember:
    """A signer's place in the chain as the notifier sees it (a row of envelope_signers)."""

    key: Any
    routing_order: int
    status: str
    notified: bool


def due_for_invitation(members: Iterable[ChainMember]) -> list[Any]:
    """Keys of the signers to invite now: every earlier routing order signed, not invited yet.

    Equal orders sign in parallel, so a whole order becomes due at once; a refusal or expiry anywhere
    stops the chain (nobody later is invited to sign a dead envelope).
    """
    rows = list(members)
    if any(m.status in STOPPED_SIGNER for m in rows):
        return []
    pending = [m.routing_order for m in rows if m.status not in FINAL_SIGNER]
    if not pending:
        return []
    current = min(pending)
    return [
        m.key for m in rows if m.routing_order == current and m.status not in FINAL_SIGNER and not m.notified
    ]


def initial_status(routing_order: int, first_order: int) -> str:
    """The state-machine start shared with back-sync: the first order is sent, later ones wait."""
    return "sent" if routing_order == first_order else "waiting"

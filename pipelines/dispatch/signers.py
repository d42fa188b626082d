"""Who signs, in which order, and whether each signer can be reached: pure rules, no I/O.

Kept apart from the flow so the rules can be tested exhaustively (property tests) and so a contract
that breaks one is rejected with a sentence naming the person and the missing field *before* anything
leaves Ponte. A missing CPF, e-mail or phone is never skipped silently: the contract is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mappings import ENUM_TABLES, fold
from pipelines.backsync.machine import SIGNER_DONE
from schemas import SignerSlot, TenantConfig, TenantOptions

#: signer statuses after which a signer no longer blocks nor needs an invitation: whoever did what their
#: interaction asks (signed, approved, received their copy: backsync/machine.py SIGNER_DONE)
FINAL_SIGNER = SIGNER_DONE | {"completed"}
STOPPED_SIGNER = frozenset({"declined", "expired"})
#: providers whose connector specs always send an e-mail address for each signer
PROVIDERS_NEEDING_EMAIL = frozenset({"docusign", "clicksign"})
#: roles several people may hold on one contract (every co-buyer signs); each after the first is
#: numbered (co_buyer, co_buyer_2, ...) so a signer's role names one person at the provider
MANY = frozenset({"co_buyer"})
#: the CV CRM ``papel`` a company signer of the tenant file takes (cvcrm_signer_role maps it back)
COMPANY_PAPEL = {"company_representative": "representante", "company_witness": "testemunha_empresa"}


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
    slot of the tenant's chain has a person; a role signs once (co-buyers: each of them); each signer has a CPF/CNPJ, an e-mail
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
        if seen[role] > 1 and role not in MANY:
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
            where = (
                "options.company_signers in the tenant file" if role in COMPANY_PAPEL else "the reservation"
            )
            problems.append(
                Problem(role, "pessoas", f"the contract has no {role}, a required signer (add one to {where})")
            )
    return problems


def with_company_signers(record: Mapping[str, Any], tenant: TenantConfig) -> dict[str, Any]:
    """The record with the tenant's company signers (legal representative, witness) among its people.

    They are the developer's, not the buyer's, so no CRM record holds them: they join as ``pessoas``
    in their CV role, and the chain's order puts them after the buyers.
    """
    people = [p for p in record.get("pessoas") or [] if role_of(p.get("papel")) not in COMPANY_PAPEL]
    for signer in tenant.options.company_signers:
        people.append(
            {
                "papel": COMPANY_PAPEL[signer.role.value],
                "nome": signer.name,
                "documento": signer.document,
                "documento_tipo": "cpf",
                "email": str(signer.email),
                "celular": signer.phone,
                "provider_ids": dict(signer.provider_ids),
            }
        )
    return {**record, "pessoas": people}


def chain_roles(signers: Sequence[dict[str, Any]], options: TenantOptions) -> list[dict[str, Any]]:
    """Signers as the chain sets them: each one's interaction from its slot (sign / approve / only a
    copy), and every holder of a role several people hold numbered after the first (co_buyer_2...)."""
    slots = {slot.role.value: slot for slot in options.signer_chain}
    counts: dict[str, int] = {}
    result = []
    for signer in signers:
        role = str(signer["role"])
        slot = slots.get(role)
        counts[role] = counts.get(role, 0) + 1
        item = dict(signer)
        if slot is not None:
            item["interaction"] = slot.interaction.value
        if counts[role] > 1:
            item["role"] = f"{role}_{counts[role]}"
        result.append(item)
    return result


def chain_role(role: str) -> str:
    """The chain's role of a (possibly numbered) signer role: ``co_buyer_2`` → ``co_buyer``."""
    base, sep, index = role.rpartition("_")
    return base if sep and index.isdigit() and base in MANY else role


@dataclass(frozen=True)
class ChainMember:
    """A signer's place in the chain as the notifier sees it (a row of envelope_signers)."""

    key: Any
    routing_order: int
    status: str
    notified: bool
    #: sign | approve | receive_copy: a copy recipient neither needs an invitation nor holds anyone up
    interaction: str = "sign"


def due_for_invitation(members: Iterable[ChainMember]) -> list[Any]:
    """Keys of the signers to invite now: every earlier routing order signed, not invited yet.

    Equal orders sign in parallel, so a whole order becomes due at once; a refusal or expiry anywhere
    stops the chain (nobody later is invited to sign a dead envelope).
    """
    rows = [m for m in members if m.interaction != "receive_copy"]
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

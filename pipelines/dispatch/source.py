"""Contracts ready to sign, read from CV CRM and joined with the people who sign them.

CV CRM lists contracts per reservation and keeps people on the reservation (holder + associates), so
a dispatchable record is the contract joined with its reservation and each person's CRM record. The
result has the shape the mappings read (``cvcrm/contrato``: idreservacontrato, contrato, link, ...,
``pessoas[{papel, nome, documento, email, celular}]``). Reads are truth: a replay re-reads all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.runtime import Connector
from ponte import NotFoundError, get_logger

log = get_logger("dispatch.source")

#: reservation-level fields copied onto the contract record (the contract's own fields win)
RESERVA_FIELDS = (
    "valor_contrato",
    "valor_parcela",
    "prazo_meses",
    "data_venda",
    "unidade",
    "idunidade",
    "idempreendimento",
    "empreendimento",
    "idreserva_int",
    "condicoes_pagamento",
)


@dataclass(frozen=True)
class ContractRef:
    """A CV CRM contract: its id, and its reservation's when known (saves a scan)."""

    contract_id: str
    reservation_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> ContractRef:
        """``801`` or ``3001:801`` (reservation:contract)."""
        reservation, sep, contract = str(text).partition(":")
        return cls(contract, reservation) if sep else cls(reservation)

    @property
    def record_key(self) -> str:
        return f"contract:{self.contract_id}"


def is_ready(contrato: dict[str, Any]) -> bool:
    """Validated in the CRM and not signed yet: what the poll and the webhook sensor pick up."""
    return (
        str(contrato.get("validado", "")).upper() == "S" and str(contrato.get("assinado", "")).upper() != "S"
    )


def _person(cvcrm: Connector, idpessoa: Any) -> dict[str, Any]:
    found = list(cvcrm.read("clientes", params={"idcliente": str(idpessoa)}))
    if not found:
        raise NotFoundError(f"CV CRM person {idpessoa} does not exist", record=f"person {idpessoa}")
    return found[0]


def _signer_view(person: dict[str, Any], papel: str) -> dict[str, Any]:
    """A CRM person as a ``pessoas`` entry: who signs, and what a contract says about them."""
    view = {
        "papel": papel,
        "idpessoa": person.get("idpessoa"),
        "nome": person.get("nome"),
        "documento": person.get("documento"),
        "documento_tipo": person.get("documento_tipo"),
        "email": person.get("email"),
        "celular": person.get("celular") or person.get("telefone"),
        "estado_civil": person.get("estado_civil"),
    }
    spouse = person.get("conjuge")
    if isinstance(spouse, dict) and str(spouse.get("nome") or "").strip():
        view["conjuge"] = {k: spouse.get(k) for k in ("nome", "documento", "email", "celular")}
    return view


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isalnum()).upper()


def spouse_of(holder: dict[str, Any], people: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The spouse Sienge recorded on the titular (the CV cliente's ``conjuge``, written by the import) as
    a ``pessoas`` entry in the spouse role, unless the reservation already lists a spouse (an associate
    of type cônjuge) or the same person (by CPF) in another role."""
    spouse = holder.get("conjuge")
    if not spouse:
        return None
    if any(role_is_spouse(p.get("papel")) for p in people):
        return None
    document = _digits(spouse.get("documento"))
    if document and any(_digits(p.get("documento")) == document for p in people):
        return None
    return {
        "papel": "conjuge",
        "idpessoa": None,
        "nome": spouse.get("nome"),
        "documento": spouse.get("documento"),
        "documento_tipo": "cpf",
        "email": spouse.get("email"),
        "celular": spouse.get("celular"),
        "origem": "conjuge do titular",
    }


def role_is_spouse(papel: Any) -> bool:
    return str(papel or "").strip().lower() in {"conjuge", "cônjuge"}


def people_of(cvcrm: Connector, reserva: dict[str, Any]) -> list[dict[str, Any]]:
    """The reservation's holder and associates as ``pessoas`` entries (holder first), and the holder's
    spouse as Sienge recorded it (see :func:`spouse_of`), so a married buyer's spouse signs without
    anyone adding an associate by hand."""
    people = []
    if reserva.get("idpessoa"):
        people.append(_signer_view(_person(cvcrm, reserva["idpessoa"]), "titular"))
    for assoc in reserva.get("associados") or []:
        if assoc.get("idpessoa"):
            people.append(
                _signer_view(_person(cvcrm, assoc["idpessoa"]), str(assoc.get("tipo") or "associado"))
            )
    if people and people[0]["papel"] == "titular":
        spouse = spouse_of(people[0], people)
        if spouse is not None:
            people.insert(1, spouse)
    return people


def enrich(cvcrm: Connector, reserva: dict[str, Any], contrato: dict[str, Any]) -> dict[str, Any]:
    """The contract as the dispatch mappings read it: contract + reservation fields + people."""
    record: dict[str, Any] = {k: reserva[k] for k in RESERVA_FIELDS if reserva.get(k) not in (None, "")}
    record["idreserva"] = reserva["idreserva"]
    record.update(contrato)
    if not record.get("pessoas"):
        record["pessoas"] = people_of(cvcrm, reserva)
    return record


def _reservas(cvcrm: Connector) -> Iterator[dict[str, Any]]:
    yield from cvcrm.read("reservas")


def contracts_of(cvcrm: Connector, reserva: dict[str, Any]) -> list[dict[str, Any]]:
    return list(cvcrm.read("contratos", params={"idreserva": str(reserva["idreserva"])}))


def ready_in(cvcrm: Connector, reserva: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The reservation's contracts that are ready to sign, enriched."""
    for contrato in contracts_of(cvcrm, reserva):
        if is_ready(contrato):
            yield enrich(cvcrm, reserva, contrato)


def ready_contracts(cvcrm: Connector, reservation_ids: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every contract ready to sign (validated, unsigned), enriched; optionally of given reservations."""
    reservas = (
        (cvcrm.read_one("reservas", rid) for rid in reservation_ids) if reservation_ids else _reservas(cvcrm)
    )
    for reserva in reservas:
        yield from ready_in(cvcrm, reserva)


def not_ready_reason(contrato: dict[str, Any]) -> str:
    """Why :func:`is_ready` said no, in the words of an outcome."""
    if str(contrato.get("assinado", "")).upper() == "S":
        return "already signed in the CRM"
    return "not ready to sign in the CRM (not validated)"


def load_contract(cvcrm: Connector, ref: ContractRef) -> dict[str, Any]:
    """One contract by id (scanning reservations when the reservation is not given), enriched."""
    reservas = [cvcrm.read_one("reservas", ref.reservation_id)] if ref.reservation_id else _reservas(cvcrm)
    for reserva in reservas:
        for contrato in contracts_of(cvcrm, reserva):
            if str(contrato.get("idreservacontrato")) == ref.contract_id:
                return enrich(cvcrm, reserva, contrato)
    raise NotFoundError(
        f"CV CRM has no contract {ref.contract_id}",
        record=ref.record_key,
        hint="check the id (RESERVATION:CONTRACT finds it faster) or whether the contract was removed",
    )

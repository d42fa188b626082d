"""What a contract template can use, and where each value comes from: one table, one builder.

Every variable a shipped template uses is filled from real records, never by hand:

* ``cvcrm.reserva`` / ``cvcrm.contrato``: the CRM reservation and contract (written by the import from
  Sienge's sale: value, payment conditions, buyers as titular + associados);
* ``cvcrm.pessoas``: each buyer's CV CRM person, the spouse Sienge recorded on the buyer included
  (``conjuge`` inside the CV cliente, written by the import);
* ``sienge.enterprise`` / ``sienge.unit`` / ``sienge.sale``: read from Sienge at dispatch time by the
  Sienge ids the import left on the reservation (``idempreendimento_int``, ``idunidade_int``,
  ``idreserva_int``) — reads are the truth, so a correction in Sienge reaches the next version;
* ``tenant``: the developer's own data (name, company signers).

:data:`VARIABLES` names each top-level variable with its source; ``ponte validate`` holds every
template's variables to it and to the sources the template declares (``pipelines/documents/render.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stdnum.br import cpf as stdnum_cpf

from mappings import MappingContext, load_mapping
from ponte import DataError, NotFoundError
from schemas import TenantConfig
from schemas.canonical import Contract

#: the sources a template may declare
SOURCES: dict[str, str] = {
    "cvcrm.reserva": "the CV CRM reservation (value, payment conditions, date), written by the import",
    "cvcrm.contrato": "the CV CRM contract (title, id, its own variaveis)",
    "cvcrm.pessoas": "the buyers' CV CRM people, spouses recorded on them included",
    "sienge.enterprise": "the Sienge development (name, CNPJ, address)",
    "sienge.unit": "the Sienge unit (name, private area, delivery date)",
    "sienge.sale": "the Sienge sales contract (number, payment conditions)",
    "tenant": "the tenant file (the developer's name, its representative and witness)",
}


@dataclass(frozen=True)
class Variable:
    source: str
    description: str


#: every top-level name a template may use
VARIABLES: dict[str, Variable] = {
    "vendedora": Variable("sienge.enterprise", "{nome, cnpj}: the company selling (the development's SPE)"),
    "empreendimento": Variable("sienge.enterprise", "{nome, cnpj, endereco, cidade, estado}"),
    "unidade": Variable("sienge.unit", "{nome, tipo, area_privativa ('72,35'), data_entrega ('dd/mm/aaaa')}"),
    "contrato": Variable("cvcrm.contrato", "{id, titulo, numero, data ('dd/mm/aaaa')}"),
    "valor_total": Variable("cvcrm.reserva", "the sale's value, formatted 'R$ 1.234,56'"),
    "pagamento": Variable(
        "cvcrm.reserva",
        "{valor_total, parcelas: [{descricao, quantidade, valor_total, valor_parcela}], parcela_mensal, "
        "prazo_meses}: the sale's payment conditions",
    ),
    "compradores": Variable(
        "cvcrm.pessoas",
        "[{nome, documento, pessoa ('fisica'|'juridica'), papel, estado_civil, casado, conjuge "
        "({nome, documento} or none), email}]: every buyer, the titular first",
    ),
    "comprador": Variable("cvcrm.pessoas", "the titular (the first of compradores)"),
    "representante": Variable("tenant", "{nome, documento}: the company's legal representative, or none"),
    "testemunha_empresa": Variable("tenant", "{nome, documento}: the company's witness, or none"),
    "variaveis": Variable("cvcrm.contrato", "the contract's own extra variables in the CRM (a dict)"),
    "hoje": Variable("tenant", "today's date, 'dd/mm/aaaa'"),
    "evidencias": Variable("cvcrm.contrato", "the signed contract's evidence summary (back-sync fills it; template evidencias only)"),
}


# ------------------------------------------------------------------------------------------ building

def money(value: Any) -> str | None:
    """``Decimal('1234567.8')`` → ``'R$ 1.234.567,80'`` (None for no value)."""
    amount = _decimal(value)
    if amount is None:
        return None
    text = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    return "R$ " + text.replace(",", "_").replace(".", ",").replace("_", ".")


def number(value: Any, places: int = 2) -> str | None:
    amount = _decimal(value)
    if amount is None:
        return None
    text = f"{amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,.{places}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, Decimal):
        return value
    text = str(value).strip().replace("R$", "").strip()
    if "," in text:  # Brazilian text: 1.234,56
        text = text.replace(".", "").replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def br_date(value: Any) -> str | None:
    """A date (``date``, ISO text or CV's dd/mm/aaaa) as dd/mm/aaaa."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    text = str(value).strip()
    try:
        return date.fromisoformat(text[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return text


def document_text(value: Any) -> str | None:
    """A CPF or CNPJ with its punctuation (as a contract writes it); other text as given."""
    raw = "".join(ch for ch in str(value or "") if ch.isalnum()).upper()
    if not raw:
        return None
    try:
        if len(raw) == 11 and stdnum_cpf.is_valid(raw):
            return stdnum_cpf.format(raw)
        if len(raw) == 14:
            return f"{raw[:2]}.{raw[2:5]}.{raw[5:8]}/{raw[8:12]}-{raw[12:]}"
    except Exception:  # stdnum raises its own types for odd input; the raw text is still right
        return raw
    return str(value).strip()


def _is_company(person: Mapping[str, Any]) -> bool:
    kind = str(person.get("documento_tipo") or "").lower()
    if kind in {"cpf", "cnpj"}:
        return kind == "cnpj"
    return len("".join(ch for ch in str(person.get("documento") or "") if ch.isalnum())) == 14


def _party(person: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not person:
        return None
    return {"nome": str(person.get("nome") or "").strip(), "documento": document_text(person.get("documento"))}


BUYER_ROLES = frozenset({"client", "co_buyer"})


def buyers(people: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every buyer (titular first, then co-buyers), each with the spouse recorded on them."""
    from pipelines.dispatch.signers import role_of

    spouse_entry = next((p for p in people if role_of(p.get("papel")) == "spouse"), None)
    result = []
    for person in people:
        role = role_of(person.get("papel"))
        if role not in BUYER_ROLES:
            continue
        spouse = person.get("conjuge") or (spouse_entry if role == "client" else None)
        civil = str(person.get("estado_civil") or "").strip()
        company = _is_company(person)
        result.append(
            {
                "nome": str(person.get("nome") or "").strip(),
                "documento": document_text(person.get("documento")),
                "pessoa": "juridica" if company else "fisica",
                "papel": "titular" if role == "client" else "cocomprador",
                "estado_civil": civil or None,
                "casado": bool(spouse) or civil.lower().startswith("casad"),
                "conjuge": None if company else _party(spouse),
                "email": person.get("email"),
            }
        )
    result.sort(key=lambda b: b["papel"] != "titular")
    return result


@dataclass(frozen=True)
class SiengeFacts:
    """The Sienge records a contract's template reads, by the ids the import left on the reservation."""

    sale: dict[str, Any]
    enterprise: dict[str, Any]
    unit: dict[str, Any]
    company_name: str | None = None


def read_sienge(sienge: Any, tenant: TenantConfig, record: Mapping[str, Any], record_key: str) -> SiengeFacts:
    """Sale, development and unit from Sienge, normalised by the import's own mappings (one shape)."""
    sale_id = str(record.get("idreserva_int") or "").strip()
    if not sale_id:
        raise DataError(
            "the reservation has no Sienge sale id (idreserva_int), so the template's Sienge data "
            "(development, unit, payment conditions) cannot be read",
            record=record_key,
            field="idreserva_int",
            hint="import the sale from Sienge (`ponte sync import`), or send the CRM's own PDF",
        )
    ctx = MappingContext(tenant=tenant)

    def canonical(mapping: str, stream: str, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            raw = sienge.read_one(stream, key)
        except NotFoundError:
            raise DataError(
                f"Sienge has no {stream[:-1].replace('_', ' ')} {key}, which the contract's template reads",
                record=record_key,
                field="idreserva_int" if stream == "sales_contracts" else stream,
                hint="check the sale in Sienge and re-import it, then `ponte deadletter replay`",
            ) from None
        result = load_mapping(mapping).apply(raw, ctx)
        data = result.model_dump() if hasattr(result, "model_dump") else dict(result or {})
        return data, raw

    sale, _ = canonical("sienge/sales_contract_to_sale", "sales_contracts", sale_id)
    enterprise, raw_enterprise = canonical(
        "sienge/enterprise_to_canonical", "enterprises", str(sale.get("enterprise_source_id"))
    )
    units = sale.get("unit_source_ids") or []
    unit, _ = canonical("sienge/unit_to_canonical", "units", str(units[0])) if units else ({}, {})
    return SiengeFacts(sale, enterprise, unit, raw_enterprise.get("companyName"))


def payment(facts: SiengeFacts | None, record: Mapping[str, Any], contract: Contract) -> dict[str, Any]:
    """The payment conditions: Sienge's sale when read, else what the CRM reservation holds."""
    rows: list[dict[str, Any]] = []
    if facts is not None:
        source = [
            {"descricao": c.get("kind"), "quantidade": c.get("installments"), "total": c.get("total")}
            for c in facts.sale.get("payment_conditions") or []
        ]
    else:
        source = [
            {"descricao": c.get("serie"), "quantidade": c.get("quantidade"), "total": c.get("valor_total")}
            for c in record.get("condicoes_pagamento") or []
            if isinstance(c, dict)
        ]
    for item in source:
        total = _decimal(item["total"])
        count = int(_decimal(item["quantidade"]) or 1)
        each = (total / count) if total is not None and count > 0 else None
        rows.append(
            {
                "descricao": str(item["descricao"] or "").strip(),
                "quantidade": count,
                "valor_total": money(total),
                "valor_parcela": money(each),
            }
        )
    monthly = max(rows, key=lambda r: r["quantidade"], default=None)
    parcela = (monthly["valor_parcela"] if monthly and monthly["quantidade"] > 1 else None) or money(
        contract.monthly_fee
    )
    prazo = (str(monthly["quantidade"]) if monthly and monthly["quantidade"] > 1 else None) or (
        str(contract.duration_months) if contract.duration_months else None
    )
    value = contract.value if contract.value is not None else (facts.sale.get("value") if facts else None)
    return {"valor_total": money(value), "parcelas": rows, "parcela_mensal": parcela, "prazo_meses": prazo}


def summary(pagamento: Mapping[str, Any]) -> dict[str, str]:
    """What an invitation summarises: amount, monthly instalment and duration (only those known)."""
    found = {
        "valor_total": pagamento.get("valor_total"),
        "parcela": pagamento.get("parcela_mensal"),
        "prazo_meses": pagamento.get("prazo_meses"),
    }
    return {k: str(v) for k, v in found.items() if v not in (None, "")}


def company_signer(tenant: TenantConfig, role: str) -> dict[str, Any] | None:
    found = next((s for s in tenant.options.company_signers if s.role.value == role), None)
    return None if found is None else {"nome": found.name, "documento": document_text(found.document)}


def contract_context(
    record: Mapping[str, Any],
    contract: Contract,
    tenant: TenantConfig,
    *,
    facts: SiengeFacts | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Everything :data:`VARIABLES` names, from the enriched CRM record and (when read) Sienge."""
    people = list(record.get("pessoas") or [])
    compradores = buyers(people)
    pagamento = payment(facts, record, contract)
    enterprise = facts.enterprise if facts else {}
    unit = facts.unit if facts else {}
    sale = facts.sale if facts else {}
    context: dict[str, Any] = {
        "vendedora": {
            "nome": (facts.company_name if facts else None) or tenant.name,
            "cnpj": document_text(enterprise.get("cnpj")),
        },
        "empreendimento": {
            "nome": enterprise.get("commercial_name") or enterprise.get("name") or record.get("empreendimento"),
            "cnpj": document_text(enterprise.get("cnpj")),
            "cidade": enterprise.get("city"),
            "estado": enterprise.get("state"),
        },
        "unidade": {
            "nome": unit.get("name") or record.get("unidade"),
            "tipo": unit.get("property_type"),
            "area_privativa": number(unit.get("private_area_m2")),
            "data_entrega": br_date(unit.get("delivery_date") or enterprise.get("delivery_date")),
        },
        "contrato": {
            "id": contract.source_id,
            "titulo": contract.title,
            "numero": sale.get("number") or record.get("numero_contrato"),
            "data": br_date(sale.get("contract_date") or record.get("data_venda")),
        },
        "valor_total": pagamento["valor_total"],
        "pagamento": pagamento,
        "compradores": compradores,
        "comprador": compradores[0] if compradores else None,
        "representante": company_signer(tenant, "company_representative"),
        "testemunha_empresa": company_signer(tenant, "company_witness"),
        "variaveis": dict(contract.variables),
        "hoje": br_date(today or date.today()),
    }
    return context

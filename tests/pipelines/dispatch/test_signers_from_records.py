"""Signers from the records (no I/O): the buyer's spouse, every co-buyer, the company's signers, the
interaction per role; and the formatting of what a contract shows (money, areas, documents, dates)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from stdnum.br import cnpj as std_cnpj
from stdnum.br import cpf as std_cpf

from pipelines.dispatch.signers import chain_role, chain_roles, check_people, with_company_signers
from pipelines.dispatch.source import spouse_of
from pipelines.dispatch.variables import br_date, buyers, document_text, money, number, payment, summary
from schemas.canonical.signing import Contract
from schemas.tenant import TenantConfig, TenantOptions
from tests.pipelines.dispatch.support import cpf

CHAIN = [
    {"role": "client", "order": 1},
    {"role": "co_buyer", "order": 1, "required": False},
    {"role": "spouse", "order": 2, "required": False, "interaction": "approve"},
    {"role": "company_representative", "order": 4},
    {"role": "company_witness", "order": 4, "required": False, "interaction": "receive_copy"},
]
REPRESENTATIVE = {"role": "company_representative", "name": "Roberta Souza", "email": "rep@example.com",
                  "document": "52998224725"}


def _tenant(**options: object) -> TenantConfig:
    return TenantConfig.model_validate({
        "id": "t", "name": "Construtora T", "connectors": {"docusign": {"spec": "docusign"}},
        "options": {"signer_chain": CHAIN, "company_signers": [REPRESENTATIVE], **options},
    })


def _person(papel: str, n: int, **extra: object) -> dict:
    return {"papel": papel, "nome": f"Pessoa {n}", "documento": std_cpf.format(cpf(n)),
            "email": f"p{n}@example.com", "celular": "48991234567", **extra}


def test_the_spouse_sienge_recorded_joins_unless_the_reservation_already_has_one() -> None:
    holder = _person("titular", 1, conjuge={"nome": "João Souza", "documento": "11144477735",
                                            "email": "joao@example.com", "celular": "48999990000"})
    spouse = spouse_of(holder, [holder])
    assert spouse is not None and spouse["papel"] == "conjuge" and spouse["nome"] == "João Souza"
    # an associate of type cônjuge, or the same CPF in another role, wins: nobody signs twice
    assert spouse_of(holder, [holder, _person("Cônjuge", 2)]) is None
    assert spouse_of(holder, [holder, {**_person("cocomprador", 3), "documento": "111.444.777-35"}]) is None
    assert spouse_of(_person("titular", 4), []) is None


def test_every_co_buyer_signs_and_each_keeps_a_role_of_its_own() -> None:
    tenant = _tenant()
    record = with_company_signers({"pessoas": [_person("titular", 1), _person("cocomprador", 2),
                                               _person("cocomprador", 3)]}, tenant)
    assert check_people(record["pessoas"], tenant.options, "docusign") == []
    signers = [{"role": r, "routing_order": o} for r, o in
               (("client", 1), ("co_buyer", 1), ("co_buyer", 1), ("company_representative", 4))]
    roles = chain_roles(signers, tenant.options)
    assert [s["role"] for s in roles] == ["client", "co_buyer", "co_buyer_2", "company_representative"]
    assert [chain_role(s["role"]) for s in roles] == ["client", "co_buyer", "co_buyer", "company_representative"]
    assert {s["interaction"] for s in roles} == {"sign"}


def test_interaction_comes_from_the_role_s_slot() -> None:
    roles = chain_roles([{"role": "spouse", "routing_order": 2}, {"role": "company_witness", "routing_order": 4}],
                        _tenant().options)
    assert [s["interaction"] for s in roles] == ["approve", "receive_copy"]


def test_two_titulars_is_still_a_problem() -> None:
    problems = check_people([_person("titular", 1), _person("titular", 2)], _tenant().options)
    assert any(p.message == "more than one person has the role client" for p in problems)


def test_a_required_company_role_without_a_company_signer_names_where_to_add_it() -> None:
    options = TenantOptions.model_validate({"signer_chain": CHAIN, "company_signers": []})
    (problem,) = check_people([_person("titular", 1)], options, "docusign")
    assert problem.role == "company_representative" and "options.company_signers" in problem.message


def test_a_company_signer_without_its_slot_is_refused_at_load() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="signer_chain has no slot"):
        TenantOptions.model_validate({"company_signers": [REPRESENTATIVE]})


def test_buyers_for_the_template_titular_first_with_spouse_and_company_kind() -> None:
    people = [
        _person("cocomprador", 2, conjuge={"nome": "Rita", "documento": "11144477735"}),
        {**_person("titular", 1), "estado_civil": "Solteiro(a)"},
        {"papel": "cocomprador", "nome": "Empresa X Ltda", "documento": "11222333000181", "documento_tipo": "cnpj"},
        _person("testemunha", 9),
    ]
    result = buyers(people)
    assert [b["papel"] for b in result] == ["titular", "cocomprador", "cocomprador"]
    assert result[0]["casado"] is False and result[0]["conjuge"] is None
    assert result[1]["casado"] and result[1]["conjuge"] == {"nome": "Rita", "documento": "111.444.777-35"}
    assert result[2]["pessoa"] == "juridica" and result[2]["documento"] == "11.222.333/0001-81"


def test_payment_and_summary_from_the_crm_conditions() -> None:
    contract = Contract(source_id="1", reservation_id="2", title="C", value=Decimal("450000"))
    record = {"condicoes_pagamento": [{"serie": "Ato", "quantidade": 1, "valor_total": "45000,00"},
                                      {"serie": "Mensais", "quantidade": 120, "valor_total": "405000.00"}]}
    paid = payment(None, record, contract)
    assert [r["valor_parcela"] for r in paid["parcelas"]] == ["R$ 45.000,00", "R$ 3.375,00"]
    assert summary(paid) == {"valor_total": "R$ 450.000,00", "parcela": "R$ 3.375,00", "prazo_meses": "120"}
    assert summary(payment(None, {}, Contract(source_id="1", reservation_id="2", title="C"))) == {}


@given(st.decimals(min_value=0, max_value=10**11, places=2, allow_nan=False, allow_infinity=False))
def test_money_reads_back_to_the_same_amount(amount: Decimal) -> None:
    text = money(amount)
    assert text is not None and text.startswith("R$ ")
    digits = text[3:].replace(".", "").replace(",", ".")
    assert Decimal(digits) == amount.quantize(Decimal("0.01"))
    assert number(amount) == text[3:]


@given(st.integers(min_value=0, max_value=10**8 - 1))
def test_documents_are_written_as_the_library_formats_them(n: int) -> None:
    assert document_text(cpf(n)) == std_cpf.format(cpf(n))
    company = f"{n:08d}0001"
    cnpj = company + std_cnpj.calc_check_digits(company)
    assert document_text(cnpj) == std_cnpj.format(cnpj)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))
def test_dates_are_day_month_year_from_any_input(day: date) -> None:
    expected = day.strftime("%d/%m/%Y")
    assert br_date(day) == br_date(day.isoformat()) == br_date(f"{day.isoformat()}T10:00:00") == expected
    assert br_date(expected) == expected

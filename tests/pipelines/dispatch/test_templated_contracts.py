"""Templated contracts from imported data only: Sienge → import → CV CRM → dispatch → the PDF signers see.

Nobody fills a variable by hand: the sales are Sienge's, the import writes them to the CRM, a CRM user
only creates the contract from the template (``modelo``) and validates it. Each PDF that reaches the
signing provider is read back with pdftotext and must show the values its sale has in Sienge.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from connectors.sandbox import Sandbox, start_sandbox
from pipelines.connections import open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.variables import document_text, money, number
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.store import Store, deadletters, open_store
from pipelines.store.models import Envelope
from schemas.tenant import TenantConfig
from tests.pipelines.dispatch.support import verify_manager
from tests.support.tenants import sandbox_tenant

REPRESENTATIVE = {"role": "company_representative", "name": "Roberta Diretora Souza",
                  "email": "roberta.diretora@example.com", "document": "52998224725"}
COMPANY_WITNESS = {"role": "company_witness", "name": "Tiago Testemunha Lima",
                   "email": "tiago.testemunha@example.com", "document": "11144477735"}
CHAIN = [
    {"role": "client", "order": 1},
    {"role": "co_buyer", "order": 1, "required": False},
    {"role": "spouse", "order": 2, "required": False},
    {"role": "witness", "order": 3, "required": False},
    {"role": "company_representative", "order": 4},
    {"role": "company_witness", "order": 4, "required": False},
]


def _pdf_text(content: bytes) -> str:
    if shutil.which("pdftotext") is None:  # never a skip: the set-up installs it
        pytest.fail("pdftotext is missing: run `make setup` (it installs poppler-utils)", pytrace=False)
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True)
    return " ".join(done.stdout.decode("utf-8").split())


def _sale(base: dict[str, Any], sale_id: int, unit: dict[str, Any], buyers: list[dict[str, Any]]) -> dict:
    sale = copy.deepcopy(base)
    value = 480000.0 + sale_id
    sale.update(
        id=sale_id, number=f"T/{sale_id}", enterpriseId=unit["enterpriseId"], situation="2",
        value=value, totalSellingValue=value,
        salesContractUnits=[{"id": unit["id"], "main": True, "name": unit["name"], "participationPercentage": 100}],
        salesContractCustomers=[
            {"id": b["id"], "name": b["name"], "main": i == 0, "spouse": False,
             "participationPercentage": round(100 / len(buyers), 2)}
            for i, b in enumerate(buyers)
        ],
        paymentConditions=[
            {"conditionTypeId": "AT", "conditionTypeName": "Ato", "installmentsNumber": 1, "totalValue": 48000.0},
            {"conditionTypeId": "PM", "conditionTypeName": "Parcelas mensais", "installmentsNumber": 120,
             "totalValue": value - 48000.0},
        ],
    )
    return sale


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, TenantConfig, Store, dict]]:
    """Four Sienge sales (single buyer, married couple, company buyer, three buyers), imported."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('templated')}/state.db")
    with start_sandbox(customers=24, seed=7, rate_limits=False) as sb:
        sienge = sb.state.sienge
        people = list(sienge.customers.values())
        single = next(c for c in people if c.get("personType") == "Física" and not c.get("spouse"))
        married = next(c for c in people if c.get("spouse"))
        company = next(c for c in people if c.get("personType") == "Jurídica")
        others = [c for c in people if c.get("personType") == "Física" and c not in (single, married)][:3]
        free = [u for u in sienge.units.values() if not u.get("contractId")]
        base = next(iter(sienge.contracts.values()))
        cases = {"single": [single], "married": [married], "company": [company], "three": others}
        sales = {}
        for index, (case, buyers) in enumerate(cases.items()):
            sale = _sale(base, 9001 + index, free[index], buyers)
            sienge.contracts[sale["id"]] = sale
            sales[case] = sale
        tenant = sandbox_tenant(
            sb, unthrottled=True,
            options={"signer_chain": CHAIN, "company_signers": [REPRESENTATIVE, COMPANY_WITNESS]},
        )
        with open_connector(tenant, "sienge", store=store) as s, open_connector(tenant, "cvcrm", store=store) as c:
            run_import(store, tenant, s, c, ImportRequest(full=True))
        yield sb, tenant, store, sales
    store.dispose()


def _crm_creates_contract(sb: Sandbox, sale: dict[str, Any], contract_id: int) -> str:
    """What a CRM user does: a contract from the template on the imported reservation, validated."""
    reserva = next(r for r in sb.state.cvcrm.reservas.values() if r["idreserva_int"] == str(sale["id"]))
    sb.state.cvcrm.contratos[reserva["idreserva"]].append(
        {"idreservacontrato": contract_id, "contrato": f"Compra e venda {sale['number']}",
         "tipo": "Contrato de compra e venda", "assinado": "N", "validado": "S", "modelo": "compra_e_venda"}
    )
    return f"{reserva['idreserva']}:{contract_id}"


def _dispatched(sb: Sandbox, store: Store, tenant: TenantConfig, ref: str) -> tuple[str, list[dict]]:
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[ref]))
    (outcome,) = report.outcomes
    assert outcome.result == "sent", (outcome.result, outcome.reason)
    with store.session() as session:
        row = session.get(Envelope, outcome.envelope_id)
        envelope_id = row.provider_envelope_id
    state = sb.state.docusign
    (content,) = state.documents[envelope_id].values()
    recipients = state.envelopes[envelope_id]["recipients"]
    signers = sorted(recipients.get("signers") or [], key=lambda r: int(r["routingOrder"]))
    return _pdf_text(content), signers


def _expect_sale_facts(sb: Sandbox, sale: dict[str, Any], text: str) -> None:
    sienge = sb.state.sienge
    unit = sienge.units[sale["salesContractUnits"][0]["id"]]
    enterprise = sienge.enterprises[unit["enterpriseId"]]
    assert enterprise["commercialName"] in text
    assert document_text(enterprise["cnpj"]) in text
    assert number(Decimal(str(unit["privateArea"]))) in text
    assert "/".join(reversed(unit["deliveryDate"].split("-"))) in text
    assert money(Decimal(str(sale["value"]))) in text
    monthly = Decimal(str(sale["paymentConditions"][1]["totalValue"])) / 120
    assert money(monthly) in text and "Parcelas mensais" in text and "Ato" in text
    assert REPRESENTATIVE["name"] in text


def test_single_buyer(world) -> None:
    sb, tenant, store, sales = world
    verify_manager(store, tenant)
    sale = sales["single"]
    text, signers = _dispatched(sb, store, tenant, _crm_creates_contract(sb, sale, 880001))
    _expect_sale_facts(sb, sale, text)
    buyer = sb.state.sienge.customers[sale["salesContractCustomers"][0]["id"]]
    assert buyer["name"] in text and document_text(buyer["cpf"]) in text
    assert "casad" not in text.lower()
    assert next(s["roleName"] for s in signers) == "client"
    assert signers[-1]["name"] in {REPRESENTATIVE["name"], COMPANY_WITNESS["name"]}


def test_married_couple_spouse_signs_without_an_associate(world) -> None:
    sb, tenant, store, sales = world
    verify_manager(store, tenant)
    sale = sales["married"]
    text, signers = _dispatched(sb, store, tenant, _crm_creates_contract(sb, sale, 880002))
    _expect_sale_facts(sb, sale, text)
    buyer = sb.state.sienge.customers[sale["salesContractCustomers"][0]["id"]]
    spouse = buyer["spouse"]
    assert spouse["name"] in text and document_text(spouse["cpf"]) in text
    by_role = {s["roleName"]: s for s in signers}
    assert by_role["spouse"]["name"] == spouse["name"] and by_role["spouse"]["routingOrder"] == "2"
    assert by_role["company_representative"]["routingOrder"] == "4"
    assert by_role["company_representative"]["email"] == REPRESENTATIVE["email"]


def test_company_buyer(world) -> None:
    sb, tenant, store, sales = world
    verify_manager(store, tenant)
    sale = sales["company"]
    text, _ = _dispatched(sb, store, tenant, _crm_creates_contract(sb, sale, 880003))
    _expect_sale_facts(sb, sale, text)
    buyer = sb.state.sienge.customers[sale["salesContractCustomers"][0]["id"]]
    assert buyer["name"] in text and document_text(buyer["cnpj"]) in text
    assert "CNPJ" in text


def test_three_buyers_every_one_signs(world) -> None:
    sb, tenant, store, sales = world
    verify_manager(store, tenant)
    sale = sales["three"]
    text, signers = _dispatched(sb, store, tenant, _crm_creates_contract(sb, sale, 880004))
    _expect_sale_facts(sb, sale, text)
    names = [sb.state.sienge.customers[b["id"]]["name"] for b in sale["salesContractCustomers"]]
    assert all(name in text for name in names)
    first = [s for s in signers if s["routingOrder"] == "1"]
    assert sorted(s["roleName"] for s in first) == ["client", "co_buyer", "co_buyer_2"]


def test_required_company_representative_missing_is_a_clear_dead_letter(world) -> None:
    sb, tenant, store, sales = world
    data = tenant.model_dump(mode="json")
    data["options"]["company_signers"] = []
    bare = TenantConfig.model_validate(data)
    verify_manager(store, bare)
    ref = _crm_creates_contract(sb, sales["single"], 880005)
    report = run_dispatch(store, bare, DispatchRequest(contracts=[ref]))
    (outcome,) = report.outcomes
    assert outcome.result == "dead_lettered"
    assert "company_representative" in outcome.reason and "company_signers" in outcome.reason
    with store.session() as session:
        assert session.scalars(select(Envelope).where(Envelope.contract_id == "880005")).first() is None
    letter = deadletters.find_open(store, bare.id, "dispatch", "contract:880005")
    assert letter is not None and "company_representative" in letter.reason and letter.field == "pessoas"

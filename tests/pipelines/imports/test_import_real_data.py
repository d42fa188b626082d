"""The import on real data (issue #17, points 4-7), end to end over the sandbox: Sienge → Ponte → CV CRM.

- a corrected CPF/CNPJ (or a spouse's CPF) never makes a second CRM person;
- fields the CRM owns survive a re-import whether CV's upsert merges or replaces the record;
- every buyer of a sale reaches the CRM reservation, as CV stores them (titular + associados);
- a value longer than CV takes is a dead letter naming the field and the limit.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.sandbox import start_sandbox
from connectors.sandbox.documents import format_cpf, make_cnpj, make_cpf, normalize_document
from pipelines.connections import open_connector
from pipelines.imports.flow import ImportRequest, run_import
from pipelines.imports.translate import Translator
from pipelines.store import Store, deadletters
from pipelines.store.models import IdMap
from ponte.errors import DataError
from ponte.redaction import mask_document
from tests.support.tenants import sandbox_tenant

CUSTOMERS = 30
SEED = 11


@contextlib.contextmanager
def _world(store: Store, tenant_overrides: dict[str, Any] | None = None, **sandbox: Any) -> Iterator[tuple]:
    with start_sandbox(customers=CUSTOMERS, seed=SEED, rate_limits=False, **sandbox) as sb:
        tenant = sandbox_tenant(sb, unthrottled=True, **(tenant_overrides or {}))
        sienge = open_connector(tenant, "sienge", store=store)
        cvcrm = open_connector(tenant, "cvcrm", store=store)
        try:
            yield sb, tenant, sienge, cvcrm
        finally:
            sienge.close()
            cvcrm.close()


def _crm_id(store: Store, tenant_id: str, customer_id: int) -> str | None:
    with store.session() as session:
        return session.scalar(
            select(IdMap.target_id).where(
                IdMap.tenant == tenant_id, IdMap.entity == "person", IdMap.source_id == str(customer_id)
            )
        )


def _people_of(sb: Any, customer_id: int) -> list[dict[str, Any]]:
    """CRM people that carry this Sienge customer's id."""
    return [p for p in sb.state.cvcrm.pessoas.values() if str(p.get("idpessoa_int")) == str(customer_id)]


def _customer(sb: Any, kind: str) -> tuple[int, dict[str, Any]]:
    customers = sb.state.sienge.customers
    if kind == "cnpj":
        return next((cid, c) for cid, c in customers.items() if c.get("cnpj"))
    if kind == "spouse":
        return next((cid, c) for cid, c in customers.items() if (c.get("spouse") or {}).get("cpf"))
    return next((cid, c) for cid, c in customers.items() if c.get("cpf") and not c.get("spouse"))


def _open_letters(store: Store, tenant_id: str, entity: str = "customer") -> list:
    return [d for d in deadletters.list_open(store, tenant_id) if d.record_key.startswith(f"{entity}:")]


# ---- 4. a corrected document never makes a second person -------------------------------------------


@pytest.mark.parametrize("kind", ["cpf", "cnpj", "spouse"])
def test_a_corrected_document_never_makes_a_second_crm_person(store: Store, kind: str) -> None:
    with _world(store) as (sb, tenant, sienge, cvcrm):
        run_import(store, tenant, sienge, cvcrm)
        customer_id, customer = _customer(sb, kind)
        crm_id = _crm_id(store, tenant.id, customer_id)
        assert crm_id is not None
        people = len(sb.state.cvcrm.pessoas)
        rng = random.Random(f"new-{kind}")

        if kind == "spouse":
            old = customer["spouse"]["cpf"]
            new = format_cpf(make_cpf(rng))
            sb.sienge.mutate_customer(customer_id, spouse={**customer["spouse"], "cpf": new})
        elif kind == "cnpj":
            old, new = customer["cnpj"], make_cnpj(rng)
            sb.sienge.mutate_customer(customer_id, cnpj=new)
        else:
            old, new = customer["cpf"], format_cpf(make_cpf(rng))
            sb.sienge.mutate_customer(customer_id, cpf=new)

        report = run_import(store, tenant, sienge, cvcrm)
        assert len(sb.state.cvcrm.pessoas) == people, "a changed document must never make a second person"
        assert [p["idpessoa"] for p in _people_of(sb, customer_id)] == [int(crm_id)]
        assert _crm_id(store, tenant.id, customer_id) == crm_id

        # CV CRM documents no call that changes a person's document by its id: a dead letter that
        # names both documents, masked, and says what to do in the CRM
        assert report.entities["customer"].dead_lettered == 1
        (letter,) = _open_letters(store, tenant.id)
        assert letter.record_key == f"customer:{customer_id}"
        text = f"{letter.reason} {letter.hint}"
        assert mask_document(old) in text and mask_document(new) in text
        for document in (old, new):
            assert normalize_document(document) not in text and document not in text
        assert crm_id in text and "ponte deadletter replay" in text
        assert letter.field == ("conjuge.documento" if kind == "spouse" else "documento")

        # the person's CPF is changed by hand in CV CRM, as the letter says, and the letter is replayed
        person = sb.state.cvcrm.pessoas[int(crm_id)]
        if kind == "spouse":
            sb.cvcrm.enrich_cliente(person["documento"],
                                    conjuge={**person["conjuge"], "documento": normalize_document(new)})
        else:
            sb.cvcrm.enrich_cliente(person["documento"], documento=normalize_document(new))
        run_import(store, tenant, sienge, cvcrm, ImportRequest(ids={"customer": [str(customer_id)]}))
        assert _open_letters(store, tenant.id) == []
        assert len(sb.state.cvcrm.pessoas) == people
        assert [p["idpessoa"] for p in _people_of(sb, customer_id)] == [int(crm_id)]
        person = sb.state.cvcrm.pessoas[int(crm_id)]
        stored = person["conjuge"]["documento"] if kind == "spouse" else person["documento"]
        assert normalize_document(stored) == normalize_document(new)


# ---- 5. fields the CRM owns survive, whatever CV's upsert does with fields a body leaves out -----------


def test_the_sandbox_replace_switch_drops_what_an_upsert_leaves_out() -> None:
    """The switch the next test relies on: under ``replace`` an upsert is the whole record."""
    with start_sandbox(customers=2, seed=SEED, rate_limits=False, cvcrm_upsert="replace") as sb:
        headers = {"email": "integracao@demo.cvcrm.com.br", "token": "cvcrm-sandbox-token"}
        body = {"idpessoa_int": "1", "nome": "Ana", "documento_tipo": "cpf", "documento": "52998224725",
                "telefone": "(48) 99123-4567", "email": "ana@example.com"}
        with httpx.Client(base_url=sb.api["cvcrm"], headers=headers) as client:
            first = client.post("/v1/cadastros/clientes", json=body).json()["idpessoa"]
            sb.cvcrm.enrich_cliente("52998224725", contatos=[{"nome": "Recado", "tipo": "recado"}])
            again = client.post("/v1/cadastros/clientes", json={**body, "nome": "Ana Maria"}).json()["idpessoa"]
        assert again == first
        assert sb.state.cvcrm.pessoas[first]["contatos"] == []
        assert sb.state.cvcrm.pessoas[first]["nome"] == "Ana Maria"


@pytest.mark.parametrize("upsert", ["merge", "replace"])
def test_crm_owned_fields_survive_a_reimport_whether_cv_merges_or_replaces(store: Store, upsert: str) -> None:
    with _world(store, cvcrm_upsert=upsert) as (sb, tenant, sienge, cvcrm):
        run_import(store, tenant, sienge, cvcrm)
        customer_id, customer = _customer(sb, "cpf")
        document = normalize_document(customer["cpf"])
        contato = {"nome": "Recado com a irmã", "telefone": "(48) 3333-4444", "tipo": "recado"}
        associacao = {"idpessoa": 77, "documento": "11144477735", "tipo": "procurador"}
        sb.cvcrm.enrich_cliente(document, contatos=[contato], associacoes=[associacao], sexo="F")
        sb.sienge.mutate_customer(customer_id, name="Nome Corrigido da Silva")

        before = cvcrm.api_calls
        report = run_import(store, tenant, sienge, cvcrm)
        assert report.entities["customer"].updated == 1
        (person,) = _people_of(sb, customer_id)
        assert person["nome"] == "Nome Corrigido da Silva"
        assert contato in person["contatos"] and associacao in person["associacoes"]
        assert person["sexo"] == "F", "a field the mapping does not write is kept too"
        assert cvcrm.api_calls - before == 2, "a changed person costs one read and one write"

        before = cvcrm.api_calls
        run_import(store, tenant, sienge, cvcrm)
        assert cvcrm.api_calls == before, "an unchanged re-run reads nothing from the CRM"


@pytest.mark.parametrize("upsert", ["merge", "replace"])
def test_what_the_crm_team_wrote_on_a_reservation_survives_a_changed_sale(store: Store, upsert: str) -> None:
    """sale_to_reserva says the CRM owns observacoes and idcorretor; an associate of a type Ponte never
    writes (a procurador added in the CRM) is the CRM's too."""
    with _world(store, cvcrm_upsert=upsert) as (sb, tenant, sienge, cvcrm):
        run_import(store, tenant, sienge, cvcrm)
        sale_id, contract = next((k, c) for k, c in sb.state.sienge.contracts.items() if c["situation"] == "2")
        (listed,) = cvcrm.read("reservas", params={"idreserva_int": str(sale_id)})
        reserva = sb.state.cvcrm.reservas[listed["idreserva"]]
        buyers = {p["id"] for p in contract["salesContractCustomers"]}
        attorney = next(cid for cid in sb.state.sienge.customers if cid not in buyers)
        attorney_crm = int(_crm_id(store, tenant.id, attorney) or 0)
        reserva.update(observacoes="Cliente pediu vaga de garagem extra", idcorretor=55)
        reserva["associados"].append({"idpessoa": attorney_crm, "tipo": "Procurador"})
        contract["value"] = round(contract["value"] + 1000, 2)
        contract["modifiedAt"] = datetime.now(UTC).isoformat(timespec="seconds")

        before = cvcrm.api_calls
        report = run_import(store, tenant, sienge, cvcrm, ImportRequest(ids={"sale": [str(sale_id)]}))
        assert report.entities["sale"].updated == 1
        calls = cvcrm.api_calls - before
        reserva = cvcrm.read_one("reservas", listed["idreserva"])
        assert reserva["valor_contrato"] == f"{contract['value']:.2f}"
        assert reserva["observacoes"] == "Cliente pediu vaga de garagem extra"
        assert reserva["idcorretor"] == 55
        assert {"idpessoa": attorney_crm, "tipo": "Procurador"} in reserva["associados"]
        assert calls == 2, "a changed sale costs one read and one write"


def test_a_person_the_crm_held_before_the_first_import_keeps_its_contacts_when_configured(store: Store) -> None:
    """With the connector value ``cliente_upsert: replace``, a first write reads the person by document."""
    overrides = {"connectors": {"cvcrm": {"values": {"cliente_upsert": "replace"}}}}
    with _world(store, overrides, cvcrm_upsert="replace") as (sb, tenant, sienge, cvcrm):
        customer_id, customer = _customer(sb, "cpf")
        document = normalize_document(customer["cpf"])
        record, _ = sb.state.cvcrm.upsert({"idpessoa_int": "lead-1", "nome": "Lead do site",
                                           "documento_tipo": "cpf", "documento": document,
                                           "telefone": "(48) 99999-0000", "email": "lead@example.com"})
        contato = {"nome": "Recado", "telefone": "(48) 3333-4444", "tipo": "recado"}
        sb.cvcrm.enrich_cliente(document, contatos=[contato])
        run_import(store, tenant, sienge, cvcrm, ImportRequest(entities=("customer",)))
        person = sb.state.cvcrm.pessoas[record["idpessoa"]]
        assert person["idpessoa_int"] == str(customer_id)
        assert contato in person["contatos"]
        assert _crm_id(store, tenant.id, customer_id) == str(record["idpessoa"])


# ---- 6. every buyer of a sale --------------------------------------------------------------------------


def test_every_buyer_of_a_three_buyer_sale_is_on_the_crm_reservation(store: Store) -> None:
    with _world(store) as (sb, tenant, sienge, cvcrm):
        contracts = sb.state.sienge.contracts
        sale_id, contract = next((k, c) for k, c in contracts.items() if c["situation"] == "2")
        customers = sb.state.sienge.customers
        main = contract["salesContractCustomers"][0]["id"]
        spouse, co_buyer = [cid for cid in customers if cid != main][:2]
        contract["salesContractCustomers"] = [
            {"id": main, "name": customers[main]["name"], "main": True, "spouse": False,
             "participationPercentage": 50},
            {"id": spouse, "name": customers[spouse]["name"], "main": False, "spouse": True,
             "participationPercentage": 25},
            {"id": co_buyer, "name": customers[co_buyer]["name"], "main": False, "spouse": False,
             "participationPercentage": 25},
        ]
        report = run_import(store, tenant, sienge, cvcrm)
        assert report.total("dead_lettered") == 0
        crm = {cid: int(_crm_id(store, tenant.id, cid) or 0) for cid in (main, spouse, co_buyer)}

        # through CV CRM's read API, as the CRM team (and the dispatch flow) sees the reservation
        (listed,) = cvcrm.read("reservas", params={"idreserva_int": str(sale_id)})
        reserva = cvcrm.read_one("reservas", listed["idreserva"])
        assert reserva["idpessoa"] == crm[main]
        assert sorted((a["idpessoa"], a["tipo"]) for a in reserva["associados"]) == sorted(
            [(crm[spouse], "conjuge"), (crm[co_buyer], "cocomprador")]
        )

        # Sienge drops the co-buyer and makes the spouse the main buyer: the reservation follows
        contract["salesContractCustomers"] = [
            {"id": spouse, "name": customers[spouse]["name"], "main": True, "spouse": False,
             "participationPercentage": 50},
            {"id": main, "name": customers[main]["name"], "main": False, "spouse": True,
             "participationPercentage": 50},
        ]
        contract["modifiedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
        again = run_import(store, tenant, sienge, cvcrm, ImportRequest(ids={"sale": [str(sale_id)]}))
        assert again.entities["sale"].updated == 1
        reserva = cvcrm.read_one("reservas", listed["idreserva"])
        assert reserva["idpessoa"] == crm[spouse]
        assert [(a["idpessoa"], a["tipo"]) for a in reserva["associados"]] == [(crm[main], "conjuge")]


def test_a_sale_without_a_main_buyer_makes_the_first_one_the_titular_once(store: Store) -> None:
    with _world(store) as (sb, tenant, sienge, cvcrm):
        sale_id, contract = next((k, c) for k, c in sb.state.sienge.contracts.items() if c["situation"] == "2")
        others = [cid for cid in sb.state.sienge.customers if cid != contract["salesContractCustomers"][0]["id"]]
        first = contract["salesContractCustomers"][0]["id"]
        contract["salesContractCustomers"] = [
            {"id": first, "name": "x", "main": False, "spouse": False, "participationPercentage": 50},
            {"id": others[0], "name": "y", "main": False, "spouse": False, "participationPercentage": 50},
        ]
        run_import(store, tenant, sienge, cvcrm)
        (listed,) = cvcrm.read("reservas", params={"idreserva_int": str(sale_id)})
        reserva = cvcrm.read_one("reservas", listed["idreserva"])
        assert reserva["idpessoa"] == int(_crm_id(store, tenant.id, first) or 0)
        assert [a["idpessoa"] for a in reserva["associados"]] == [int(_crm_id(store, tenant.id, others[0]) or 0)]


# ---- 7. limits from the target -------------------------------------------------------------------------

#: the CV CRM limit declared for ``nome`` (UNCONFIRMED, schemas/systems/cvcrm.py)
NOME_LIMIT = 150


def _long_name(size: int) -> str:
    words = "Maria Aparecida dos Santos Albuquerque Cavalcanti Vasconcelos "
    return (words * (size // len(words) + 1))[: size - 1] + "a"


@pytest.mark.parametrize("size", [300, 10 * 1024 * 1024], ids=["300-chars", "10-MB"])
def test_a_name_longer_than_cv_takes_is_a_dead_letter_naming_the_field_and_the_limit(
    store: Store, size: int
) -> None:
    with _world(store) as (sb, tenant, sienge, cvcrm):
        run_import(store, tenant, sienge, cvcrm)
        customer_id, _record = _customer(sb, "cpf")
        (person,) = _people_of(sb, customer_id)
        name = _long_name(size)
        assert len(name) == size
        sb.sienge.mutate_customer(customer_id, name=name)

        before = cvcrm.api_calls
        report = run_import(store, tenant, sienge, cvcrm)
        assert report.entities["customer"].dead_lettered == 1
        assert cvcrm.api_calls == before, "nothing is sent for a record that does not fit"
        (letter,) = _open_letters(store, tenant.id)
        assert letter.record_key == f"customer:{customer_id}"
        assert letter.field == "nome"
        assert f"{size:,} characters" in letter.reason and f"at most {NOME_LIMIT}" in letter.reason
        assert name[:200] not in letter.reason
        assert sb.state.cvcrm.pessoas[person["idpessoa"]]["nome"] == person["nome"]
        assert all(len(p["nome"]) <= NOME_LIMIT for p in sb.state.cvcrm.pessoas.values())


def test_a_long_name_within_the_limit_imports(store: Store) -> None:
    """Real names past 100 characters exist (the sandbox's realistic profile has them): they fit."""
    with _world(store) as (sb, tenant, sienge, cvcrm):
        customer_id, _customer_record = _customer(sb, "cpf")
        name = _long_name(140)
        sb.sienge.mutate_customer(customer_id, name=name)
        report = run_import(store, tenant, sienge, cvcrm)
        assert report.total("dead_lettered") == 0
        (person,) = _people_of(sb, customer_id)
        assert person["nome"] == name


def _translator(tenant_id: str = "demo") -> Translator:
    from schemas.tenant import load_tenant

    return Translator(load_tenant(tenant_id), lambda *_args: "9137")


def test_limits_are_checked_where_the_payload_is_made_with_the_mapping_line() -> None:
    raw = {"id": 42, "name": "Ana", "cpf": "529.982.247-25", "email": "ana@example.com",
           "phones": [{"number": "48991234567", "type": "Celular"}],
           "spouse": {"cpf": "111.444.777-35", "name": "J" * 151}}
    with pytest.raises(DataError) as caught:
        _translator().customer(raw)
    error = caught.value
    assert error.field == "conjuge.nome"
    assert "151 characters" in error.message and "at most 150" in error.message
    assert error.source and error.source.startswith("mappings/cvcrm/person_to_cliente.yaml:")
    assert "UNCONFIRMED" in error.message or "UNCONFIRMED" in (error.hint or "")


def test_a_sale_field_longer_than_cv_takes_is_refused_too() -> None:
    raw = {"id": 9, "enterpriseId": 1, "number": "9" * 61, "situation": "2", "value": 10.0,
           "salesContractUnits": [{"id": 5}], "salesContractCustomers": [{"id": 1, "main": True}]}
    with pytest.raises(DataError) as caught:
        _translator().sale(raw)
    assert caught.value.field == "numero_contrato"
    assert "61 characters" in caught.value.message

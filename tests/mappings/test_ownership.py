"""Field ownership: an import updates what Sienge owns and never wipes what the CRM enriched."""

from __future__ import annotations

import copy
import json

import pytest

from mappings import MappingContext, load_mapping, merge_owned
from ponte.errors import ConfigurationError
from schemas.systems.cvcrm import CvCliente
from tests.mappings.conftest import SAMPLES

CUSTOMER = SAMPLES / "sienge/customer_to_person/pessoa_fisica_casada.json"


def _import(customer: dict, stored: dict | None) -> dict:
    """What the import pipeline does per customer: Sienge -> person -> CV CRM body, merged by ownership."""
    ctx = MappingContext()
    person = load_mapping("sienge/customer_to_person").run(customer, ctx)
    to_cliente = load_mapping("cvcrm/person_to_cliente")
    body = to_cliente.validate(to_cliente.apply(person, ctx)).model_dump(mode="json", exclude_none=True)
    return merge_owned(stored, body, to_cliente)


def test_reimport_keeps_crm_contacts_and_associations_and_updates_owned_fields() -> None:
    customer = json.loads(CUSTOMER.read_text(encoding="utf-8"))
    first = _import(customer, None)

    # what CV CRM holds after its team enriched the person
    stored = copy.deepcopy(first)
    stored["idpessoa"] = 9137
    stored["contatos"] = [{"nome": "Ana (irmã)", "telefone": "(48) 98888-1111", "tipo": "recado"}]
    stored["associacoes"] = [{"idpessoa": 9140, "documento": "03642621252", "tipo": "cocomprador"}]
    stored["observacao_interna"] = "prefere contato à tarde"  # a field the mapping does not know

    # Sienge changes the customer: new e-mail, new address, no more spouse data
    changed = copy.deepcopy(customer)
    changed["email"] = "maria.nova@example.com.br"
    changed["addresses"][0].update({"streetName": "Avenida Beira-Mar Norte", "number": "2500", "complement": ""})
    del changed["spouse"]

    merged = _import(changed, stored)

    assert merged["contatos"] == stored["contatos"]
    assert merged["associacoes"] == stored["associacoes"]
    assert merged["observacao_interna"] == "prefere contato à tarde"
    assert merged["idpessoa"] == 9137
    assert merged["email"] == "maria.nova@example.com.br"
    assert merged["endereco"] == "Avenida Beira-Mar Norte"
    assert merged["numero"] == "2500"
    assert "complemento" not in merged  # Sienge owns it and cleared it
    assert "conjuge" not in merged  # likewise
    CvCliente.model_validate(merged)  # still a valid upsert body


def test_first_import_seeds_fields_the_crm_owns() -> None:
    mapping = load_mapping("cvcrm/person_to_cliente")
    merged = merge_owned({}, {"nome": "Maria", "contatos": [{"nome": "x"}]}, mapping)
    assert merged["contatos"] == [{"nome": "x"}]
    merged = merge_owned({"contatos": [{"nome": "crm"}]}, {"contatos": [{"nome": "x"}]}, mapping)
    assert merged["contatos"] == [{"nome": "crm"}]


def test_owned_fields_and_owner_of() -> None:
    mapping = load_mapping("cvcrm/person_to_cliente")
    assert mapping.owned_fields("cvcrm") == {"contatos", "associacoes"}
    assert {"nome", "documento", "email", "telefone"} <= mapping.owned_fields("sienge")
    assert mapping.owner_of("email") == "sienge"
    assert mapping.owner_of("contatos") == "cvcrm"


def test_merging_as_the_crm_keeps_what_sienge_owns() -> None:
    mapping = load_mapping("cvcrm/person_to_cliente")
    stored = {"email": "a@example.com", "contatos": []}
    merged = merge_owned(stored, {"email": "b@example.com", "contatos": [{"nome": "n"}]}, mapping, owner="cvcrm")
    assert merged == {"email": "a@example.com", "contatos": [{"nome": "n"}]}


def test_a_mapping_without_ownership_cannot_merge(tmp_path) -> None:
    path = tmp_path / "no_owner.yaml"
    path.write_text("version: 1\nsource: sienge/unit\ntarget: canonical/unit\nfields:\n"
                    "  source_id: {from: id, transforms: [str]}\n"
                    "  enterprise_source_id: {from: enterpriseId, transforms: [str]}\n  name: name\n")
    with pytest.raises(ConfigurationError, match="no ownership section"):
        merge_owned({}, {}, load_mapping(path))

"""The compiler: generated functions behave like the language says, fail with their place, and the
mapping files validate against the exported mapping JSON Schema."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mappings import MAPPINGS_DIR, MappingContext, compile_file, list_mappings, load_mapping
from mappings.language import json_schema
from mappings.paths import parse_path
from mappings.samples import load_context
from ponte.errors import ConfigurationError, DataError
from schemas.canonical import Person
from tests.mappings.conftest import SAMPLES


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- paths: compiled access equals a naive walk ------------------------------------------------------

def reference(record: Any, path: str) -> Any:
    """Read ``path`` from ``record`` the slow, obvious way (the specification of compiled paths)."""
    parsed = parse_path(path)

    def walk(value: Any, segments: tuple) -> Any:
        for position, segment in enumerate(segments):
            kind = type(segment).__name__
            if value is None:
                return [] if any(type(s).__name__ == "Star" for s in segments[position:]) else None
            if kind == "Key":
                value = value.get(segment.name)
            elif kind == "Index":
                value = value[segment.index] if value and -len(value) <= segment.index < len(value) else None
            elif kind == "Find":
                value = next((i for i in value or [] if i is not None and i.get(segment.key) == segment.value), None)
            else:  # Star: every item, flattened
                out = []
                for item in value:
                    got = walk(item, segments[position + 1:])
                    if any(type(s).__name__ == "Star" for s in segments[position + 1:]):
                        out.extend(got)
                    else:
                        out.append(got)
                return out
        return value

    return walk(record, parsed.segments)


scalars = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["", "a", "b"]), st.booleans())
items = st.fixed_dictionaries({}, optional={"k": scalars, "v": scalars, "sub": st.lists(
    st.fixed_dictionaries({}, optional={"v": scalars}), max_size=3)})
records = st.fixed_dictionaries({}, optional={
    "a": st.fixed_dictionaries({}, optional={"b": scalars, "c": st.fixed_dictionaries({}, optional={"d": scalars})}),
    "xs": st.lists(items, max_size=4),
    "s": scalars,
})
PATHS = ["s", "a.b", "a.c.d", "xs[0].v", "xs[-1].k", "xs[*].v", "xs[k=1].v", "xs[k=a].v", "xs[*].sub[*].v",
         "xs[1].sub[0].v"]


@pytest.fixture(scope="module")
def path_mapping(tmp_path_factory: pytest.TempPathFactory):
    fields = "".join(f"  f{i}: {json.dumps(p)}\n" for i, p in enumerate(PATHS))
    path = tmp_path_factory.mktemp("paths") / "paths.yaml"
    path.write_text(_free_mapping(fields))
    return compile_file(path)


def _free_mapping(fields: str) -> str:
    # sienge/customer's procurators is typed Any: paths under it are not checked, any shape is allowed
    body = "".join(line.replace(': "', ': "procurators.', 1) for line in fields.splitlines(keepends=True))
    return ("version: 1\nsource: sienge/customer\ntarget: sienge/customer\nrecord_id: id\nfields:\n"
            "  id: id\n  name: name\n  procurators:\n    fields:\n"
            + "".join("    " + line for line in body.splitlines(keepends=True)))


@settings(max_examples=200, deadline=None)
@given(records)
def test_compiled_paths_read_what_a_naive_walk_reads(path_mapping, record: dict) -> None:
    out = path_mapping.apply({"id": 1, "name": "x", "procurators": record})
    produced = out.get("procurators", {})
    for index, path in enumerate(PATHS):
        expected = reference(record, path)
        assert produced.get(f"f{index}") == expected, path


# ---- conditions, filters, cases, lists --------------------------------------------------------------

def test_filters_conditions_cases_items_and_index(tmp_path: Path) -> None:
    path = write(tmp_path, """
version: 7
source: sienge/sales_contract
target: cvcrm/reserva
filters:
  - {path: situation, in: ["1", "2", "3"]}
fields:
  idreserva_int: {from: id, transforms: [str]}
  idempreendimento_int: {from: enterpriseId, transforms: [str]}
  idunidade_int: {from: "salesContractUnits[0].id", transforms: [str]}
  idpessoa_int: {from: "salesContractCustomers[main=true].id", transforms: [str]}
  situacao:
    cases:
      - when: {path: situation, equals: "3"}
        value: cancelada
      - when: {any: [{path: situation, equals: "2"}, {not: {path: issueDate, exists: false}}]}
        value: vendida
      - value: autorizada
  valor_contrato: {from: [value, totalSellingValue], transforms: [money_text], default: "0.00"}
  unidades_int: {items: [{from: "salesContractUnits[0].id", transforms: [str]}, "number", "externalId"]}
  observacoes: {template: "Contrato {number} ({enterpriseName})", when: {path: number, matches: '^\\d+/'}}
  pessoas:
    each: salesContractCustomers
    filter: {path: participationPercentage, not_equals: 0}
    fields:
      idpessoa_int: {from: id, transforms: [str]}
      principal: {from: main, default: false}
      percentual: {from: $index, transforms: [str]}
      nome: {from: $root.enterpriseName}
""")
    mapping = compile_file(path)
    base = {"id": 9, "enterpriseId": 1, "enterpriseName": "Ed. Sol", "number": "012/9", "situation": "2",
            "salesContractUnits": [{"id": 5}],
            "salesContractCustomers": [{"id": 1, "main": False, "participationPercentage": 0},
                                       {"id": 2, "main": True}, {"id": 3}]}
    assert mapping.version == 7
    assert mapping.apply(dict(base, situation="0")) is None  # filtered
    out = mapping.apply(base)
    assert out["situacao"] == "vendida"
    assert out["valor_contrato"] == "0.00"
    assert out["idpessoa_int"] == "2"
    assert out["unidades_int"] == ["5", "012/9"]
    assert out["observacoes"] == "Contrato 012/9 (Ed. Sol)"
    assert [p["idpessoa_int"] for p in out["pessoas"]] == ["2", "3"]
    assert [p["percentual"] for p in out["pessoas"]] == ["2", "3"]  # $index counts source items
    assert out["pessoas"][0]["nome"] == "Ed. Sol"
    assert mapping.apply(dict(base, situation="3"))["situacao"] == "cancelada"
    assert mapping.apply(dict(base, situation="1", issueDate=None, number="x"))["situacao"] == "autorizada"
    assert "observacoes" not in mapping.apply(dict(base, number="x"))
    assert mapping.apply_many(dict(base, situation="0")) == []


PARENT_MAPPING = """
version: 1
source: canonical/envelope
target: sienge/customer
record_id: contract_id
fields:
  id: {from: contract_id, transforms: [int]}
  name: document_name
  procurators:
    fields:
      signers:
        each: signers
        fields:
          role: role
          pages:
            cases:
              - when: {path: role, in: "@positions[*].role"}
                each: $root.positions
                filter: {path: role, equals: "@$parent.role"}
                item: {from: page}
              - value: none
          first_page:               # a selector's @path may be a context path too
            each: $root.signers
            filter: {path: role, equals: "@$parent.role"}
            item: {from: "$root.positions[role=@$parent.role].page"}
      unplaced:
        each: signers
        filter: {path: role, not_in: "@positions[*].role"}
        item: {from: role}
"""


def test_parent_reads_the_enclosing_item_and_in_takes_a_path(tmp_path: Path) -> None:
    mapping = compile_file(write(tmp_path, PARENT_MAPPING))
    signer = {"routing_order": 1, "name": "N", "document": "52998224725"}
    record = {"contract_id": "7", "document_name": "d.pdf",
              "signers": [dict(signer, role="client"), dict(signer, role="spouse"), dict(signer, role="witness")],
              "positions": [{"role": "spouse", "page": 2}, {"role": "client", "page": 1},
                            {"role": "spouse", "page": 3}]}
    out = mapping.apply(record)["procurators"]
    assert [(s["role"], s["pages"]) for s in out["signers"]] == [
        ("client", [1]), ("spouse", [2, 3]), ("witness", "none")]
    assert [s["first_page"] for s in out["signers"]] == [[1], [2], []]
    assert out["unplaced"] == ["witness"]
    assert mapping.apply(dict(record, positions=[]))["procurators"]["unplaced"] == ["client", "spouse", "witness"]


def test_parent_is_checked_against_the_enclosing_item_and_in_wants_a_list_or_a_path(tmp_path: Path) -> None:
    typo = PARENT_MAPPING.replace("@$parent.role", "@$parent.rol")
    with pytest.raises(ConfigurationError, match=r"no field 'rol'.*did you mean 'role'"):
        compile_file(write(tmp_path, typo, "typo.yaml"))
    outside = PARENT_MAPPING.replace("name: document_name", "name: $parent.document_name")
    with pytest.raises(ConfigurationError, match="\\$parent is the object an each is written in"):
        compile_file(write(tmp_path, outside, "outside.yaml"))
    text = PARENT_MAPPING.replace('not_in: "@positions[*].role"', "not_in: client")
    with pytest.raises(ConfigurationError, match="not_in takes a list of values, or '@path'"):
        compile_file(write(tmp_path, text, "text.yaml"))


def test_split_produces_one_record_per_item_with_context(tmp_path: Path) -> None:
    mapping = load_mapping("whatsapp/status_to_notification")
    assert mapping.is_split
    with pytest.raises(DataError, match="reads \\$tenant but the run has no tenant"):
        mapping.apply({"object": "whatsapp_business_account", "entry": []})


# ---- run-time errors name the file, line, field and record -------------------------------------------

def test_runtime_error_names_file_line_field_and_record() -> None:
    mapping = load_mapping("sienge/customer_to_person")
    record = {"id": 4217, "name": "Maria", "cpf": "52998224725", "birthDate": "09/03/1984"}
    with pytest.raises(DataError) as caught:
        mapping.apply(record)
    error = caught.value
    line = mapping.field_lines["birth_date"]
    assert error.source == f"mappings/sienge/customer_to_person.yaml:{line}"
    assert error.field == "birth_date" and error.record == "4217"
    assert "not a date in the form Y-m-d" in str(error)


def test_wrong_shape_is_a_data_error_not_a_crash() -> None:
    mapping = load_mapping("sienge/customer_to_person")
    with pytest.raises(DataError, match="does not have the shape") as caught:
        mapping.apply({"id": 1, "name": "A", "cpf": "52998224725", "spouse": "not an object"})
    assert caught.value.field == "spouse"


def test_missing_params_and_record_type_are_clear() -> None:
    mapping = load_mapping("docusign/envelope_to_definition")
    with pytest.raises(DataError, match="reads \\$tenant but the run has no tenant"):
        mapping.apply({"signers": []}, MappingContext())
    golden = load_context(SAMPLES / "docusign/envelope_to_definition/tres_signatarios.context.json").tenant
    with pytest.raises(DataError, match="needs the run parameter\\(s\\) document_base64"):
        mapping.apply({"signers": []}, MappingContext(tenant=golden))
    with pytest.raises(DataError, match="must be an object"):
        mapping.apply(["not", "a", "record"])


def test_run_validates_against_the_target_schema(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nsource: sienge/customer\ntarget: canonical/person\nfields:\n"
                 "  document: cpf\n  person_type: {value: company}\n  name: name\n")
    mapping = compile_file(path)
    record = {"id": 8, "name": "Ana", "cpf": "52998224725"}
    assert mapping.apply(record)["person_type"] == "company"  # apply does not validate
    with pytest.raises(DataError, match="does not satisfy canonical/person") as caught:
        mapping.run(record)
    assert caught.value.record == "8"
    assert caught.value.source.endswith("m.yaml:3")  # the record as a whole: the target line


def test_apply_accepts_pydantic_models() -> None:
    person = Person(document="52998224725", person_type="individual", name="Maria", email="m@example.com",
                    mobile="+5548991234567", source_ids={"sienge": "1"})
    out = load_mapping("cvcrm/person_to_cliente").apply(person)
    assert out["documento"] == "52998224725" and out["telefone"] == "(48) 99123-4567"


# ---- loading, caching, explaining ------------------------------------------------------------------------

def test_cache_recompiles_when_the_file_changes(tmp_path: Path) -> None:
    text = "version: {v}\nsource: sienge/unit\ntarget: canonical/unit\nfields:\n" \
           "  source_id: {{from: id, transforms: [str]}}\n" \
           "  enterprise_source_id: {{from: enterpriseId, transforms: [str]}}\n  name: name\n"
    path = write(tmp_path, text.format(v=1))
    first = load_mapping(path)
    assert load_mapping(path) is first
    path.write_text(text.format(v=2), encoding="utf-8")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert load_mapping(path).version == 2


def test_explain_lists_target_source_transforms_and_owner() -> None:
    rows = {row.target: row for row in load_mapping("cvcrm/person_to_cliente").explain()}
    assert rows["telefone"].source == "mobile | phones[0]"
    assert rows["telefone"].transforms == "phone_format('national')"
    assert rows["telefone"].owner == "sienge"
    assert rows["conjuge.nome"].source == "spouse.name"
    assert rows["conjuge"].condition == "spouse exists"
    assert load_mapping("cvcrm/person_to_cliente").lineage == "cvcrm/person_to_cliente@1"


def test_generated_code_is_plain_python_without_parsing() -> None:
    code = load_mapping("sienge/customer_to_person").code
    assert code.startswith("def apply(r, ctx=None):")
    for forbidden in ("parse_path", "yaml", "model_validate", "REGISTRY"):
        assert forbidden not in code


# ---- the language's JSON Schema -----------------------------------------------------------------------

def test_every_shipped_mapping_validates_against_the_mapping_json_schema() -> None:
    validator = Draft202012Validator(json_schema())
    for name in list_mappings():
        data = yaml.safe_load((MAPPINGS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
        assert errors == [], name


def test_mapping_json_schema_offers_transform_names() -> None:
    schema = json_schema()
    items = schema["$defs"]["FieldMapping"]["properties"]["transforms"]["items"]["anyOf"]
    assert "phone" in items[0]["enum"]
    assert Draft202012Validator(schema).is_valid({"version": 1, "source": "a", "target": "b",
                                                  "fields": {"x": "path"}})


def test_the_example_in_the_docs_compiles_and_runs(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "mappings.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    mapping = compile_file(write(tmp_path, example, "example.yaml"))
    out = mapping.run({"id": 3, "name": " Ana ", "cpf": "529.982.247-25", "spouse": {"cpf": "94580730224",
                                                                                       "name": "Rui"}})
    assert out.name == "Ana" and out.spouse.document == "94580730224" and out.source_ids == {"sienge": "3"}

"""Broken mappings fail at load with the file, the line, the field and the fix (table-driven)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mappings import compile_file, load_mapping, validate_all
from ponte.errors import ConfigurationError

HEADER = "version: 1\nsource: sienge/customer\ntarget: canonical/person\nfields:\n"
PERSON = (
    "  document: {from: [cpf, cnpj], transforms: [tax_id]}\n"
    "  person_type: {value: individual}\n"
    "  name: name\n"
)

# (case id, file text, expected line, fragments the message must contain: the problem and the fix)
CASES = [
    (
        "unknown source path",
        HEADER + PERSON + "  email: emial\n",
        8,
        ["field email", "unknown source path 'emial'", "did you mean 'email'"],
    ),
    (
        "unknown nested path",
        HEADER + PERSON + "  email: spouse.mail\n",
        8,
        ["no field 'mail' in spouse", "did you mean 'email'"],
    ),
    (
        "list without a selector",
        HEADER + PERSON + "  mobile: phones.number\n",
        8,
        ["phones is a list", "phones[*].number", "phones[0].number"],
    ),
    (
        "missing required target field",
        HEADER + "  person_type: {value: individual}\n  name: name\n",
        4,
        ["required target field(s) document of target canonical/person are not produced",
         "add document: <source path>"],
    ),
    (
        "missing required field of list items",
        "version: 1\nsource: sienge/sales_contract\ntarget: canonical/sale\nfields:\n"
        "  source_id: {from: id, transforms: [str]}\n"
        "  enterprise_source_id: {from: enterpriseId, transforms: [str]}\n"
        "  unit_source_ids: {each: salesContractUnits, item: {from: id, transforms: [str]}}\n"
        "  status: {from: situation, transforms: [{enum: sienge_sale_situation}]}\n"
        "  value: {from: value, transforms: [money]}\n"
        "  buyers:\n"
        "    each: salesContractCustomers\n"
        "    fields:\n"
        "      name: name\n",
        12,
        ["required target field(s) person_source_id of target buyers[]", "add person_source_id"],
    ),
    (
        "unknown target field",
        HEADER + PERSON + "  nmae: name\n",
        8,
        ["target canonical/person has no field 'nmae'", "did you mean 'name'"],
    ),
    (
        "bad transform argument",
        HEADER + PERSON + "  birth_date:\n    from: birthDate\n    transforms: [{date: {format: dd/mm}}]\n",
        10,
        ["field birth_date", "transform 'date': bad argument", "use one of iso, sienge, cvcrm"],
    ),
    (
        "unknown transform argument",
        HEADER + PERSON + "  email: {from: email, transforms: [{truncate: {lenght: 5}}]}\n",
        8,
        ["transform 'truncate': bad argument", "lenght: Extra inputs are not permitted", "arguments of truncate"],
    ),
    (
        "unknown enum table",
        HEADER + PERSON + "  civil_status: {from: civilStatus, transforms: [{enum: {table: civil}}]}\n",
        8,
        ["no enum table 'civil'", "sienge_civil_status"],
    ),
    (
        "invalid regular expression",
        HEADER + PERSON + "  email: {from: email, transforms: [{regex: '(unclosed'}]}\n",
        8,
        ["transform 'regex'", "not a valid regular expression"],
    ),
    (
        "unknown transform",
        HEADER + PERSON + "  mobile: {from: 'phones[0].number', transforms: [phon]}\n",
        8,
        ["unknown transform 'phon'", "did you mean 'phone'"],
    ),
    (
        "many-valued transform on one path",
        HEADER + PERSON + "  email: {from: email, transforms: [concat]}\n",
        8,
        ["transform 'concat' takes several values", "from: [email, other.path]"],
    ),
    (
        "number compared with a text field",
        HEADER + PERSON + "  email: {from: email, when: {path: personType, equals: 1}}\n",
        8,
        ["personType is a text", "write it quoted, '1'"],
    ),
    (
        "undeclared parameter",
        HEADER + PERSON + "  email: $params.mail\n",
        8,
        ["reads a parameter the mapping does not declare", "add it to `params:`"],
    ),
    (
        "each over a value that is not a list",
        HEADER + PERSON + "  phones: {each: name, item: {from: number}}\n",
        8,
        ["'name' is a text, not a list", "point each at a list"],
    ),
    (
        "$index outside each",
        HEADER + PERSON + "  email: $index\n",
        8,
        ["$index is the position of a list item", "inside each"],
    ),
    (
        "template placeholder with a bad path",
        HEADER + PERSON + "  email: {template: '{nam}@example.com'}\n",
        8,
        ["unknown source path 'nam'", "did you mean 'name'"],
    ),
    (
        "ownership names an unknown field",
        HEADER + PERSON + "ownership:\n  default: sienge\n  fields: {contacts: cvcrm}\n",
        10,
        ["ownership names 'contacts'", "fields of canonical/person"],
    ),
    (
        "misspelt language key",
        HEADER + PERSON + "  email: {from: email, transform: [lower]}\n",
        8,
        ["mapping field fields.email.transform: unknown field", "see docs/mappings.md"],
    ),
    (
        "two sources for one field",
        HEADER + PERSON + "  email: {from: email, value: x@example.com}\n",
        8,
        ["give one source, not several (from, value)"],
    ),
    (
        "unknown source schema",
        HEADER.replace("sienge/customer", "sienge/custmer") + PERSON,
        2,
        ["unknown source schema 'sienge/custmer'", "did you mean 'sienge/customer'"],
    ),
    (
        "bad path syntax",
        HEADER + PERSON + "  mobile: 'phones[main=true.number'\n",
        8,
        ["unclosed '['", "fix the path syntax"],
    ),
    (
        "not valid YAML",
        HEADER + PERSON + "  email: {from: email\n",
        9,
        ["not valid YAML", "fix the indentation or quoting"],
    ),
]


@pytest.mark.parametrize(("text", "line", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_mapping_fails_at_load_naming_file_line_and_fix(
    tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        compile_file(path)
    message = str(caught.value)
    assert f"broken.yaml:{line}:" in message, message
    assert "(fix: " in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_the_valid_base_of_the_table_compiles(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(HEADER + PERSON + "  email: email\n", encoding="utf-8")
    assert compile_file(path).produced == ("document", "person_type", "name", "email")


def test_unknown_mapping_name_suggests_the_closest() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'sienge/customer_to_person'"):
        load_mapping("sienge/customer_to_persons")


def test_every_shipped_mapping_is_valid() -> None:
    results = validate_all()
    assert len(results) >= 18
    assert [(item, error) for item, error in results if error] == []

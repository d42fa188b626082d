"""The spec language: shipped specs validate, mistakes fail at load with file:line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.spec import available_specs, json_schema, load_spec, validate_specs
from connectors.spec.templates import MISSING, TemplateSyntaxError, check, parse, render
from ponte.errors import ConfigurationError, DataError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["clicksign", "cvcrm", "docusign", "sienge", "smtp", "whatsapp", "zapsign"]


def test_every_shipped_spec_validates() -> None:
    assert set(SHIPPED) <= set(available_specs())
    assert validate_specs() == []


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_match_the_exported_json_schema(name: str) -> None:
    schema = json.loads((ROOT / "schemas/json/connector-spec.schema.json").read_text())
    data = yaml.safe_load((ROOT / f"connectors/specs/{name}.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


def test_exported_json_schema_is_current_and_valid() -> None:
    committed = json.loads((ROOT / "schemas/json/connector-spec.schema.json").read_text())
    assert committed == json_schema()
    jsonschema.Draft202012Validator.check_schema(committed)


def test_zapsign_is_added_with_yaml_only() -> None:
    spec = load_spec("zapsign")
    assert {"create_doc", "register_webhook"} <= set(spec.actions) and "events" in spec.webhooks
    assert spec.signing is not None  # what dispatch and back-sync read (docs/dispatch.md)
    # the sandbox stand-in is not Ponte's code; nothing else in connectors/ is ZapSign's
    assert [p for p in (ROOT / "connectors").glob("**/zapsign*.py") if "sandbox" not in p.parts] == []
    # the real guarantee: no ZapSign-specific Python in the pipelines or the orchestration
    mentions = [
        str(path.relative_to(ROOT))
        for layer in ("pipelines", "orchestration")
        for path in (ROOT / layer).rglob("*.py")
        if "zapsign" in path.read_text(encoding="utf-8").lower()
    ]
    assert mentions == []


BASE = """\
kind: http
name: demo
values:
  base_url: {description: host}
secrets:
  token: {description: token}
base_url: "{values.base_url}"
auth: {type: bearer, token: "{secrets.token}"}
"""

CASES = [
    # (yaml appended to BASE, line, text expected in the message)
    ("streams:\n  s:\n    path: /x\n    pagination: {type: offset, page_size: 500, max_page_size: 200}\n",
     12, "page_size 500 is above the API's max_page_size 200"),
    ("streams:\n  s:\n    path: /x/{values.subdomain}\n", 11, "values 'subdomain' is not declared"),
    ("streams:\n  s:\n    path: /x/{record.id}\n", 11, "'record' is not available here"),
    ("actions:\n  a:\n    path: /x\n    body: {type: json, template: {n: \"{record.name\"}}\n", 12, "unclosed '{'"),
    ("actions:\n  a:\n    path: /x\n    mehtod: POST\n", 12, "unknown field"),
    ("streams:\n  s:\n    path: /x\n    pagination: {type: pages}\n", 12, "pagination"),
    ("streams:\n  child:\n    path: /c\n    parent: {stream: ghost}\n", 12, "parent stream 'ghost' is not defined"),
    ("webhooks:\n  w:\n    verify: {type: hmac, secret: \"{secrets.token}\", headers: [X-Sig]}\n"
     "    event_id: {header: a, body: b}\n    event_type: {header: t}\n", 12, "exactly one of"),
    ("webhooks:\n  w:\n    verify: {type: bearer, token: \"{secrets.tokn}\"}\n"
     "    event_id: {header: a}\n    event_type: {header: t}\n", 11, "secrets 'tokn' is not declared"),
    ("actions:\n  a:\n    path: /x\n    find_existing: {stream: nope}\n", 12, "stream 'nope' is not defined"),
    ("actions:\n  a:\n    path: /x\n    auth: v3\n", 12, "auth 'v3' is not defined"),
]


@pytest.mark.parametrize("extra,line,message", CASES)
def test_spec_errors_name_file_line_and_field(tmp_path: Path, extra: str, line: int, message: str) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(BASE + extra)
    with pytest.raises(ConfigurationError) as info:
        load_spec(path)
    text = str(info.value)
    assert f"{path}:{line}:" in text and message in text, text


def test_unknown_spec_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_spec("sap")
    assert "sienge" in str(info.value)


# ----------------------------------------------------------------------------------------- templates


def test_whole_reference_keeps_the_type_and_text_interpolates() -> None:
    ctx = {"record": {"n": 3, "items": [1, 2], "name": "Ana"}}
    assert render({"a": "{record.n}", "b": "{record.items}", "c": "Olá {record.name} ({record.n})"}, ctx) == {
        "a": 3, "b": [1, 2], "c": "Olá Ana (3)"}


def test_optional_references_drop_keys_and_list_items() -> None:
    out = render({"a": "{record.x?}", "b": ["{record.y?}", 1], "c": "x{record.z?}y"}, {"record": {}})
    assert out == {"b": [1], "c": "xy"}


def test_missing_required_reference_is_a_data_error_naming_the_field() -> None:
    with pytest.raises(DataError) as info:
        render({"cpf": "{record.customer.cpf}"}, {"record": {"customer": {}}})
    assert info.value.field == "customer.cpf"


def test_each_builds_lists() -> None:
    tpl = {"signers": {"$each": "{record.people}", "$as": "p", "$do": {"n": "{p.name}", "o": "{p.order}",
                                                                      "tabs": {"$each": "{p.tabs}", "$do": {"page": "{item}"}}}}}
    rec = {"people": [{"name": "A", "order": 1, "tabs": [1]}, {"name": "B", "order": 2, "tabs": []}]}
    assert render(tpl, {"record": rec}) == {"signers": [{"n": "A", "o": 1, "tabs": [{"page": 1}]},
                                                        {"n": "B", "o": 2, "tabs": []}]}
    assert [r.dotted for r in check(tpl, {"record"})] == ["record.people", "p.name", "p.order", "p.tabs", "item"]


@pytest.mark.parametrize("text", ["{", "}", "{record..x}", "{1abc}", "a {record.x b"])
def test_malformed_templates_are_rejected(text: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        parse(text)


names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
literal = st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), max_size=20)


@given(parts=st.lists(st.one_of(literal, names.map(lambda n: ("ref", n))), max_size=6),
       values=st.dictionaries(names, st.text(max_size=10), max_size=5))
def test_render_is_literal_text_plus_values(parts: list, values: dict) -> None:
    template = "".join(f"{{record.{p[1]}?}}" if isinstance(p, tuple) else p for p in parts)
    expected = "".join(str(values.get(p[1], "")) if isinstance(p, tuple) else p for p in parts)
    result = render(template, {"record": values})
    single = parse(template).single
    if single is not None:  # the whole leaf is one reference: the value itself, or dropped
        assert result == values.get(single.path[0], MISSING)
    else:
        assert result == expected


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_escaped_braces_round_trip(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert render(escaped, {}) == text


def test_the_example_in_the_guide_is_a_valid_spec(tmp_path: Path) -> None:
    guide = (ROOT / "docs/connectors.md").read_text()
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "acmecrm.yaml"
    path.write_text(example)
    spec = load_spec(path)
    assert {"contacts", "deals", "deals_of_contact"} == set(spec.streams)
    assert spec.actions["create_deal"].find_existing is not None

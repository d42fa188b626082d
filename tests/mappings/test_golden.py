"""Golden tests: each mapping turns sample payloads (shaped like ../shared/specs and the sandbox) into
the expected records, and every output validates against its exported JSON Schema.

Samples live in ``samples/<mapping>/<case>.json`` with ``<case>.expected.json`` (the output, ``null``
when a filter skips the record, or ``{"expected_error": ...}``) and an optional ``<case>.context.json``
(tenant, id-map rows, params, clock): the same files ``ponte mapping test`` reads.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from mappings import list_mappings, load_mapping
from mappings.samples import context_path, load_context
from orchestration import schema_export
from ponte.errors import DataError
from tests.mappings.conftest import SAMPLES, SHARED_SPECS
from tests.support import vendor_specs

CASES = sorted(
    p for p in SAMPLES.rglob("*.json") if not p.name.endswith((".context.json", ".expected.json"))
)


def _case_id(path: Path) -> str:
    return str(path.relative_to(SAMPLES).with_suffix(""))


def _mapping_of(sample: Path) -> str:
    return str(sample.parent.relative_to(SAMPLES))


@cache
def _validator(schema_key: str) -> Draft202012Validator:
    """The committed JSON Schema of a mapping's source or target (what editors and other tools see)."""
    rel = schema_key if schema_key.startswith("canonical/") else f"systems/{schema_key}"
    path = schema_export.json_dir() / f"{rel}.schema.json"
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def _dump(out: Any) -> Any:
    if out is None:
        return None
    if isinstance(out, list):
        return [item.model_dump(mode="json", exclude_none=True) for item in out]
    return out.model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize("sample", CASES, ids=_case_id)
def test_sample_produces_the_expected_record(sample: Path) -> None:
    mapping = load_mapping(_mapping_of(sample))
    expected_path = sample.with_name(sample.name.removesuffix(".json") + ".expected.json")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    ctx = load_context(context_path(sample))
    record = json.loads(sample.read_text(encoding="utf-8"))
    if isinstance(expected, dict) and "expected_error" in expected:
        want = expected["expected_error"]
        with pytest.raises(DataError) as caught:
            mapping.run(record, ctx)
        error = caught.value
        assert error.source == want["at"]
        assert error.field == want["field"]
        assert want["message_contains"] in str(error)
        assert error.record is not None  # every run-time error names the record
        return
    out = _dump(mapping.run(record, ctx))
    assert out == expected
    items = out if isinstance(out, list) else [] if out is None else [out]
    for item in items:
        errors = [e.message for e in _validator(mapping.target).iter_errors(item)]
        assert errors == [], f"{mapping.target} schema rejects the output: {errors}"


def test_every_mapping_has_golden_samples() -> None:
    covered = {_mapping_of(sample) for sample in CASES}
    assert set(list_mappings()) - covered == set()


def test_source_samples_validate_against_their_source_schema() -> None:
    for sample in CASES:
        mapping = load_mapping(_mapping_of(sample))
        record = json.loads(sample.read_text(encoding="utf-8"))
        errors = [e.message for e in _validator(mapping.source).iter_errors(record)]
        assert errors == [], f"{_case_id(sample)} is not a valid {mapping.source}: {errors}"


# ---- samples and outputs are shaped like the vendors' published specs --------------------------------


def _swagger_keys(spec: dict[str, Any], definition: str) -> set[str]:
    return set(spec["definitions"][definition]["properties"])


@pytest.mark.parametrize(
    ("spec_file", "definition", "mapping"),
    [
        ("customers-v1.yaml", "CustomerGet", "sienge/customer_to_person"),
        ("enterprise-v1.yaml", "Enterprise", "sienge/enterprise_to_canonical"),
        ("unit-v1.yaml", "Unit", "sienge/unit_to_canonical"),
        ("sales-contracts-v1.yaml", "SalesContractGet", "sienge/sales_contract_to_sale"),
    ],
)
def test_sienge_samples_use_the_field_names_of_the_sienge_spec(spec_file: str, definition: str,
                                                                mapping: str) -> None:
    spec = yaml.safe_load((SHARED_SPECS / "sienge" / spec_file).read_text(encoding="utf-8"))
    allowed = _swagger_keys(spec, definition)
    for sample in (SAMPLES / mapping).glob("*.json"):
        if sample.name.endswith((".context.json", ".expected.json")):
            continue
        keys = set(json.loads(sample.read_text(encoding="utf-8")))
        assert keys - allowed == set(), f"{sample.name}: not in Sienge's {definition}"
    # and every field the mapping's source schema declares is one Sienge documents
    model_keys = set(load_mapping(mapping).source_model.model_fields)
    assert model_keys - allowed == set()


def _check_against_swagger(value: Any, schema: dict[str, Any], spec: dict[str, Any], where: str) -> list[str]:
    if "$ref" in schema:
        schema = spec["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    problems = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key not in properties:
                problems.append(f"{where}.{key}")
            else:
                problems += _check_against_swagger(item, properties[key], spec, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += _check_against_swagger(item, schema.get("items", {}), spec, f"{where}[{index}]")
    return problems


def test_docusign_definition_uses_only_names_of_the_docusign_spec() -> None:
    # the v2 swagger with the v2.1 fields it lacks, each stated in tests/support/vendor_specs.py
    # (DOCUSIGN_V21_ADDITIONS: the recipients' additionalNotifications, PROVIDERS.md §3.7)
    spec = vendor_specs.load(vendor_specs.DOCUSIGN)
    expected_files = sorted((SAMPLES / "docusign/envelope_to_definition").glob("*.expected.json"))
    assert len(expected_files) >= 2  # signers only; and approvers, copies and computed positions
    for path in expected_files:
        expected = json.loads(path.read_text(encoding="utf-8"))
        where = f"{path.name}: envelope"
        assert _check_against_swagger(expected, {"$ref": "#/definitions/envelopeDefinition"}, spec, where) == []


def test_clicksign_bodies_use_the_names_of_the_clicksign_collection() -> None:
    collection = json.loads((SHARED_SPECS / "clicksign" / "Clicksign_Postman_Collection.json").read_text(
        encoding="utf-8"))
    bodies: dict[str, set[str]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
                continue
            raw = item["request"].get("body", {}).get("raw", "")
            try:
                data = json.loads(raw).get("data", {})
            except (ValueError, AttributeError):
                continue
            if isinstance(data, dict) and "attributes" in data and data.get("type"):
                bodies.setdefault(data["type"], set()).update(data["attributes"])

    walk(collection["item"])
    expected = json.loads(
        (SAMPLES / "clicksign/envelope_to_requests/tres_signatarios.expected.json").read_text(encoding="utf-8")
    )
    # Ponte's own addition, the envelope's metadata (tests/support/vendor_specs.py CLICKSIGN_BEYOND_COLLECTION)
    extras = {"envelopes": {"metadata"}}
    for body in [expected["envelope"], expected["document"], *expected["signers"]]:
        kind = body["data"]["type"]
        assert set(body["data"]["attributes"]) - bodies[kind] - extras.get(kind, set()) == set()

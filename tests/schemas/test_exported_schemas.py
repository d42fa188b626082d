"""The committed JSON Schemas are what the models export, and they are valid draft 2020-12."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from orchestration import schema_export


def test_committed_schemas_match_the_models() -> None:
    stale = schema_export.stale()
    assert stale == [], f"run `ponte schemas export` and commit: {stale}"


def test_every_exported_schema_is_valid_2020_12() -> None:
    for rel, schema in schema_export.collect().items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", rel
        Draft202012Validator.check_schema(schema)


def test_canonical_schemas_cover_every_entity() -> None:
    names = {
        rel.split("/")[1].removesuffix(".schema.json")
        for rel in schema_export.collect()
        if "canonical/" in rel
    }
    assert names == {
        "person",
        "enterprise",
        "unit",
        "sale",
        "contract",
        "envelope",
        "signer",
        "signing_event",
        "evidence",
        "assistance",
        "notification",
    }


def test_a_person_validates_against_its_exported_schema() -> None:
    schema = json.loads((schema_export.json_dir() / "canonical" / "person.schema.json").read_text())
    validator = Draft202012Validator(schema)
    good = {"document": "52998224725", "person_type": "individual", "name": "Maria"}
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({"document": "52998224725", "name": "Maria", "colour": "blue"}))

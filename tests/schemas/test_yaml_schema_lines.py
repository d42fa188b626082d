"""Every YAML file people write names its JSON Schema on its first line (yaml-language-server), the path
exists, and the editor settings map the same files to the same schemas (issue #21, point 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from orchestration import schema_export
from orchestration.schema_export import SCHEMA_LINE_PREFIX, YAML_KINDS, schema_line

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    pytest.param(path, schema, id=str(path.relative_to(ROOT)))
    for _, (glob, schema) in YAML_KINDS.items()
    for path in sorted(ROOT.glob(glob))
]


def test_every_kind_has_files() -> None:
    for kind, (glob, _) in YAML_KINDS.items():
        assert list(ROOT.glob(glob)), f"no {kind} file matches {glob}"


@pytest.mark.parametrize(("path", "schema"), FILES)
def test_the_first_line_names_the_schema_of_its_kind(path: Path, schema: str) -> None:
    first = path.read_text(encoding="utf-8").partition("\n")[0]
    assert first.startswith(SCHEMA_LINE_PREFIX), f"{path}: first line must be `{schema_line(schema, path)}`"
    target = (path.parent / first.removeprefix(SCHEMA_LINE_PREFIX)).resolve()
    assert target == (ROOT / "schemas" / "json" / schema).resolve(), f"{path} points at {target}, not {schema}"
    assert target.is_file(), f"{path}: {target} does not exist (run `ponte schemas export`)"
    assert first == schema_line(schema, path)


def test_every_schema_a_kind_names_is_exported() -> None:
    exported = set(schema_export.collect())
    for kind, (_, schema) in YAML_KINDS.items():
        assert schema in exported, f"{kind}: {schema} is not exported by `ponte schemas export`"


def test_editor_settings_map_the_same_files_to_the_same_schemas() -> None:
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    mapped = {(glob, Path(schema).name) for schema, globs in settings["yaml.schemas"].items() for glob in globs}
    for schema in settings["yaml.schemas"]:
        assert (ROOT / schema).is_file(), schema
    assert mapped == {(glob, schema) for glob, schema in YAML_KINDS.values()}
    assert (ROOT / ".editorconfig").is_file()


@pytest.mark.parametrize("path", sorted((ROOT / "mappings" / "templates").glob("*.yml")), ids=lambda p: p.name)
def test_template_declarations_validate_against_their_schema(path: Path) -> None:
    schema = json.loads((ROOT / "schemas/json/template-declaration.schema.json").read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert not errors, [e.message for e in errors]


def test_the_template_schema_refuses_what_ponte_validate_refuses() -> None:
    validator = Draft202012Validator(schema_export.collect()[schema_export.TEMPLATE_SCHEMA])
    assert list(validator.iter_errors({"title": "T", "sources": ["sienge.unit"], "colour": "blue"}))
    assert list(validator.iter_errors({"title": "T", "sources": ["sienge.nowhere"]}))
    assert list(validator.iter_errors({"sources": ["tenant"]}))

"""Export every JSON Schema Ponte publishes (schemas/json) from the pydantic models that define them.

One representation: the models validate at load time and the exported files feed editors. The export
lives here, at the top, because it gathers models from layers that must not import each other.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ponte import settings
from schemas import TenantConfig
from schemas.canonical import CANONICAL

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://ponte.dev/schemas/"

TENANT_SCHEMA = "tenant.schema.json"
MAPPING_SCHEMA = "mapping.schema.json"
CONNECTOR_SPEC_SCHEMA = "connector-spec.schema.json"
TEMPLATE_SCHEMA = "template-declaration.schema.json"
#: every kind of YAML file people write: (files under the project root, the schema under schemas/json).
#: Each file's first line names its schema for editors (yaml-language-server, see :func:`schema_line`);
#: .vscode/settings.json maps the same globs for editors that read settings instead.
YAML_KINDS: dict[str, tuple[str, str]] = {
    "tenant": ("tenants/*.yaml", TENANT_SCHEMA),
    "connector spec": ("connectors/specs/*.yaml", CONNECTOR_SPEC_SCHEMA),
    "mapping": ("mappings/**/*.yaml", MAPPING_SCHEMA),
    "template declaration": ("mappings/templates/*.yml", TEMPLATE_SCHEMA),
}
SCHEMA_LINE_PREFIX = "# yaml-language-server: $schema="


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def _optional(module: str, attr: str) -> Any:
    """A schema provider from a layer that may not be built yet."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise
    return getattr(mod, attr, None)


def collect() -> dict[str, dict[str, Any]]:
    """Relative path under schemas/json -> schema document."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in CANONICAL.items():
        out[f"canonical/{name}.schema.json"] = _model_schema(model)
    out["tenant.schema.json"] = _model_schema(TenantConfig)
    systems = _optional("schemas.systems", "SYSTEM_SCHEMAS")
    if systems is not None:  # outside systems' payloads that mappings read or write
        for name, model in systems.items():  # type: ignore[attr-defined]
            out[f"systems/{name}.schema.json"] = _model_schema(model)
    for rel, (module, attr) in {
        "connector-spec.schema.json": ("connectors.spec", "json_schema"),
        "mapping.schema.json": ("mappings.language", "json_schema"),
        TEMPLATE_SCHEMA: ("pipelines.documents.render", "declaration_json_schema"),
    }.items():
        provider = _optional(module, attr)
        if provider is not None:
            out[rel] = provider()
    for rel, schema in out.items():
        schema.setdefault("$schema", DIALECT)
        schema.setdefault("$id", ID_BASE + rel)
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def json_dir() -> Path:
    return settings.project_root() / "schemas" / "json"


def schema_line(schema: str, file: Path) -> str:
    """The first line of a YAML ``file`` checked against ``schema`` (a path under schemas/json):
    ``# yaml-language-server: $schema=<path relative to the file>``."""
    rel = os.path.relpath(json_dir().resolve() / schema, Path(file).resolve().parent)
    return SCHEMA_LINE_PREFIX + Path(rel).as_posix()


def export(target: Path | None = None) -> list[Path]:
    target = target or json_dir()
    written = []
    for rel, schema in collect().items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale(target: Path | None = None) -> list[str]:
    """Files that differ from the models (or are missing): what `ponte schemas export` would write."""
    target = target or json_dir()
    return [
        rel
        for rel, schema in collect().items()
        if not (target / rel).exists() or (target / rel).read_text(encoding="utf-8") != render(schema)
    ]

"""Sample files for trying a mapping: a source payload, and optionally its run context beside it.

``ponte mapping test MAPPING --sample case.json`` and the golden tests read the same files, so what an
engineer tries by hand is what CI checks. A context file (``case.context.json`` next to the sample, or
given explicitly) says what the pipeline would inject::

    {"tenant": "tenant.yaml",                       # a tenant file (relative to this file) or tenant id
     "lookup": [["person", "sienge", "4217", "cvcrm", "9137"]],   # id-map rows
     "params": {"document_sha256": "..."},
     "now": "2026-11-20T10:00:00-03:00"}
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mappings.context import MappingContext, static_lookup
from mappings.transforms import SAO_PAULO
from ponte import ConfigurationError
from schemas import load_tenant

#: the clock samples run at unless their context says otherwise, so golden outputs never drift
SAMPLE_NOW = datetime(2026, 11, 20, 10, 0, 0, tzinfo=SAO_PAULO)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{what} not found: {path}", hint="check the path") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}:{exc.lineno}: {what} is not valid JSON: {exc.msg}", hint="fix the JSON at that line"
        ) from None


def context_path(sample: Path) -> Path:
    return sample.with_name(sample.name.removesuffix(".json") + ".context.json")


def load_context(path: Path | None, tenant: str | None = None) -> MappingContext:
    """A MappingContext from a context file (missing file: an empty context at :data:`SAMPLE_NOW`)."""
    data: dict[str, Any] = {}
    if path is not None and path.exists():
        data = read_json(path, "context file")
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: a context file is a JSON object",
                                     hint="see mappings/samples.py for its keys")
    unknown = set(data) - {"tenant", "lookup", "params", "now"}
    if unknown:
        raise ConfigurationError(f"{path}: unknown context key(s) {', '.join(sorted(unknown))}",
                                 hint="use tenant, lookup, params and now")
    tenant_ref = tenant or data.get("tenant")
    tenant_config = None
    if tenant_ref:
        candidate = (path.parent / tenant_ref) if path is not None and not tenant else Path(tenant_ref)
        tenant_config = load_tenant(candidate if candidate.suffix in (".yaml", ".yml") else tenant_ref)
    table: dict[tuple[str, str, str, str], str] = {}
    for row in data.get("lookup", []):
        if not isinstance(row, list) or len(row) != 5:
            raise ConfigurationError(f"{path}: lookup rows are [entity, from, id, to, target_id], got {row!r}",
                                     hint="write each id-map row as a list of five texts")
        entity, source, source_id, target, target_id = (str(item) for item in row)
        table[(entity, source, source_id, target)] = target_id
    now = SAMPLE_NOW
    if data.get("now"):
        now = datetime.fromisoformat(data["now"])
        if now.tzinfo is None:
            now = now.replace(tzinfo=SAO_PAULO)
    return MappingContext(lookup=static_lookup(table), tenant=tenant_config, now=now,
                          params=dict(data.get("params") or {}))

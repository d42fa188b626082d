"""Loading mappings: YAML file -> checked, compiled :class:`CompiledMapping` (cached per file version).

Pipelines call ``load_mapping("sienge/customer_to_person")`` once and then ``.apply`` / ``.run`` per
record; :func:`merge_owned` applies the mapping's field ownership when writing over an existing record.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mappings.compiler import Compiled, FieldInfo, MappingCompiler
from mappings.context import MappingContext
from mappings.language import MappingFile
from ponte import ConfigurationError, DataError, PonteError, get_logger, load_yaml, parse_model, settings
from schemas.canonical import CANONICAL

log = get_logger(__name__)

#: the folder holding the mapping YAML files (``mappings/<system>/<name>.yaml``)
MAPPINGS_DIR = Path(__file__).resolve().parent


def schema_registry() -> dict[str, type[BaseModel]]:
    """Every schema a mapping may name as source or target."""
    from schemas.systems import SYSTEM_SCHEMAS

    registry: dict[str, type[BaseModel]] = {f"canonical/{name}": model for name, model in CANONICAL.items()}
    registry.update(SYSTEM_SCHEMAS)
    return registry


@dataclass(frozen=True)
class ExplainRow:
    target: str
    source: str
    transforms: str
    condition: str
    owner: str
    line: int | None


class CompiledMapping:
    """A mapping checked against its schemas and compiled into a plain function.

    ``apply(record, ctx)`` is the generated function itself (no wrapper on the hot path): it returns the
    target record as a dict, ``None`` when a filter skips the record, or a list for ``split`` mappings.
    ``run`` adds validation against the target schema and returns the target model.
    """

    apply: Callable[..., Any]

    def __init__(self, name: str, display: str, spec: MappingFile, compiled: Compiled,
                 source_model: type[BaseModel], target_model: type[BaseModel]) -> None:
        self.name = name
        self.path = display
        self.spec = spec
        self.version = spec.version
        self.source = spec.source
        self.target = spec.target
        self.source_model = source_model
        self.target_model = target_model
        self.is_split = spec.split is not None
        self.code = compiled.code
        self.fields: list[FieldInfo] = compiled.fields
        self.produced: tuple[str, ...] = tuple(compiled.produced)
        self.field_lines = compiled.field_lines
        self.apply = compiled.function
        self.record_id: Callable[..., Any] = compiled.function.__globals__["record_id"]

    def __repr__(self) -> str:
        return f"<CompiledMapping {self.name} v{self.version}: {self.source} -> {self.target}>"

    @property
    def uses_id_map(self) -> bool:
        """Whether records look ids up in the id map: such a mapping needs the run's store, so it cannot
        run in a worker process of its own."""
        return any(t.partition("(")[0] == "lookup" for f in self.fields for t in f.transforms)

    @property
    def lineage(self) -> str:
        """What a write records as its producer: ``name@version``."""
        return f"{self.name}@{self.version}"

    # ---- running ------------------------------------------------------------------------------------
    def apply_many(self, record: Any, ctx: MappingContext | None = None) -> list[dict[str, Any]]:
        """Always a list: one record (or none when filtered), or every item of a split mapping."""
        out = self.apply(record, ctx)
        if out is None:
            return []
        return out if isinstance(out, list) else [out]

    def validate(self, output: dict[str, Any], record: Any = None) -> BaseModel:
        """The output as the target model, or a DataError naming the field and its mapping line."""
        try:
            return self.target_model.model_validate(output)
        except ValidationError as exc:
            problems = []
            first_line = None
            for error in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in error["loc"])
                top = str(error["loc"][0]) if error["loc"] else ""
                line = self.field_lines.get(top) or self.field_lines.get("")
                first_line = first_line or line
                problems.append(f"{loc or '(record)'}: {error['msg']}")
            rid = None
            if isinstance(record, dict):
                rid = self.record_id(record)
            raise DataError(
                f"the output does not satisfy {self.target}: " + "; ".join(problems),
                record=None if rid is None else str(rid),
                field=str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else None,
                source=f"{self.path}:{first_line}" if first_line else self.path,
                hint="fix the source value or the mapping's transforms for that field",
            ) from None

    def run(self, record: Any, ctx: MappingContext | None = None) -> Any:
        """``apply`` then validate against the target schema: a model, a list of models (split), or None."""
        out = self.apply(record, ctx)
        if out is None:
            return None
        if isinstance(out, list):
            return [self.validate(item, record) for item in out]
        return self.validate(out, record)

    # ---- ownership ----------------------------------------------------------------------------------
    def owner_of(self, target_field: str) -> str | None:
        ownership = self.spec.ownership
        if ownership is None:
            return None
        return ownership.fields.get(target_field, ownership.default)

    def owned_fields(self, system: str) -> frozenset[str]:
        """Top-level target fields ``system`` owns (of those this mapping produces or lists)."""
        names = set(self.produced) | set(self.spec.ownership.fields if self.spec.ownership else ())
        return frozenset(name for name in names if self.owner_of(name) == system)

    # ---- explaining ---------------------------------------------------------------------------------
    def explain(self) -> list[ExplainRow]:
        return [
            ExplainRow(
                target=info.target,
                source=info.source,
                transforms=", ".join(info.transforms),
                condition=info.condition or "",
                owner=info.owner or "",
                line=info.line,
            )
            for info in self.fields
        ]


def merge_owned(
    existing: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    mapping: CompiledMapping,
    owner: str | None = None,
) -> dict[str, Any]:
    """Merge a freshly mapped record over the one the target system holds, by field ownership.

    - Fields ``owner`` owns (by default the mapping's default owner, i.e. the source system) take the
      new value; a field the mapping produces that is now empty is cleared, because the owner cleared it.
    - Fields another system owns (the CRM's contacts and associations) keep the stored value; the new
      value only fills them while they are empty (the first import seeds them).
    - Fields the mapping does not know (added by the target system) are kept as they are.
    """
    if mapping.spec.ownership is None:
        raise ConfigurationError(
            f"{mapping.path}: mapping has no ownership section, so it cannot merge over an existing record",
            hint="add `ownership: {default: <source system>}` to the mapping",
        )
    owner = owner or mapping.spec.ownership.default
    merged: dict[str, Any] = dict(existing or {})
    for name in set(mapping.produced) | set(new):
        value = new.get(name)
        if mapping.owner_of(name) == owner:
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        elif value is not None and merged.get(name) in (None, "", [], {}):
            merged[name] = value
    return merged


# ---- loading ----------------------------------------------------------------------------------------

_CACHE: dict[Path, tuple[float, CompiledMapping]] = {}
_LOCK = threading.Lock()


def mapping_path(name_or_path: str | Path) -> Path:
    """``sienge/customer_to_person`` -> mappings/sienge/customer_to_person.yaml; paths pass through."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate.resolve()
    path = MAPPINGS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        names = list_mappings()
        close = difflib.get_close_matches(str(name_or_path), names, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigurationError(
            f"no mapping {str(name_or_path)!r}",
            hint=f"{hint}mappings: {', '.join(names)}",
        )
    return path


def _display(path: Path) -> str:
    for root in (settings.project_root(), MAPPINGS_DIR.parent):
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return str(path)


def _name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(MAPPINGS_DIR).with_suffix(""))
    except ValueError:
        return path.stem


def compile_file(path: Path) -> CompiledMapping:
    """Load, check and compile one mapping file (no cache)."""
    display = _display(path)
    try:
        doc = load_yaml(path)
    except ConfigurationError as exc:  # name the file as the user knows it, not by absolute path
        exc.message = exc.message.replace(str(path), display)
        exc.args = (exc.message,)
        raise
    doc.path = Path(display)
    if not isinstance(doc.data, dict):
        raise ConfigurationError(f"{display}:1: a mapping file is a YAML object (version, source, target, "
                                 "fields)", hint="see docs/mappings.md for a complete example")
    spec = parse_model(doc, MappingFile, "mapping", hint="see docs/mappings.md (mapping language)")
    registry = schema_registry()
    models = []
    for role in ("source", "target"):
        key = getattr(spec, role)
        if key not in registry:
            close = difflib.get_close_matches(key, list(registry), n=1, cutoff=0.5)
            fix = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"{doc.where((role,))}: unknown {role} schema {key!r}",
                hint=f"{fix}schemas: {', '.join(sorted(registry))}",
            )
        models.append(registry[key])
    compiler = MappingCompiler(doc, spec, display, models[0], models[1])
    compiled = compiler.compile()
    mapping = CompiledMapping(_name(path), display, spec, compiled, models[0], models[1])
    log.debug("compiled mapping %s (%d fields)", mapping.lineage, len(compiled.fields))
    return mapping


def load_mapping(name_or_path: str | Path) -> CompiledMapping:
    """The compiled mapping, from the cache unless the file changed since it was compiled."""
    path = mapping_path(name_or_path)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise ConfigurationError(f"file not found: {path}", hint="check the path") from None
    with _LOCK:
        cached = _CACHE.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    mapping = compile_file(path)
    with _LOCK:
        _CACHE[path] = (mtime, mapping)
    return mapping


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def list_mappings() -> list[str]:
    """Names of every mapping file (``sienge/customer_to_person``, ...)."""
    return sorted(str(p.relative_to(MAPPINGS_DIR).with_suffix("")) for p in MAPPINGS_DIR.rglob("*.yaml"))


def validate_all() -> list[tuple[str, str | None]]:
    """(mapping file, error or None) for every mapping: what ``ponte validate`` reports."""
    results: list[tuple[str, str | None]] = []
    for name in list_mappings():
        path = MAPPINGS_DIR / f"{name}.yaml"
        try:
            compile_file(path)
            results.append((_display(path), None))
        except PonteError as exc:
            results.append((_display(path), str(exc)))
    return results

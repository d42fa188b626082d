"""YAML loading that remembers where each value came from, so errors can say ``file:line``.

Tenant files, connector specs and mappings are all YAML written by people; an error that names the
line and the field is the difference between a fix and a search.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ponte.errors import ConfigurationError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """Line (1-based) of the deepest existing node on ``loc``."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def where(self, loc: Iterable[str | int]) -> str:
        line = self.line_of(loc)
        return f"{self.path}:{line}" if line else str(self.path)


#: libyaml's parser when PyYAML was built with it: the pure-Python one took 0.17 s of the 0.22 s that
#: compiling the two customer mappings costs, paid by every process that loads them
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines)


def load_yaml(path: str | Path) -> YamlDocument:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigurationError(f"file not found: {path}", hint="check the path") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{path}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
        ) from exc
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()  # one parse: the nodes (with their lines), then the data
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(
            f"{where}: not valid YAML: {problem}", hint="fix the indentation or quoting at that line"
        ) from exc
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return YamlDocument(path=path, data=data, lines=lines)


def _alternatives(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Annotated and unions unwrapped (None left out)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in get_args(annotation) for t in _alternatives(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def field_names_at(model: type[BaseModel], loc: Iterable[str | int]) -> list[str]:
    """The field names (as written in YAML: aliases) of the object at ``loc`` in a ``model`` document:
    through nested models, list items (an int in ``loc``) and dict values (any key). Empty when
    ``loc`` leads nowhere a model is."""
    current: list[Any] = [model]
    for part in loc:
        following: list[Any] = []
        for kind in (t for c in current for t in _alternatives(c)):
            origin = get_origin(kind)
            if _is_model(kind) and isinstance(part, str):
                for name, info in kind.model_fields.items():
                    if part in (name, info.alias):
                        following.append(info.annotation)
            elif isinstance(origin, type) and issubclass(origin, Mapping) and len(get_args(kind)) == 2:
                following.append(get_args(kind)[1])
            elif (isinstance(part, int) and isinstance(origin, type) and issubclass(origin, Sequence)
                  and get_args(kind)):
                following.append(get_args(kind)[0])
        current = following
    names: dict[str, None] = {}
    for kind in (t for c in current for t in _alternatives(c)):
        if _is_model(kind):
            names.update({(info.alias or name): None for name, info in kind.model_fields.items()})
    return list(names)


def did_you_mean(word: str, names: Iterable[str]) -> str | None:
    """The name ``word`` was most likely meant to be (a typo's fix), or None."""
    names = list(names)
    # a short word has few letters to compare: one wrong letter of two ("bi" for "by") is still a typo
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6 if len(word) > 3 else 0.5)
    return close[0] if close else None


def describe_validation_error(
    doc: YamlDocument, error: ValidationError, what: str, model: type[BaseModel] | None = None
) -> str:
    """One line per problem: ``file:line: field.path: message (got value)``. With ``model`` (the one
    validated), an unknown field names the field of that object it most likely meant."""
    rows = []
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # pydantic adds the union member's tag to loc; keep only the parts present in the document
        clean: list[str | int] = []
        for part in loc:
            if (*clean, part) in doc.lines or isinstance(part, int):
                clean.append(part)
            elif (not clean or (*clean,) in doc.lines) and isinstance(part, str) and item["type"] == "missing":
                # a missing field is not in the document, but it is the field the user must add
                clean.append(part)
        dotted = ".".join(str(p) for p in clean) or "(top level)"
        message = item["msg"]
        if item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling against the schema)"
            meant = did_you_mean(str(clean[-1]), field_names_at(model, clean[:-1])) if model and clean else None
            if meant:
                message = f"unknown field, did you mean {meant!r}?"
        got = item.get("input")
        suffix = ""
        if item["type"] not in ("missing",) and not isinstance(got, dict | list):
            suffix = f" (got {got!r})"
        rows.append(f"{doc.where(clean)}: {what} field {dotted}: {message}{suffix}")
    return "\n".join(rows)


def parse_model(doc: YamlDocument, model: type[M], what: str, hint: str) -> M:
    """Validate ``doc`` against ``model`` or raise a ConfigurationError naming file, line and field."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(doc, exc, what, model), hint=hint) from exc

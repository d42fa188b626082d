"""Source paths: parsing them, and checking them against a schema at load time.

Grammar (see :mod:`mappings.language`)::

    path     := [ "$" context ] segment ( "." name | "[" selector "]" )*
    selector := "*" | integer | name "=" literal | name "=" "@" path

Checking walks the pydantic model of the source schema, so a misspelt field is a load error with the
fields that do exist and the closest match, not a silent ``None`` on every record.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

CONTEXT_ROOTS = ("root", "parent", "tenant", "params", "now", "index")


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Star:
    pass


@dataclass(frozen=True)
class Find:
    key: str
    value: Any = None
    ref: ParsedPath | None = None  # compare with another path (from the record's root)


Segment = Key | Index | Star | Find


@dataclass(frozen=True)
class ParsedPath:
    text: str
    root: str  # "" (the current record or item), or one of CONTEXT_ROOTS
    segments: tuple[Segment, ...]

    @property
    def has_star(self) -> bool:
        return any(isinstance(s, Star) for s in self.segments)


class PathError(ValueError):
    """A path that does not parse or does not exist in its schema; the message says how to fix it."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def parse_path(text: str) -> ParsedPath:
    original = text
    if not isinstance(text, str) or not text.strip():
        raise PathError("empty path")
    text = text.strip()
    root = ""
    if text.startswith("@$"):
        text = text[1:]
    elif text.startswith("@"):
        text = "$root." + text[1:]
    if text.startswith("$"):
        match = _NAME.match(text, 1)
        if not match or match.group() not in CONTEXT_ROOTS:
            raise PathError(
                f"unknown context {text.split('.')[0]!r} in {original!r}: use $root, $parent, $tenant, $params, "
                "$now or $index"
            )
        root = match.group()
        text = text[match.end():]
        if text.startswith("."):
            text = text[1:]
        elif text:
            raise PathError(f"expected '.' after ${root} in {original!r}")
        if not text:
            if root in ("root", "parent", "now", "index"):
                return ParsedPath(original, root, ())
            raise PathError(f"${root} needs a field after it, e.g. ${root}.name")
    segments: list[Segment] = []
    pos = 0
    expect_name = True
    while pos < len(text):
        if expect_name:
            match = _NAME.match(text, pos)
            if not match:
                raise PathError(f"expected a field name at position {pos + 1} of {original!r}")
            segments.append(Key(match.group()))
            pos = match.end()
            expect_name = False
            continue
        char = text[pos]
        if char == ".":
            pos += 1
            expect_name = True
            continue
        if char == "[":
            end = _closing_bracket(text, pos, original)
            segments.append(_selector(text[pos + 1 : end].strip(), original))
            pos = end + 1
            continue
        raise PathError(f"unexpected {char!r} at position {pos + 1} of {original!r}")
    if expect_name:
        raise PathError(f"{original!r} ends with '.'")
    return ParsedPath(original, root, tuple(segments))


def _closing_bracket(text: str, start: int, original: str) -> int:
    depth = 0
    for pos in range(start, len(text)):
        if text[pos] == "[":
            depth += 1
        elif text[pos] == "]":
            depth -= 1
            if depth == 0:
                return pos
    raise PathError(f"unclosed '[' in {original!r}")


def _selector(inner: str, original: str) -> Segment:
    if inner == "*":
        return Star()
    if re.fullmatch(r"-?\d+", inner):
        return Index(int(inner))
    key, sep, raw = inner.partition("=")
    key = key.strip()
    if not sep or not _NAME.fullmatch(key):
        raise PathError(
            f"[{inner}] in {original!r}: use [*] (every item), [0] (an item) or [field=value] (first match)"
        )
    raw = raw.strip()
    if raw.startswith("@"):
        return Find(key, ref=parse_path(raw))
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError:
        value = raw
    return Find(key, value=value)


# ---- schema walking ------------------------------------------------------------------------------


def candidates(tp: Any) -> list[Any]:
    """The concrete types a value of annotation ``tp`` may have (Optional, unions, Annotated unwrapped)."""
    origin = get_origin(tp)
    if origin is Annotated:
        return candidates(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in get_args(tp):
            if arg is not type(None):
                out.extend(candidates(arg))
        return out
    return [tp]


def is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def model_fields(model: type[BaseModel]) -> dict[str, Any]:
    """Field name (as written in payloads: the alias when there is one) -> annotation."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def is_list(tp: Any) -> bool:
    return get_origin(tp) in (list, tuple, set, frozenset) or tp in (list, tuple)


def item_type(tp: Any) -> Any:
    args = get_args(tp)
    return args[0] if args else Any


def describe(tp: Any) -> str:
    kinds = candidates(tp)
    if not kinds:
        return "nothing"
    names = []
    for kind in kinds:
        if is_model(kind):
            names.append("an object")
        elif is_list(kind):
            names.append("a list")
        elif kind is str or get_origin(kind) is Literal or (inspect.isclass(kind) and issubclass(kind, str)):
            names.append("a text")
        elif kind in (int, float) or (inspect.isclass(kind) and issubclass(kind, int | float)):
            names.append("a number")
        else:
            names.append(getattr(kind, "__name__", str(kind)))
    return " or ".join(dict.fromkeys(names))


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    listing = ", ".join(options[:40]) + (", ..." if len(options) > 40 else "")
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}fields there: {listing}"


def step(tp: Any, segment: Segment, where: str, schema: str) -> Any:
    """The annotation reached from ``tp`` through ``segment``; PathError saying why not."""
    kinds = candidates(tp)
    if any(kind is Any or kind is object for kind in kinds):
        return Any
    if isinstance(segment, Key):
        for kind in kinds:
            if is_model(kind):
                fields = model_fields(kind)
                if segment.name in fields:
                    return fields[segment.name]
            elif get_origin(kind) is dict or kind is dict:
                return item_type_of_dict(kind)
        models = [kind for kind in kinds if is_model(kind)]
        if models:
            at = f" in {where}" if where else ""
            raise PathError(
                f"no field {segment.name!r}{at} of {schema}; {_suggest(segment.name, list(model_fields(models[0])))}"
            )
        if any(is_list(kind) for kind in kinds):
            raise PathError(
                f"{where or 'the value'} is a list: write {where}[*].{segment.name} (every item), "
                f"{where}[0].{segment.name} or {where}[field=value].{segment.name}"
            )
        raise PathError(f"{where or 'the value'} is {describe(tp)}; it has no field {segment.name!r}")
    for kind in kinds:
        if is_list(kind):
            return item_type(kind)
    raise PathError(f"{where or 'the value'} is {describe(tp)}, not a list; remove the [...] selector")


def item_type_of_dict(tp: Any) -> Any:
    args = get_args(tp)
    return args[1] if len(args) == 2 else Any


def resolve(tp: Any, segments: tuple[Segment, ...], schema: str, prefix: str = "") -> Any:
    """Walk ``segments`` from ``tp``; the leaf annotation (wrapped in list[...] per ``[*]``)."""
    where = prefix
    stars = 0
    for segment in segments:
        tp = step(tp, segment, where, schema)
        if isinstance(segment, Key):
            where = f"{where}.{segment.name}" if where else segment.name
        elif isinstance(segment, Star):
            where += "[*]"
            stars += 1
        elif isinstance(segment, Index):
            where += f"[{segment.index}]"
        else:
            where += f"[{segment.key}=...]"
        if isinstance(segment, Find):
            key_type = step(tp, Key(segment.key), where, schema)
            if segment.ref is None:
                check_literal(key_type, segment.value, f"{where.rsplit('[', 1)[0]}[{segment.key}=...]")
    if stars:  # several [*] flatten into one list
        tp = list[tp]  # type: ignore[valid-type]
    return tp


def _is_text(kind: Any) -> bool:
    if kind is str or (inspect.isclass(kind) and issubclass(kind, str)):
        return True
    return get_origin(kind) is Literal and all(isinstance(a, str) for a in get_args(kind))


def check_literal(tp: Any, value: Any, where: str) -> None:
    """A number compared with a text field never matches: say so at load, with the fix."""
    kinds = candidates(tp)
    if not kinds or any(kind is Any for kind in kinds):
        return
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, int | float) and not isinstance(item, bool) and all(_is_text(k) for k in kinds):
            raise PathError(f"{where} is a text, so {item!r} never matches: write it quoted, '{item}'")
        if isinstance(item, str) and not item.startswith("@") and all(
            k in (int, float) or (inspect.isclass(k) and issubclass(k, int | float) and not issubclass(k, Enum))
            for k in kinds
        ):
            raise PathError(f"{where} is a number, so {item!r} never matches: write it unquoted")

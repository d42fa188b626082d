"""Structured templates: YAML values whose string leaves may reference ``{record.field}``.

Why not Jinja or f-strings: a free-form template hides its mistakes until the first run. Here every
reference is parsed when the spec loads, checked against the namespaces its place allows (a base URL
may use ``values`` only; a body may use ``record``), and against the values and secrets the spec
declares, so a typo fails ``ponte validate`` with file:line instead of a run at 3 a.m.

Syntax, on string leaves only:

- ``"{record.customer.cpf}"``: the whole leaf is one reference, so the value keeps its type (an
  int stays an int, a list stays a list);
- ``"Contrato {record.number}"``: text with references renders to a string;
- ``"{record.phone?}"``: optional; a missing value drops the key (or the list item), or renders as an
  empty string inside text;
- ``"{{"`` and ``"}}"``: literal braces;
- ``{"$each": "{record.signers}", "$as": "signer", "$do": {...}}``: a list built from each item of a
  list, the item reachable as ``{signer.name}`` (default name ``item``); as an element of a list it
  splices its items in place (our fixed items plus the record's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ponte import DataError

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_REF = re.compile(rf"^(?P<ns>{_NAME})((?:\.(?:{_NAME}|\d+))*)(?P<opt>\?)?$")
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


class TemplateSyntaxError(ValueError):
    """A template is malformed or references something its place does not allow."""


@dataclass(frozen=True)
class Ref:
    namespace: str
    path: tuple[str, ...]
    optional: bool

    @property
    def dotted(self) -> str:
        return ".".join((self.namespace, *self.path))


@dataclass(frozen=True)
class Parsed:
    """A string leaf: literal text and references, in order."""

    parts: tuple[str | Ref, ...]

    @property
    def single(self) -> Ref | None:
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], Ref) else None

    @property
    def refs(self) -> list[Ref]:
        return [p for p in self.parts if isinstance(p, Ref)]


def parse(text: str) -> Parsed:
    """Split a string leaf into literal text and references; raise on malformed braces."""
    parts: list[str | Ref] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "{":
            end = text.find("}", i + 1)
            if end < 0:
                raise TemplateSyntaxError(f"unclosed '{{' in {text!r} (write '{{{{' for a literal brace)")
            body = text[i + 1 : end].strip()
            match = _REF.match(body)
            if not match:
                raise TemplateSyntaxError(
                    f"{{{body}}} in {text!r} is not a reference like {{record.field}} or {{values.name}}"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            path = tuple(p for p in match.group(2).split(".") if p)
            parts.append(Ref(match.group("ns"), path, bool(match.group("opt"))))
            i = end + 1
        elif ch == "}":
            raise TemplateSyntaxError(f"stray '}}' in {text!r} (write '}}}}' for a literal brace)")
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Parsed(tuple(parts))


def iter_strings(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    """Every string leaf of a template with its dotted position (for messages)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_strings(item, f"{path}[{index}]")


def check(
    value: Any,
    allowed: Iterable[str],
    declared: Mapping[str, Iterable[str]] | None = None,
) -> list[Ref]:
    """Validate every reference in ``value``; return them. ``declared`` limits e.g. ``values`` names."""
    allowed = set(allowed)
    refs: list[Ref] = []

    def walk(node: Any, where: str, scope: set[str]) -> None:
        if isinstance(node, Mapping) and "$each" in node:
            extra = set(node) - {"$each", "$as", "$do"}
            if extra or "$do" not in node:
                raise TemplateSyntaxError(f"{where or 'template'}: $each needs exactly $each, $do and optional $as")
            source = node["$each"]
            if not isinstance(source, str) or parse(source).single is None:
                raise TemplateSyntaxError(f"{where}.$each must be one reference like '{{record.items}}'")
            walk(source, f"{where}.$each", scope)
            name = node.get("$as", "item")
            if not isinstance(name, str) or not re.fullmatch(_NAME, name):
                raise TemplateSyntaxError(f"{where}.$as must be a plain name")
            walk(node["$do"], f"{where}.$do", scope | {name})
            return
        if isinstance(node, Mapping):
            for key, item in node.items():
                walk(item, f"{where}.{key}" if where else str(key), scope)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]", scope)
        elif isinstance(node, str):
            for ref in parse(node).refs:
                at = f" at {where}" if where else ""
                if ref.namespace not in scope:
                    raise TemplateSyntaxError(
                        f"{{{ref.dotted}}}{at}: '{ref.namespace}' is not available here "
                        f"(use one of: {', '.join(sorted(scope)) or 'none'})"
                    )
                names = (declared or {}).get(ref.namespace)
                if names is not None:
                    names = set(names)
                    if not ref.path:
                        raise TemplateSyntaxError(f"{{{ref.dotted}}}{at}: name which {ref.namespace} to use")
                    if ref.path[0] not in names:
                        raise TemplateSyntaxError(
                            f"{{{ref.dotted}}}{at}: {ref.namespace} '{ref.path[0]}' is not declared in the spec's "
                            f"'{ref.namespace}' section (declared: {', '.join(sorted(names)) or 'none'})"
                        )
                refs.append(ref)

    walk(value, "", allowed)
    return refs


def lookup(context: Mapping[str, Any], ref: Ref) -> Any:
    """The value a reference points at, or MISSING."""
    node: Any = context.get(ref.namespace, MISSING)
    for key in ref.path:
        if isinstance(node, Mapping):
            node = node.get(key, MISSING)
        elif isinstance(node, list | tuple) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return MISSING if node is None and not ref.optional else node


def _missing(ref: Ref) -> DataError:
    field = ".".join(ref.path) or ref.namespace
    return DataError(
        f"template needs {{{ref.dotted}}} but it is missing",
        field=field if ref.namespace in ("record", "item") else ref.dotted,
        hint="add the field to the record (or mark the reference optional with '?')",
    )


def render_string(text: str, context: Mapping[str, Any], quote: Any = None) -> Any:
    """Render one leaf; a whole-leaf reference keeps the referenced value's type.

    ``quote(text, ref)`` (e.g. URL quoting for paths) is applied to each referenced value inside text.
    """
    parsed = parse(text)
    single = parsed.single
    if single is not None and quote is None:
        value = lookup(context, single)
        if value is MISSING or value is None:
            if single.optional:
                return MISSING
            raise _missing(single)
        return value
    out: list[str] = []
    for part in parsed.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = lookup(context, part)
        if value is MISSING or value is None:
            if part.optional:
                continue
            raise _missing(part)
        out.append(quote(str(value), part) if quote else str(value))
    return "".join(out)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render a template tree; optional references that are missing drop their key or list item."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, Mapping):
        if "$each" in value:
            items = render_string(value["$each"], context)
            if items is MISSING:
                return MISSING
            if not isinstance(items, list | tuple):
                raise DataError(f"{value['$each']} must be a list, got {type(items).__name__}")
            name = value.get("$as", "item")
            return [
                r for item in items if (r := render(value["$do"], {**context, name: item})) is not MISSING
            ]
        out = {}
        for key, item in value.items():
            rendered = render(item, context)
            if rendered is not MISSING:
                out[key] = rendered
        return out
    if isinstance(value, list):
        out_list: list[Any] = []
        for item in value:
            rendered = render(item, context)
            if rendered is MISSING:
                continue
            if isinstance(item, Mapping) and "$each" in item:
                out_list.extend(rendered)  # an $each inside a list splices its items in place
            else:
                out_list.append(rendered)
        return out_list
    return value

"""Compile a checked mapping into a plain Python function, once, at load.

Why generate code: a mapping runs on every record of every import (100k+ per run), so it must cost
what the hand-written function would. The compiler checks everything it can while it still knows the
file and the line (paths against the source schema, required target fields, transform arguments),
then emits straight-line Python (dict lookups, local variables, direct calls of the transform
closures) and ``compile()``s it. Running a mapping parses nothing and looks nothing up by name.

Run-time failures keep their place: before each field the generated code stores the field's index in
a local, and one ``try`` around the body turns any exception into a :class:`DataError` naming the
mapping file, the field's line, the field and the record id.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from mappings.context import CREDENTIALS_HINT, credentials_read
from mappings.language import Condition, FieldMapping, MappingFile
from mappings.linear_regex import LinearPattern, RegexRefused, compile_pattern
from mappings.paths import (
    Find,
    Index,
    Key,
    ParsedPath,
    PathError,
    Star,
    candidates,
    check_literal,
    describe,
    is_list,
    is_model,
    item_type,
    model_fields,
    parse_path,
    resolve,
)
from mappings.transforms import REGISTRY, build
from ponte import ConfigurationError, DataError, PonteError, YamlDocument
from schemas import TenantConfig

Loc = tuple[str | int, ...]
_E: dict[str, Any] = {}


class _Missing(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _at(seq: Any, index: int) -> Any:
    if not seq:
        return None
    try:
        return seq[index]
    except IndexError:
        return None


def _find(seq: Any, key: str, value: Any) -> Any:
    if not seq:
        return None
    for item in seq:
        if item is not None and item.get(key) == value:
            return item
    return None


def _s(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _match(pattern: LinearPattern, value: Any) -> bool:
    return value is not None and pattern.search(_s(value)) is not None


def _as_record(record: Any) -> dict[str, Any]:
    if isinstance(record, BaseModel):
        return record.model_dump(mode="python", by_alias=True)
    if isinstance(record, dict):
        return record
    raise DataError(f"a record must be an object (dict), got {type(record).__name__}")


@dataclass
class FieldInfo:
    """One target field as written in the file (for errors and ``ponte mapping explain``)."""

    target: str
    line: int | None
    source: str
    transforms: list[str]
    condition: str | None
    owner: str | None
    description: str | None = None


@dataclass
class Scope:
    var: str  # local variable holding the current object (record or list item)
    type: Any  # its annotation in the source schema
    guaranteed: bool  # the variable always holds a dict (no `or _E` needed)
    prefix: str = ""  # human path of the scope, for messages


@dataclass
class Compiled:
    function: Callable[..., Any]
    code: str
    fields: list[FieldInfo]
    produced: list[str]
    field_lines: dict[str, int | None] = field(default_factory=dict)


class MappingCompiler:
    """Checks one parsed mapping file against its schemas and generates its function."""

    def __init__(
        self,
        doc: YamlDocument,
        spec: MappingFile,
        display: str,
        source_model: type[BaseModel],
        target_model: type[BaseModel],
    ) -> None:
        self.doc = doc
        self.spec = spec
        self.display = display
        self.source_model = source_model
        self.target_model = target_model
        self.ns: dict[str, Any] = {
            "_E": _E,
            "_at": _at,
            "_find": _find,
            "_s": _s,
            "_match": _match,
            "_present": _present,
            "_Missing": _Missing,
            "_as_record": _as_record,
            "_copy": copy.deepcopy,
            "DataError": DataError,
            "PonteError": PonteError,
        }
        self.lines: list[str] = []
        self.fields: list[FieldInfo] = []
        self.counter = 0
        self.uses_tenant = False
        self.uses_params = False
        self.uses_now = False
        self.ownership = spec.ownership
        self.index_vars: list[str] = []
        #: per ``each`` being compiled, the scope it is written in (what ``$parent`` reads)
        self.parent_scopes: list[Scope] = []

    # ---- helpers ---------------------------------------------------------------------------------
    def fail(self, loc: Loc, problem: str, hint: str) -> ConfigurationError:
        dotted = ".".join(str(p) for p in loc[1:] if p != "fields") if loc and loc[0] == "fields" else ""
        label = f"field {dotted}: " if dotted else ""
        return ConfigurationError(f"{self.doc.where(loc)}: {label}{problem}", hint=hint, source=None)

    def const(self, value: Any) -> str:
        self.counter += 1
        name = f"_K{self.counter}"
        self.ns[name] = value
        return name

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    # ---- paths -----------------------------------------------------------------------------------
    def parse(self, text: str, loc: Loc) -> ParsedPath:
        try:
            return parse_path(text)
        except PathError as exc:
            raise self.fail(loc, str(exc), "fix the path syntax (see docs/mappings.md, Paths)") from None

    def path_expr(self, text: str, scope: Scope, loc: Loc) -> tuple[str, Any]:
        """Python expression reading ``text`` from ``scope``, and the annotation it reaches."""
        path = self.parse(text, loc)
        schema_name = self.spec.source
        if path.root == "":
            base, tp, guaranteed, prefix = scope.var, scope.type, scope.guaranteed, scope.prefix
        elif path.root == "root":
            base, tp, guaranteed, prefix = "root", self.source_model, True, ""
        elif path.root == "parent":
            if not self.parent_scopes:
                raise self.fail(loc, "$parent is the object an each is written in: use it inside each",
                                "move the field under an each, or read the record with $root")
            outer = self.parent_scopes[-1]
            base, tp, guaranteed, prefix = outer.var, outer.type, outer.guaranteed, outer.prefix
        elif path.root == "tenant":
            if (problem := credentials_read(path)) is not None:
                raise self.fail(loc, problem, CREDENTIALS_HINT)
            self.uses_tenant = True
            base, tp, guaranteed, prefix, schema_name = "T", TenantConfig, True, "", "the tenant configuration"
        elif path.root == "params":
            self.uses_params = True
            first = path.segments[0]
            if not isinstance(first, Key) or first.name not in self.spec.params:
                declared = ", ".join(self.spec.params) or "none"
                raise self.fail(
                    loc,
                    f"{text!r} reads a parameter the mapping does not declare (declared: {declared})",
                    "add it to `params:` at the top of the file, or fix the name",
                )
            base, tp, guaranteed, prefix = "P", dict[str, Any], True, ""
        elif path.root == "index":
            if not self.index_vars:
                raise self.fail(loc, "$index is the position of a list item: use it inside each",
                                "move the field under an each, or remove $index")
            return self.index_vars[-1], int
        else:  # now
            self.uses_now = True
            if path.segments:
                raise self.fail(loc, "$now has no fields", "use $now alone, then a transform (datetime_format)")
            return "NOW", Any
        try:
            leaf = resolve(tp, path.segments, schema_name, prefix)
        except PathError as exc:
            where = ("schemas/json/tenant.schema.json" if path.root == "tenant"
                     else _schema_file(self.spec.source))
            raise self.fail(loc, f"unknown source path {text!r}: {exc}",
                            f"use a path that exists in {schema_name} ({where})") from None
        return self._segments_expr(base, guaranteed, path.segments, scope, loc), leaf

    def _segments_expr(self, expr: str, guaranteed: bool, segments: tuple[Any, ...], scope: Scope,
                       loc: Loc) -> str:
        clauses: list[str] = []
        for segment in segments:
            if isinstance(segment, Key):
                expr = f"{expr}.get({segment.name!r})" if guaranteed else f"({expr} or _E).get({segment.name!r})"
            elif isinstance(segment, Index):
                expr = f"_at({expr}, {segment.index})"
            elif isinstance(segment, Find):
                if segment.ref is not None:  # @path: from the record's root, or a context ($parent, ...)
                    value, _ = self.path_expr(segment.ref.text, scope, loc)
                else:
                    value = self.const(segment.value)
                expr = f"_find({expr}, {segment.key!r}, {value})"
            elif isinstance(segment, Star):  # every item; several stars flatten into one list
                var = self.fresh("_x")
                clauses.append(f"for {var} in ({expr} or ())")
                expr = var
            guaranteed = False
        if clauses:
            return f"[{expr} {' '.join(clauses)}]"
        return expr

    def ref_or_const(self, value: Any, scope: Scope, loc: Loc) -> str:
        if isinstance(value, str) and value.startswith("@@"):
            return self.const(value[1:])
        if isinstance(value, str) and value.startswith("@"):
            expr, _ = self.path_expr(value, scope, loc)
            return expr
        return self.const(value)

    # ---- conditions ------------------------------------------------------------------------------
    def cond_expr(self, cond: Condition, scope: Scope, loc: Loc) -> str:
        if cond.all is not None:
            return " and ".join(f"({self.cond_expr(c, scope, (*loc, 'all', i))})" for i, c in enumerate(cond.all))
        if cond.any is not None:
            return " or ".join(f"({self.cond_expr(c, scope, (*loc, 'any', i))})" for i, c in enumerate(cond.any))
        if cond.not_ is not None:
            return f"not ({self.cond_expr(cond.not_, scope, (*loc, 'not'))})"
        assert cond.path is not None
        expr, leaf = self.path_expr(cond.path, scope, (*loc, "path"))
        given = cond.model_fields_set
        try:
            for name in ("equals", "not_equals", "in_", "not_in"):
                if name in given:
                    check_literal(leaf, getattr(cond, name), cond.path)
        except PathError as exc:
            raise self.fail((*loc, "path"), str(exc), "match the type of the source field") from None
        if "equals" in given:
            return f"({expr}) == {self.ref_or_const(cond.equals, scope, loc)}"
        if "not_equals" in given:
            return f"({expr}) != {self.ref_or_const(cond.not_equals, scope, loc)}"
        if "in_" in given or "not_in" in given:
            values = cond.in_ if "in_" in given else cond.not_in
            op = "in" if "in_" in given else "not in"
            if isinstance(values, str):  # '@path': the list at another path
                listed, _ = self.path_expr(values, scope, (*loc, "in" if "in_" in given else "not_in"))
                return f"({expr}) {op} (({listed}) or ())"
            try:
                group: Any = frozenset(values or [])
            except TypeError:
                group = tuple(values or [])
            return f"({expr}) {op} {self.const(group)}"
        if "exists" in given:
            return f"_present({expr})" if cond.exists else f"not _present({expr})"
        if "contains" in given:
            return f"{self.ref_or_const(cond.contains, scope, loc)} in (({expr}) or ())"
        try:
            pattern = compile_pattern(cond.matches or "")
        except RegexRefused as exc:
            raise self.fail((*loc, "matches"), exc.problem, exc.hint) from None
        return f"_match({self.const(pattern)}, {expr})"

    # ---- target schema ---------------------------------------------------------------------------
    def target_fields(self, model: Any) -> dict[str, Any] | None:
        models = [kind for kind in candidates(model) if is_model(kind)]
        return model_fields(models[0]) if models else None

    def required_fields(self, model: Any) -> set[str]:
        models = [kind for kind in candidates(model) if is_model(kind)]
        if not models:
            return set()
        return {(info.alias or name) for name, info in models[0].model_fields.items() if info.is_required()}

    def check_target_fields(self, fields: dict[str, Any], target_type: Any, loc: Loc, what: str) -> None:
        known = self.target_fields(target_type)
        if known is None:
            return
        for name in fields:
            if name not in known:
                import difflib

                close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
                fix = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    (*loc, name),
                    f"{what} has no field {name!r}",
                    f"{fix}fields of {what}: {', '.join(known)}",
                )
        missing = sorted(self.required_fields(target_type) - set(fields))
        if missing:
            raise self.fail(
                loc if loc != ("fields",) else ("fields",),
                f"required target field(s) {', '.join(missing)} of {what} are not produced",
                f"add {', '.join(f'{m}: <source path>' for m in missing)} under "
                f"{'.'.join(str(p) for p in loc) or 'fields'}",
            )

    # ---- fields ----------------------------------------------------------------------------------
    def field_spec(self, raw: FieldMapping | str) -> FieldMapping:  # already expanded by the language
        return FieldMapping.model_validate({"from": raw}) if isinstance(raw, str) else raw

    def emit_fields(
        self,
        fields: dict[str, FieldMapping | str],
        scope: Scope,
        target_type: Any,
        out: str,
        indent: int,
        loc: Loc,
        dotted: str,
        what: str,
        optional: tuple[str, ...] = (),
    ) -> None:
        self.check_target_fields(fields, target_type, loc, what)
        known = self.target_fields(target_type) or {}
        required = self.required_fields(target_type) - set(optional)
        for name, raw in fields.items():
            spec = self.field_spec(raw)
            self.emit_field(
                name, spec, scope, known.get(name, Any), name in required, out, indent,
                (*loc, name), f"{dotted}{name}",
            )

    def emit_field(
        self,
        name: str,
        spec: FieldMapping,
        scope: Scope,
        target_type: Any,
        required: bool,
        out: str,
        indent: int,
        loc: Loc,
        dotted: str,
    ) -> None:
        index = len(self.fields)
        owner = None
        if self.ownership is not None and "." not in dotted and "[" not in dotted:
            owner = self.ownership.fields.get(name, self.ownership.default)
        info = FieldInfo(dotted, self.doc.line_of(loc), "", [], None, owner, spec.description)
        self.fields.append(info)
        self.emit(indent, f"_f = {index}")
        inner = indent
        if spec.when is not None:
            info.condition = _describe_condition(spec.when)
            self.emit(indent, f"if {self.cond_expr(spec.when, scope, (*loc, 'when'))}:")
            inner = indent + 1
        before = len(self.fields)
        self.emit_value(spec, scope, target_type, inner, loc, dotted, info, index)
        if len(self.fields) != before:  # nested fields moved the error marker: point it back here
            self.emit(indent if spec.when is None else inner, f"_f = {index}")
        if spec.when is not None:
            self.emit(indent, "else:")
            self.emit(indent + 1, "v = None")
        if "default" in spec.model_fields_set and spec.default is not None:
            default = spec.default
            code = f"_copy({self.const(default)})" if isinstance(default, list | dict) else self.const(default)
            self.emit(indent, f"if v is None: v = {code}")
        if required:
            self.emit(indent, f"if v is None: raise _Missing({index})")
            self.emit(indent, f"{out}[{name!r}] = v")
        else:
            self.emit(indent, f"if v is not None: {out}[{name!r}] = v")

    def emit_value(
        self,
        spec: FieldMapping,
        scope: Scope,
        target_type: Any,
        indent: int,
        loc: Loc,
        dotted: str,
        info: FieldInfo,
        index: int,
    ) -> None:
        """Emit code leaving the field's value (after its transforms) in ``v``: one step per source."""
        many = False
        if spec.cases is not None:
            info.source = "cases"
            self.emit_cases(spec, scope, target_type, indent, loc, dotted, info, index)
        elif spec.from_ is not None:
            many = self.emit_from(spec, scope, indent, loc, info)
        elif spec.template is not None:
            info.source = f"template {spec.template!r}"
            self.emit(indent, f"v = {self.template_expr(spec.template, scope, (*loc, 'template'))}")
        elif spec.each is not None:
            self.emit_each(spec, scope, target_type, indent, loc, dotted, info, index)
        elif spec.fields is not None:
            self.emit_object(spec, scope, target_type, indent, loc, dotted, info)
        elif spec.items is not None:
            self.emit_items(spec, scope, target_type, indent, loc, dotted, info, index)
        elif "value" in spec.model_fields_set:
            info.source = f"constant {spec.value!r}"
            value = spec.value
            code = f"_copy({self.const(value)})" if isinstance(value, list | dict) else self.const(value)
            self.emit(indent, f"v = {code}")
        else:  # only a default
            info.source = "(default)"
            self.emit(indent, "v = None")
        self.emit_transforms(spec, indent, loc, info, skip_first_many=many)

    def emit_from(self, spec: FieldMapping, scope: Scope, indent: int, loc: Loc, info: FieldInfo) -> bool:
        """``from``: one path, the first present of several, or all of them for a transform that takes
        several values (then True: the transform receives the tuple)."""
        assert spec.from_ is not None
        paths = [spec.from_] if isinstance(spec.from_, str) else list(spec.from_)
        if not paths:
            raise self.fail((*loc, "from"), "from is an empty list", "give one path or several")
        exprs = [self.path_expr(p, scope, (*loc, "from"))[0] for p in paths]
        info.source = " | ".join(paths)
        first = self._first_transform(spec, loc)
        many = first is not None and first.takes_many
        if len(exprs) == 1:
            if many:
                raise self.fail((*loc, "transforms", 0), f"transform {first.name!r} takes several values",
                                f"give from a list of paths, e.g. from: [{paths[0]}, other.path]")
            self.emit(indent, f"v = {exprs[0]}")
        elif many:
            self.emit(indent, f"v = ({', '.join(exprs)},)")
        else:  # a list of paths without a many-valued transform: the first present one
            missing = 'v is None or v == "" or v == [] or v == {}'  # inline: no call per record
            self.emit(indent, f"v = {exprs[0]}")
            for expr in exprs[1:]:
                self.emit(indent, f"if {missing}: v = {expr}")
            self.emit(indent, f"if {missing}: v = None")
        return many

    def emit_object(self, spec: FieldMapping, scope: Scope, target_type: Any, indent: int, loc: Loc,
                    dotted: str, info: FieldInfo) -> None:
        """``fields`` without ``each``: a nested object (a one-item list when the target is a list)."""
        assert spec.fields is not None
        info.source = "(object)"
        nested = self.fresh("_r")
        as_list = not any(is_model(k) for k in candidates(target_type)) and any(
            is_list(k) for k in candidates(target_type)
        )
        object_type = (
            next(item_type(k) for k in candidates(target_type) if is_list(k)) if as_list else target_type
        )
        self.emit(indent, f"{nested} = {{}}")
        self.emit_fields(spec.fields, scope, object_type, nested, indent, (*loc, "fields"),
                         f"{dotted}[]." if as_list else f"{dotted}.", f"target {dotted}")
        self.emit(indent, f"v = [{nested}] if {nested} else None" if as_list else f"v = {nested} or None")

    def emit_items(self, spec: FieldMapping, scope: Scope, target_type: Any, indent: int, loc: Loc,
                   dotted: str, info: FieldInfo, index: int) -> None:
        """``items``: a fixed list, one value per item, missing items left out."""
        assert spec.items is not None
        info.source = f"items ({len(spec.items)})"
        element = next((item_type(k) for k in candidates(target_type) if is_list(k)), None)
        if element is None and target_type is not Any:
            raise self.fail((*loc, "items"), f"items makes a list but the target field is "
                            f"{describe(target_type)}", "use items only for list fields")
        collected = self.fresh("_o")
        self.emit(indent, f"{collected} = []")
        for position, raw in enumerate(spec.items):
            sub_spec = self.field_spec(raw)
            sub = FieldInfo(f"{dotted}[{position}]", self.doc.line_of((*loc, "items", position)), "", [],
                            None, None)
            self.fields.append(sub)
            self.emit(indent, f"_f = {len(self.fields) - 1}")
            self.emit_value(sub_spec, scope, element or Any, indent, (*loc, "items", position),
                            f"{dotted}[{position}]", sub, index)
            if "default" in sub_spec.model_fields_set and sub_spec.default is not None:
                self.emit(indent, f"if v is None: v = {self.const(sub_spec.default)}")
            self.emit(indent, f"if v is not None: {collected}.append(v)")
        self.emit(indent, f"v = {collected} or None")

    def _first_transform(self, spec: FieldMapping, loc: Loc) -> Any:
        if not spec.transforms:
            return None
        name = spec.transforms[0] if isinstance(spec.transforms[0], str) else next(iter(spec.transforms[0]))
        return REGISTRY.get(name)

    def emit_transforms(self, spec: FieldMapping, indent: int, loc: Loc, info: FieldInfo,
                        skip_first_many: bool) -> None:
        for position, raw in enumerate(spec.transforms):
            tloc = (*loc, "transforms", position)
            name, args = (raw, None) if isinstance(raw, str) else next(iter(raw.items()))
            if name not in REGISTRY:
                import difflib

                close = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.5)
                fix = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(tloc, f"unknown transform {name!r}",
                                f"{fix}transforms: {', '.join(sorted(REGISTRY))}")
            try:
                transform_spec, function = build(name, args)
            except RegexRefused as exc:
                raise self.fail(tloc, f"transform {name!r}: {exc.problem}", exc.hint) from None
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                    for e in exc.errors(include_url=False)
                )
                allowed = ", ".join(REGISTRY[name].args.model_fields) if REGISTRY[name].args else "none"
                raise self.fail(tloc, f"transform {name!r}: bad argument ({problems})",
                                f"arguments of {name}: {allowed} (see docs/mappings.md)") from None
            except ValueError as exc:
                raise self.fail(tloc, f"transform {name!r}: {exc}", "fix the transform's arguments") from None
            info.transforms.append(name if args is None else f"{name}({_short(args)})")
            fn = self.const(function)
            call = f"{fn}(v, ctx)" if transform_spec.needs_ctx else f"{fn}(v)"
            if transform_spec.takes_many:
                if position != 0 or not skip_first_many:
                    raise self.fail(tloc, f"transform {name!r} takes several values, so it must come first",
                                    "move it first and give from a list of paths: from: [a, b]")
                self.emit(indent, f"v = {call}")
            else:
                self.emit(indent, f"if v is not None: v = {call}")

    def template_expr(self, template: str, scope: Scope, loc: Loc) -> str:
        parts: list[str] = []
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise self.fail(loc, f"template {template!r}: {exc}", "write {path} placeholders; "
                            "double the braces ({{ }}) for a literal brace") from None
        for literal, name, spec, conversion in parsed:
            if literal:
                parts.append(self.const(literal))
            if name is None:
                continue
            if spec or conversion:
                raise self.fail(loc, f"template placeholder {{{name}...}} has a format; formats are not "
                                "supported", "format the value with a transform in a separate field")
            if not name:
                raise self.fail(loc, "template has an empty placeholder {}", "write the source path: {number}")
            expr, _ = self.path_expr(name, scope, loc)
            parts.append(f"_s({expr})")
        return " + ".join(parts) if parts else self.const("")

    def emit_each(self, spec: FieldMapping, scope: Scope, target_type: Any, indent: int, loc: Loc,
                  dotted: str, info: FieldInfo, index: int) -> None:
        assert spec.each is not None
        expr, leaf = self.path_expr(spec.each, scope, (*loc, "each"))
        if not any(is_list(kind) or kind is Any for kind in candidates(leaf)):
            raise self.fail((*loc, "each"), f"{spec.each!r} is {describe(leaf)}, not a list",
                            "point each at a list in the source")
        element = next((item_type(kind) for kind in candidates(leaf) if is_list(kind)), Any)
        target_items = [item_type(kind) for kind in candidates(target_type) if is_list(kind)]
        if not target_items and target_type is not Any:
            raise self.fail(loc, f"each produces a list but the target field is {describe(target_type)}",
                            "map a list field, or use from with a transform such as first / join")
        target_item = target_items[0] if target_items else Any
        info.source = f"each {spec.each}"
        items, out, item = self.fresh("_l"), self.fresh("_o"), self.fresh("_i")
        item_scope = Scope(item, element, True, f"{spec.each}[*]")  # None items are skipped below
        self.emit(indent, f"{items} = {expr}")
        self.emit(indent, f"if {items} is not None:")
        self.emit(indent + 1, f"{out} = []")
        position = self.fresh("_n")
        self.emit(indent + 1, f"for {position}, {item} in enumerate({items}, 1):")
        self.index_vars.append(position)
        self.parent_scopes.append(scope)
        body = indent + 2
        self.emit(body, f"if {item} is None: continue")
        if spec.filter is not None:
            info.condition = _describe_condition(spec.filter)
            self.emit(body, f"if not ({self.cond_expr(spec.filter, item_scope, (*loc, 'filter'))}): continue")
        if spec.fields is not None:
            record = self.fresh("_r")
            self.emit(body, f"{record} = {{}}")
            self.emit_fields(spec.fields, item_scope, target_item, record, body, (*loc, "fields"),
                             f"{dotted}[].", f"target {dotted}[]", tuple(spec.skip_without))
            for name in spec.skip_without:
                if name not in spec.fields:
                    raise self.fail((*loc, "skip_without"), f"skip_without names {name!r}, which is not "
                                    "one of this each's fields", f"use one of: {', '.join(spec.fields)}")
                self.emit(body, f"if {record}.get({name!r}) is None: continue")
            self.emit(body, f"{out}.append({record})")
        else:
            assert spec.item is not None
            sub = FieldInfo(f"{dotted}[]", self.doc.line_of((*loc, "item")), "", [], None, None)
            self.fields.append(sub)
            self.emit(body, f"_f = {len(self.fields) - 1}")
            self.emit_value(spec.item, item_scope, target_item, body, (*loc, "item"), f"{dotted}[]", sub, index)
            if "default" in spec.item.model_fields_set and spec.item.default is not None:
                self.emit(body, f"if v is None: v = {self.const(spec.item.default)}")
            self.emit(body, f"if v is not None: {out}.append(v)")
        self.index_vars.pop()
        self.parent_scopes.pop()
        self.emit(indent + 1, f"v = {out}")
        self.emit(indent, "else:")
        self.emit(indent + 1, "v = None")

    def emit_cases(self, spec: FieldMapping, scope: Scope, target_type: Any, indent: int, loc: Loc,
                   dotted: str, info: FieldInfo, index: int) -> None:
        assert spec.cases is not None
        if not spec.cases:
            raise self.fail((*loc, "cases"), "cases is empty", "give at least one case")
        has_fallback = False
        for position, case in enumerate(spec.cases):
            cloc = (*loc, "cases", position)
            if case.when is None:
                if position != len(spec.cases) - 1:
                    raise self.fail(cloc, "a case without `when` must be the last one (it always matches)",
                                    "move it to the end, or give it a when")
                self.emit(indent, "else:" if position else "if True:")
                has_fallback = True
            else:
                keyword = "if" if position == 0 else "elif"
                self.emit(indent, f"{keyword} {self.cond_expr(case.when, scope, (*cloc, 'when'))}:")
            sub = FieldInfo(dotted, None, "", [], None, None)
            plain = case.model_copy(update={"when": None})
            plain.model_fields_set.discard("when")
            self.emit_value(plain, scope, target_type, indent + 1, cloc, dotted, sub, index)
            if "default" in case.model_fields_set and case.default is not None:
                self.emit(indent + 1, f"if v is None: v = {self.const(case.default)}")
            info.transforms.append(f"[{_describe_condition(case.when) if case.when else 'else'}: {sub.source}"
                                   f"{' → ' + ', '.join(sub.transforms) if sub.transforms else ''}]")
        if not has_fallback:
            self.emit(indent, "else:")
            self.emit(indent + 1, "v = None")

    # ---- the function ----------------------------------------------------------------------------
    def compile(self) -> Compiled:
        """Check the whole file and generate its function: the record's scope, the body (filters and
        fields), the record id, then the function's source around the body, compiled and run once."""
        spec = self.spec
        body: list[str] = []
        self.lines = body
        scope, split_expr = self._record_scope()
        self._emit_body(scope)
        rid_expr = self._record_id_expr(scope)
        setup = []
        if self.uses_tenant:
            setup.append("T = _tenant(ctx)")
        if self.uses_params:
            setup.append("P = _params(ctx)")
        if self.uses_now:
            setup.append("NOW = _clock(ctx)")
        self.ns.update(_tenant=self._tenant_getter(), _params=self._params_getter(), _clock=_clock,
                       _fail=self._failer(), _rid=None)
        code = _split_source(body, setup, split_expr) if split_expr is not None else _plain_source(body, setup)
        code += _record_id_source(rid_expr)
        source = "\n".join(code) + "\n"
        try:
            compiled = compile(source, f"<mapping {self.display}>", "exec")
        except SyntaxError as exc:  # a compiler bug, never the user's: say so plainly
            raise ConfigurationError(f"{self.display}: internal error compiling the mapping: {exc}",
                                     hint="report it with the mapping file") from exc
        exec(compiled, self.ns)
        self.ns["_rid"] = self.ns["record_id"]
        produced = [name for name in spec.fields]
        lines = {info.target: info.line for info in self.fields}
        lines[""] = self.doc.line_of(("target",))  # for errors about the record as a whole
        return Compiled(self.ns["apply"], source, self.fields, produced, lines)

    def _record_scope(self) -> tuple[Scope, str | None]:
        """The scope the fields read (the record, or each item of a ``split`` list) and, with ``split``,
        the expression of that list."""
        spec = self.spec
        if spec.split is None:
            return Scope("r", self.source_model, True, ""), None
        split_expr, leaf = self.path_expr(spec.split, Scope("root", self.source_model, True), ("split",))
        if not any(is_list(kind) for kind in candidates(leaf)):
            raise self.fail(("split",), f"{spec.split!r} is {describe(leaf)}, not a list",
                            "split must name a list, e.g. entry[*].changes[*].value.statuses[*]")
        item_type_ = next(item_type(kind) for kind in candidates(leaf) if is_list(kind))
        return Scope("r", item_type_, False, spec.split + "[*]"), split_expr

    def _emit_body(self, scope: Scope) -> None:
        """The record's filters (a failing one returns None), then its fields into ``o``."""
        spec = self.spec
        indent = 2
        for position, cond in enumerate(spec.filters):
            self.emit(indent, f"if not ({self.cond_expr(cond, scope, ('filters', position))}): return None")
        if spec.ownership is not None:
            known = model_fields(self.target_model)
            for name in spec.ownership.fields:
                if name not in known:
                    raise self.fail(("ownership", "fields", name), f"ownership names {name!r}, which is not a "
                                    f"field of {spec.target}", f"fields of {spec.target}: {', '.join(known)}")
        self.emit(indent, "o = {}")
        self.emit_fields(spec.fields, scope, self.target_model, "o", indent, ("fields",), "",
                         f"target {spec.target}")
        self.emit(indent, "return o")

    def _record_id_expr(self, scope: Scope) -> str:
        """The expression naming the record in errors: ``record_id`` (default ``id``, when it exists)."""
        record_id = self.spec.record_id or "id"
        try:
            rid_expr, _ = self.path_expr(record_id, scope, ("record_id",))
        except ConfigurationError:
            if self.spec.record_id is not None:
                raise
            rid_expr = "None"
        return rid_expr

    def _tenant_getter(self) -> Callable[[Any], Any]:
        display = self.display

        def tenant(ctx: Any) -> Any:
            data = ctx.tenant_data() if ctx is not None else None
            if data is None:
                raise DataError(f"{display} reads $tenant but the run has no tenant",
                                hint="pass MappingContext(tenant=...)")
            return data

        return tenant

    def _params_getter(self) -> Callable[[Any], Any]:
        display, declared = self.display, tuple(self.spec.params)

        def params(ctx: Any) -> Any:
            given = getattr(ctx, "params", None) or {}
            missing = [name for name in declared if name not in given]
            if missing:
                raise DataError(f"{display} needs the run parameter(s) {', '.join(missing)}",
                                hint=f"pass MappingContext(params={{{', '.join(repr(m) + ': ...' for m in missing)}}})")
            return given

        return params

    def _failer(self) -> Callable[..., PonteError]:
        fields, display, ns = self.fields, self.display, self.ns
        target = self.spec.target

        def fail(exc: BaseException, index: int, record: Any, ctx: Any) -> PonteError:
            tenant = getattr(getattr(ctx, "tenant", None), "id", None)
            rid = ns["_rid"](record) if isinstance(record, dict) and ns.get("_rid") else None
            rid_text = None if rid is None else str(rid)
            info = fields[index] if 0 <= index < len(fields) else None
            where = f"{display}:{info.line}" if info and info.line else display
            name = info.target if info else None
            if isinstance(exc, _Missing):
                missing = fields[exc.index]
                why = f": {missing.description}" if missing.description else ""
                return DataError(
                    f"required target field {missing.target} of {target} has no value "
                    f"(source: {missing.source or 'none'}){why}",
                    record=rid_text, field=missing.target, tenant=tenant,
                    source=f"{display}:{missing.line}" if missing.line else display,
                    hint="fill it in the source system, or give the field a default in the mapping",
                )
            if isinstance(exc, PonteError):
                return exc.context(source=where, record=rid_text, field=name, tenant=tenant)
            if isinstance(exc, ValueError):
                message = str(exc)
                hint = "correct the value in the source system, or the mapping's transforms at that line"
            else:
                message = (f"the record does not have the shape the mapping expects here "
                           f"({type(exc).__name__}: {exc})")
                hint = "check the source payload against the source schema"
            return DataError(message, record=rid_text, field=name, tenant=tenant, source=where, hint=hint)

        return fail


def _plain_source(body: list[str], setup: list[str]) -> list[str]:
    """``apply(r, ctx)`` for a mapping of one record: the body inside one ``try`` that names the field."""
    return [
        "def apply(r, ctx=None):",
        "    if r.__class__ is not dict: r = _as_record(r)",
        "    root = r",
        "    _f = -1",
        "    try:",
        *("        " + line for line in setup),
        *body,
        "    except Exception as exc:",
        "        raise _fail(exc, _f, r, ctx) from exc",
    ]


def _split_source(body: list[str], setup: list[str], split_expr: str) -> list[str]:
    """``apply(root, ctx)`` for a ``split`` mapping: the body as ``_one(r, ...)``, run on each item of
    the split list (a malformed list, or an item that is not an object, is a bad record too)."""
    return [
        "def _one(r, root, ctx, T, P, NOW):",
        "    _f = -1",
        "    try:",
        *body,
        "    except Exception as exc:",
        "        raise _fail(exc, _f, r, ctx) from exc",
        "def apply(root, ctx=None):",
        "    if root.__class__ is not dict: root = _as_record(root)",
        "    T = P = NOW = None",
        *("    " + line for line in setup),
        "    out = []",
        "    _f = -1",
        "    try:",
        f"        items = list({split_expr} or ())",
        "    except Exception as exc:",
        "        raise _fail(exc, _f, root, ctx) from exc",
        "    for r in items:",
        "        if r is None: continue",
        "        if r.__class__ is not dict:",
        "            raise _fail(TypeError(f'expected an object, got {type(r).__name__}'), _f, root, ctx)",
        "        o = _one(r, root, ctx, T, P, NOW)",
        "        if o is not None: out.append(o)",
        "    return out",
    ]


def _record_id_source(rid_expr: str) -> list[str]:
    """``record_id(r, root)``: the record's id for error messages, None when it cannot be read."""
    return [
        "def record_id(r, root=None):",
        "    root = r if root is None else root",
        "    try:",
        f"        return {rid_expr}",
        "    except Exception:",
        "        return None",
    ]


def _schema_file(key: str) -> str:
    rel = key if key.startswith("canonical/") else f"systems/{key}"
    return f"schemas/json/{rel}.schema.json"


def _clock(ctx: Any) -> Any:
    from mappings.context import _now

    return getattr(ctx, "now", None) or _now()


def _describe_condition(cond: Condition) -> str:
    if cond.all is not None:
        return " and ".join(_describe_condition(c) for c in cond.all)
    if cond.any is not None:
        return " or ".join(_describe_condition(c) for c in cond.any)
    if cond.not_ is not None:
        return f"not ({_describe_condition(cond.not_)})"
    for name, label in (("equals", "=="), ("not_equals", "!="), ("in_", "in"), ("not_in", "not in"),
                        ("contains", "contains"), ("matches", "~")):
        if name in cond.model_fields_set:
            return f"{cond.path} {label} {getattr(cond, name)!r}"
    return f"{cond.path} {'exists' if cond.exists else 'is empty'}"


def _short(args: Any) -> str:
    if isinstance(args, dict):
        text = ", ".join(f"{k}={v!r}" if not isinstance(v, dict) else f"{k}={{…{len(v)}}}" for k, v in args.items())
    else:
        text = repr(args)
    return text if len(text) <= 60 else text[:59] + "…"

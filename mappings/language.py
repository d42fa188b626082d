"""The mapping language: what a mapping YAML file may say, as pydantic models.

The same models validate a file at load time and export the JSON Schema editors use
(``schemas/json/mapping.schema.json``): one representation, not three.

A mapping reads one *source* record and produces one *target* record (or a list, with ``split``)::

    version: 3
    source: sienge/customer          # a key of schemas.systems.SYSTEM_SCHEMAS or canonical/<name>
    target: canonical/person
    record_id: id                    # names the record in errors
    filters: [...]                   # whole-record conditions; a record failing one is skipped
    fields:                          # target field -> how to produce it
      name: name                     # shorthand for {from: name}
      document: {from: [cpf, cnpj], transforms: [tax_id]}
    ownership: {default: sienge, fields: {contatos: cvcrm}}

Paths: ``a.b`` (nested), ``a[0]`` (an item), ``a[*].b`` (every item: a list), ``a[main=true]`` (the first
item whose ``main`` is true), ``a[id=@data.recipientId]`` (compare with another path of the record).
A path starting with ``$`` reads the run's context: ``$tenant.options...``, ``$params.<name>``,
``$now``, ``$root.<path>`` (the whole record, from inside a list item), ``$parent.<path>`` (inside an
``each``: the object the ``each`` is written in, i.e. the enclosing list item or the record), ``$index``
(1-based position of the current list item). ``@path`` in a condition value or a filter is a path from
the root of the record (``@$tenant...``, ``@$parent...`` a context path); ``in`` and ``not_in`` take
one too, naming a list. Several ``[*]`` in one path flatten into one list.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


class DslModel(BaseModel):
    """Mapping files are written by people: unknown keys are typos, so they are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(DslModel):
    """A test on the record. Give ``path`` and one comparison, or combine with all / any / not.

    Comparison values are literals; a string starting with ``@`` is a path from the record's root
    (``@$parent.role``, ``@$tenant.id``: a context path). ``in`` / ``not_in`` take a list of values or
    such a path to a list (``in: "@positions[*].role"``).
    """

    path: str | None = Field(None, description="Source path tested")
    equals: Any = Field(None, description="Equal to this value")
    not_equals: Any = Field(None, description="Different from this value")
    in_: list[Any] | str | None = Field(
        None, alias="in", description="One of these values, or of the list at an '@path'"
    )
    not_in: list[Any] | str | None = Field(None, description="None of these values, or of the list at an '@path'")
    exists: bool | None = Field(None, description="true: present and not empty; false: missing or empty")
    contains: Any = Field(None, description="The list at path contains this value")
    matches: str | None = Field(None, description="The text at path matches this regular expression")
    all: list[Condition] | None = Field(None, description="Every condition holds")
    any: list[Condition] | None = Field(None, description="At least one condition holds")
    not_: Condition | None = Field(None, alias="not", description="The condition does not hold")

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        comparisons = [
            name
            for name in ("equals", "not_equals", "in_", "not_in", "exists", "contains", "matches")
            if name in self.model_fields_set
        ]
        combinators = [name for name in ("all", "any", "not_") if name in self.model_fields_set]
        if combinators:
            if len(combinators) > 1 or comparisons or self.path is not None:
                raise ValueError("use exactly one of all / any / not, without path or a comparison beside it")
            return self
        if self.path is None:
            raise ValueError("a condition needs a path (or all / any / not)")
        if len(comparisons) != 1:
            raise ValueError(
                "give exactly one comparison: equals, not_equals, in, not_in, exists, contains or matches"
            )
        for name in ("in_", "not_in"):
            listed = getattr(self, name)
            if isinstance(listed, str) and not listed.startswith("@"):
                raise ValueError(f"{name.rstrip('_')} takes a list of values, or '@path' naming a list")
        return self


Transform = str | dict[str, Any]


def _shorthand(value: Any) -> Any:
    """``name: cpf`` means ``name: {from: cpf}``: expanded before validation, so errors stay precise."""
    return {"from": value} if isinstance(value, str) else value


#: a field mapping, or a path as shorthand for ``{from: path}``
Field_ = Annotated["FieldMapping", BeforeValidator(_shorthand)]


class FieldMapping(DslModel):
    """How one target field is produced. Exactly one source: ``from``, ``value``, ``template``,
    ``each``, ``fields`` (a nested object) or ``cases``."""

    from_: str | list[str] | None = Field(
        None,
        alias="from",
        description="Source path; a list of paths means the first present one, unless the first "
        "transform takes several values (concat, coalesce, evidence_required)",
    )
    value: Any = Field(None, description="A constant")
    template: str | None = Field(
        None, description="A short text with {path} placeholders, checked at load: 'Contrato {number}'"
    )
    each: str | None = Field(None, description="Source list path: produce one target item per item")
    filter: Condition | None = Field(None, description="With each: keep only the items that pass")
    fields: dict[str, Field_] | None = Field(
        None, description="A nested object (with each: the fields of every item, paths relative to it)"
    )
    item: FieldMapping | None = Field(None, description="With each: a list of plain values, not objects")
    skip_without: list[str] = Field(
        default_factory=list,
        description="With each: leave out items whose listed target fields came out missing "
        "(e.g. a signer whose role is not in the tenant's signer chain)",
    )
    items: list[Field_] | None = Field(
        None, description="A fixed list, one mapping per item; missing items are left out"
    )
    cases: list[FieldMapping] | None = Field(
        None, description="Alternatives tried in order; the first whose `when` holds gives the value"
    )
    transforms: list[Transform] = Field(
        default_factory=list, description="Applied in order: 'name' or {name: arguments}"
    )
    default: Any = Field(None, description="Value when the result is missing")
    when: Condition | None = Field(None, description="Produce the field only when this holds")
    description: str | None = None

    @field_validator("transforms", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("transforms")
    @classmethod
    def _one_key(cls, value: list[Transform]) -> list[Transform]:
        for item in value:
            if isinstance(item, dict) and len(item) != 1:
                raise ValueError("write each transform as a name or {name: arguments} (one key)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FieldMapping:
        sources = [
            name
            for name in ("from_", "value", "template", "each", "cases", "items")
            if name in self.model_fields_set and (name == "value" or getattr(self, name) is not None)
        ]
        if self.fields is not None and self.each is None:
            sources.append("fields")
        if len(sources) > 1:
            names = ", ".join("from" if s == "from_" else s for s in sources)
            raise ValueError(f"give one source, not several ({names})")
        if not sources and "default" not in self.model_fields_set:
            raise ValueError("give a source: from, value, template, each, items, fields or cases (or a default)")
        if self.each is not None and (self.fields is None) == (self.item is None):
            raise ValueError("with each, give fields (objects) or item (plain values), not both")
        if self.each is None and (self.item is not None or self.filter is not None or self.skip_without):
            raise ValueError("item, filter and skip_without only apply with each")
        return self


class Ownership(DslModel):
    """Which system owns each target field. An import writes the fields its system owns and only fills
    the others while they are empty, so what the target system enriched is never wiped."""

    default: str = Field(description="Owner of every field not listed (usually the source system)")
    fields: dict[str, str] = Field(default_factory=dict, description="target field -> owning system")


class MappingFile(DslModel):
    """A mapping file (``mappings/<system>/<name>.yaml``)."""

    version: int | str = Field(description="Bump when the output changes; recorded with every write")
    description: str | None = None
    source: str = Field(description="Source schema: sienge/customer, cvcrm/contrato, canonical/person, ...")
    target: str = Field(description="Target schema: canonical/person, cvcrm/cliente, ...")
    record_id: str | None = Field(None, description="Source path naming the record in errors (default id)")
    split: str | None = Field(
        None, description="Source list path: produce one target record per item (webhook batches)"
    )
    params: list[str] = Field(
        default_factory=list, description="Run-time values the pipeline passes ($params.<name>)"
    )
    filters: list[Condition] = Field(default_factory=list, description="Records failing one are skipped")
    fields: dict[str, Field_] = Field(min_length=1)
    ownership: Ownership | None = None


def json_schema() -> dict[str, Any]:
    """The mapping language's JSON Schema, with the registered transform names for autocompletion."""
    from mappings.transforms import REGISTRY

    schema = MappingFile.model_json_schema(mode="validation")
    names = sorted(REGISTRY)
    field_def = schema["$defs"]["FieldMapping"]
    field_def["properties"]["transforms"]["items"] = {
        "anyOf": [
            {"type": "string", "enum": names},
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "propertyNames": {"enum": names},
            },
        ]
    }
    _allow_shorthand(schema)
    schema["title"] = "Ponte mapping"
    return schema


def _allow_shorthand(node: Any) -> None:
    """Where a field mapping is expected, editors must also accept the ``path`` string shorthand."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key in ("additionalProperties", "items") and value == {"$ref": "#/$defs/FieldMapping"}:
                node[key] = {"anyOf": [value, {"type": "string", "description": "shorthand for {from: path}"}]}
            else:
                _allow_shorthand(value)
    elif isinstance(node, list):
        for item in node:
            _allow_shorthand(item)


__all__ = ["Condition", "FieldMapping", "MappingFile", "Ownership", "json_schema"]

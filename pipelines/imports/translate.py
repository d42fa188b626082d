"""Sienge payloads → canonical records → CV CRM payloads, through the compiled mappings.

The import flow sees only this small surface, so mappings can change without touching the flow. Every
failure is a DataError naming the mapping, the field and the record.

A CRM payload is checked against the field limits its target schema declares (``max_length`` in
``schemas/systems/cvcrm.py``) as soon as it is made, before it is hashed or sent: a value longer than
CV CRM takes is a DataError naming the CV field, its length and the limit, so the record becomes a
dead letter instead of a write CV would refuse or cut. A mapping that may cut a field says so itself
(the ``truncate`` transform); nothing is cut silently. The check is a few ``len`` calls per record.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from annotated_types import MaxLen
from pydantic import BaseModel, ValidationError

from mappings import MappingContext, load_mapping
from pipelines.imports import hashing
from ponte import DataError
from schemas import TenantConfig
from schemas.canonical import Enterprise, Person, Sale, Unit
from schemas.systems import UNCONFIRMED_LIMIT

Lookup = Callable[[str, str, str, str], str | None]

MAPPINGS = {
    "enterprise": ("sienge/enterprise_to_canonical", None),
    "unit": ("sienge/unit_to_canonical", None),
    "customer": ("sienge/customer_to_person", "cvcrm/person_to_cliente"),
    "sale": ("sienge/sales_contract_to_sale", "cvcrm/sale_to_reserva"),
}
MODELS = {"enterprise": Enterprise, "unit": Unit, "customer": Person, "sale": Sale}
#: entities whose whole translation is ``Translator.staged`` (a sale's decision needs its canonical form)
STAGED = ("enterprise", "unit", "customer")


@dataclass(frozen=True)
class Limits:
    """The length limits a target schema declares, compiled for a check per record: ``flat`` holds
    (field, max_length) of its text fields, ``nested`` (field, is a list, their limits) of its objects."""

    flat: tuple[tuple[str, int], ...]
    nested: tuple[tuple[str, bool, Limits], ...]

    def first_too_long(self, payload: dict[str, Any], prefix: str = "") -> tuple[str, int, int] | None:
        """(field, length, limit) of the first value longer than its limit, or None."""
        for name, limit in self.flat:
            value = payload.get(name)
            if value.__class__ is str and len(value) > limit:
                return f"{prefix}{name}", len(value), limit
        for name, many, inner in self.nested:
            value = payload.get(name)
            if not value:
                continue
            where = f"{prefix}{name}{'[]' if many else ''}."
            for item in value if many and isinstance(value, list) else [value]:
                if isinstance(item, dict) and (found := inner.first_too_long(item, where)):
                    return found
        return None


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model an annotation holds (``X | None``, ``list[X]``), and whether it is a list of them."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found[0] is not None:
                return found
        return None, False
    if origin is list:
        args = typing.get_args(annotation)
        model = _model_in(args[0])[0] if args else None
        return model, model is not None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def limits_of(model: type[BaseModel]) -> Limits:
    """The ``max_length`` limits of ``model``'s fields, nested models and lists of them included."""
    flat: list[tuple[str, int]] = []
    nested: list[tuple[str, bool, Limits]] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        limit = next((m.max_length for m in info.metadata if isinstance(m, MaxLen)), None)
        if limit is not None:
            flat.append((key, limit))
        inner, many = _model_in(info.annotation)
        if inner is not None:
            sub = limits_of(inner)
            if sub.flat or sub.nested:
                nested.append((key, many, sub))
    return Limits(tuple(flat), tuple(nested))


class Translator:
    def __init__(self, tenant: TenantConfig, lookup: Lookup) -> None:
        self.tenant = tenant
        self.context = MappingContext(lookup=lookup, tenant=tenant)
        self._cache: dict[str, Any] = {}
        self._limits: dict[str, Limits] = {}

    def mapping(self, name: str) -> Any:
        """A compiled mapping, loaded once per translator."""
        if name not in self._cache:
            self._cache[name] = load_mapping(name)
        return self._cache[name]


    def version(self, entity: str) -> str:
        source, target = MAPPINGS[entity]
        versions = [str(self.mapping(source).version)]
        if target:
            versions.append(str(self.mapping(target).version))
        return "+".join(versions)

    def _canonical(self, entity: str, raw: dict[str, Any]) -> Any:
        mapping = self.mapping(MAPPINGS[entity][0])
        result = mapping.apply(raw, self.context)
        model = MODELS[entity]
        if isinstance(result, model):
            return result
        try:
            return model.model_validate(result)
        except ValidationError as exc:
            first = exc.errors(include_context=False, include_input=False)[0]
        # raised outside the except block, so the DataError carries no __context__: pydantic's
        # ValidationError is not tracked by the cyclic collector, and through its inner error's
        # traceback it held the caller's frames (a whole batch's payloads) for good
        raise DataError(
            f"{first['msg']} (mapping {MAPPINGS[entity][0]})",
            record=f"{entity} {raw.get('id')}",
            field=".".join(str(p) for p in first["loc"]),
            hint="correct the record in Sienge, then replay it with `ponte deadletter replay`",
        )

    def _target(self, entity: str, canonical: Any, record_id: Any = None) -> dict[str, Any]:
        name = MAPPINGS[entity][1]
        assert name is not None
        mapping = self.mapping(name)
        result = dict(mapping.apply(canonical.model_dump(mode="json"), self.context))
        limits = self._limits.get(name)
        if limits is None:
            limits = self._limits[name] = limits_of(mapping.target_model)
        too_long = limits.first_too_long(result)
        if too_long is not None:
            raise self._too_long_error(entity, mapping, record_id, *too_long)
        return result

    @staticmethod
    def _too_long_error(entity: str, mapping: Any, record_id: Any, field: str, length: int,
                        limit: int) -> DataError:
        info = next((f for f in mapping.fields if f.target == field), None)
        line = info.line if info is not None else None
        origin = f" (from {info.source})" if info is not None and info.source else ""
        return DataError(
            f"{field}{origin} is {length:,} characters; CV CRM takes at most {limit} "
            f"({UNCONFIRMED_LIMIT}). Nothing was sent",
            record=None if record_id is None else f"{entity} {record_id}",
            field=field,
            source=f"{mapping.path}:{line}" if line else mapping.path,
            hint=f"shorten the value in Sienge to {limit} characters or fewer, then `ponte deadletter "
            f"replay` (or, where cutting it is acceptable, add `{{truncate: {limit}}}` to that field's "
            "transforms in the mapping)",
        )

    def runs_alone(self, entity: str) -> bool:
        """Whether ``staged`` can run in a worker process: no id-map lookups, which need the run's store."""
        if entity not in STAGED:
            return False
        return not any(self.mapping(name).uses_id_map for name in MAPPINGS[entity] if name)

    def staged(self, entity: str, raw: dict[str, Any]) -> tuple[Any, str]:
        """What the import compares and writes for one record of ``entity`` (one of ``STAGED``), and its
        content hash: the reference record, or the customer's cliente payloads. Pure CPU, no I/O."""
        payload: Any = self.customer(raw)[1] if entity == "customer" else self.reference(entity, raw)
        return payload, hashing.content_hash(payload)

    def reference(self, entity: str, raw: dict[str, Any]) -> dict[str, Any]:
        return self._canonical(entity, raw).model_dump(mode="json")

    def customer(self, raw: dict[str, Any]) -> tuple[Person, list[dict[str, Any]]]:
        """The CV CRM cliente payload (the spouse travels inside it, as CV's ``conjuge``)."""
        person: Person = self._canonical("customer", raw)
        return person, [self._target("customer", person, raw.get("id"))]

    def sale(self, raw: dict[str, Any]) -> tuple[Sale, dict[str, Any]]:
        sale: Sale = self._canonical("sale", raw)
        return sale, self._target("sale", sale, raw.get("id"))

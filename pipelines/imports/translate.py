"""Sienge payloads → canonical records → CV CRM payloads, through the compiled mappings.

The import flow sees only this small surface, so mappings can change without touching the flow. Every
failure is a DataError naming the mapping, the field and the record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from mappings import MappingContext, load_mapping
from pipelines.imports import hashing
from ponte.errors import DataError
from schemas.canonical import Enterprise, Person, Sale, Unit
from schemas.tenant import TenantConfig

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


class Translator:
    def __init__(self, tenant: TenantConfig, lookup: Lookup) -> None:
        self.tenant = tenant
        self.context = MappingContext(lookup=lookup, tenant=tenant)
        self._cache: dict[str, Any] = {}

    def _mapping(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = load_mapping(name)
        return self._cache[name]

    def version(self, entity: str) -> str:
        source, target = MAPPINGS[entity]
        versions = [str(self._mapping(source).version)]
        if target:
            versions.append(str(self._mapping(target).version))
        return "+".join(versions)

    def _canonical(self, entity: str, raw: dict[str, Any]) -> Any:
        mapping = self._mapping(MAPPINGS[entity][0])
        result = mapping.apply(raw, self.context)
        model = MODELS[entity]
        if isinstance(result, model):
            return result
        try:
            return model.model_validate(result)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise DataError(
                f"{first['msg']} (mapping {MAPPINGS[entity][0]})",
                record=f"{entity} {raw.get('id')}",
                field=field,
                hint="correct the record in Sienge, then replay it with `ponte deadletter replay`",
            ) from None

    def _target(self, entity: str, canonical: Any) -> dict[str, Any]:
        name = MAPPINGS[entity][1]
        assert name is not None
        result = self._mapping(name).apply(canonical.model_dump(mode="json"), self.context)
        return dict(result)

    def runs_alone(self, entity: str) -> bool:
        """Whether ``staged`` can run in a worker process: no id-map lookups, which need the run's store."""
        if entity not in STAGED:
            return False
        return not any(self._mapping(name).uses_id_map for name in MAPPINGS[entity] if name)

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
        return person, [self._target("customer", person)]

    def sale(self, raw: dict[str, Any]) -> tuple[Sale, dict[str, Any]]:
        sale: Sale = self._canonical("sale", raw)
        return sale, self._target("sale", sale)

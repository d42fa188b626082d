"""What a mapping may know besides the record: the run's context, injected by the caller.

A mapping is a pure function of records; anything stateful (the id map in the state store, the tenant's
options, the clock, values the pipeline computed such as a document's hash) comes in through a
:class:`MappingContext`, so mappings never import pipelines or connectors and tests pass plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mappings.transforms import SAO_PAULO
from schemas.tenant import TenantConfig

#: (entity, source_system, source_id, target_system) -> target id, or None when the id map has none
Lookup = Callable[[str, str, str, str], "str | None"]


def _now() -> datetime:
    return datetime.now(SAO_PAULO)


@dataclass
class MappingContext:
    """Per-run context. Build one per batch (not per record): tenant options are flattened once."""

    lookup: Lookup | None = None
    tenant: TenantConfig | None = None
    now: datetime = field(default_factory=_now)
    params: Mapping[str, Any] = field(default_factory=dict)
    _tenant_data: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def tenant_data(self) -> dict[str, Any] | None:
        """The tenant as plain JSON-like data (what ``$tenant.`` paths read), computed once."""
        if self._tenant_data is None and self.tenant is not None:
            self._tenant_data = self.tenant.model_dump(mode="json")
        return self._tenant_data

    def with_params(self, **params: Any) -> MappingContext:
        """The same context with per-record params (e.g. a document's hash), sharing the cached tenant."""
        copy = MappingContext(lookup=self.lookup, tenant=self.tenant, now=self.now, params=params)
        copy._tenant_data = self._tenant_data
        return copy


def static_lookup(table: Mapping[tuple[str, str, str, str], str]) -> Lookup:
    """A lookup from a fixed table ``{(entity, source, source_id, target): target_id}`` (tests, CLI)."""

    def lookup(entity: str, source: str, source_id: str, target: str) -> str | None:
        return table.get((entity, source, str(source_id), target))

    return lookup


__all__ = ["Lookup", "MappingContext", "static_lookup"]

"""What an import did (or, in plan mode, would do): counts per entity, shown in the CLI and Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ENTITIES = ("enterprise", "unit", "customer", "sale")
COUNTERS = ("read", "created", "updated", "unchanged", "cancelled", "failed", "dead_lettered")


@dataclass
class EntityCounts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    failed: int = 0
    dead_lettered: int = 0
    #: in plan mode, a few record ids per decision so an operator can check before running for real
    samples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, decision: str, record_id: str, plan: bool) -> None:
        setattr(self, decision, getattr(self, decision) + 1)
        if plan and decision in ("created", "updated", "cancelled"):
            bucket = self.samples.setdefault(decision, [])
            if len(bucket) < 5:
                bucket.append(record_id)


@dataclass
class ImportReport:
    tenant: str
    plan: bool
    entities: dict[str, EntityCounts] = field(default_factory=lambda: {e: EntityCounts() for e in ENTITIES})
    api_calls: dict[str, int] = field(default_factory=dict)
    cursors: dict[str, str | None] = field(default_factory=dict)

    def total(self, counter: str) -> int:
        return sum(getattr(counts, counter) for counts in self.entities.values())

    @property
    def crm_writes(self) -> int:
        return sum(
            c.created + c.updated + c.cancelled
            for name, c in self.entities.items()
            if name in ("customer", "sale")
        )

    def as_metadata(self) -> dict[str, Any]:
        flat: dict[str, Any] = {f"{counter}": self.total(counter) for counter in COUNTERS}
        for name, counts in self.entities.items():
            for counter in COUNTERS:
                flat[f"{name}.{counter}"] = getattr(counts, counter)
        for connector, calls in self.api_calls.items():
            flat[f"api_calls.{connector}"] = calls
        flat["plan"] = self.plan
        return flat

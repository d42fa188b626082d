"""What an assistance run did (or, in plan mode, would do), and the drift a reconciliation found.

Plain data, shared by the CLI tables, Dagster metadata and the asset check, so every surface reports
the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: drift kinds, in the order they are repaired and reported
DRIFT_KINDS = ("missing_in_sienge", "unlinked_in_crm", "status", "orphaned_in_sienge")


@dataclass
class Drift:
    """Disagreements between the CRM and Sienge found by a reconciliation (before it repaired them).

    - ``missing_in_sienge``: active CRM assistências Sienge does not have (a lost "opened" webhook).
    - ``unlinked_in_crm``: in Sienge, but the CRM record does not show Sienge's id.
    - ``status``: the CRM lags Sienge's status (a lost progress/finish/cancel/delete hook).
    - ``orphaned_in_sienge``: Sienge requests whose CRM record is gone (reported, never repaired).
    Each value lists CRM ids (Sienge ids for orphans); ``details`` says crm -> sienge per status drift.
    """

    missing_in_sienge: list[str] = field(default_factory=list)
    unlinked_in_crm: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    orphaned_in_sienge: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    #: CRM ids Sienge lacks because they cannot be sent (dead-lettered: e.g. an item without minimum
    #: days); known problems with a reason, not webhook losses, so not counted in ``total``
    blocked: dict[str, str] = field(default_factory=dict)
    #: what could not be repaired (e.g. an item without minimum days): CRM id -> reason
    unrepaired: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in DRIFT_KINDS}

    @property
    def total(self) -> int:
        return sum(self.counts().values())

    def ids(self) -> dict[str, list[str]]:
        return {kind: sorted(getattr(self, kind), key=_num) for kind in DRIFT_KINDS}


def _num(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


@dataclass
class AssistanceReport:
    tenant: str
    plan: bool = False
    #: (crm id, sienge id or None in plan mode)
    created: list[tuple[str, str | None]] = field(default_factory=list)
    #: CRM ids whose record got (or would get) Sienge's id written back
    linked: list[str] = field(default_factory=list)
    #: (crm id, from, to): CRM status moves
    updated: list[tuple[str, str, str]] = field(default_factory=list)
    unchanged: int = 0
    #: (record key, reason): dead-lettered (or would be, in plan mode)
    failed: list[tuple[str, str]] = field(default_factory=list)
    events: int = 0
    ignored: int = 0
    drift: Drift | None = None
    api_calls: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        """Dagster run/asset metadata: counts first, then the ids (small lists)."""
        data: dict[str, Any] = {
            "created": len(self.created),
            "linked": len(self.linked),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "failed": len(self.failed),
            "events": self.events,
            "ignored_events": self.ignored,
            "plan": self.plan,
        }
        if self.created:
            data["created_ids"] = ", ".join(f"{c}->{s or '?'}" for c, s in self.created[:50])
        if self.failed:
            data["failed_ids"] = ", ".join(key for key, _ in self.failed[:50])
        if self.drift is not None:
            data["drift_total"] = self.drift.total
            for kind, count in self.drift.counts().items():
                data[f"drift_{kind}"] = count
            data["blocked"] = len(self.drift.blocked)
        for system, calls in self.api_calls.items():
            data[f"api_calls_{system}"] = calls
        return data

"""What a reconciliation found, per drift kind, and what it repaired: one table for every surface.

Plain data, shared by ``ponte reconcile`` (a table, or ``--json``), the Dagster asset's metadata and its
asset check, so each one reports the same rows and counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: drift kinds, in the order they are checked and repaired (an envelope repaired by ``envelope_status``
#: brings its signed PDF home too, so ``signed_pdf_missing`` runs after it)
ENVELOPE_STATUS = "envelope_status"
SIGNED_PDF_MISSING = "signed_pdf_missing"
READY_NOT_SENT = "ready_not_sent"
IMPORT_CONTENT = "import_content"
KINDS = (ENVELOPE_STATUS, SIGNED_PDF_MISSING, READY_NOT_SENT, IMPORT_CONTENT)

#: what each kind means and how it is handled (the CLI's help and docs/reliability.md say the same)
DESCRIPTIONS = {
    ENVELOPE_STATUS: "envelope sent/delivered at Ponte but completed, voided, declined or expired at the "
    "provider; repaired through back-sync's re-read",
    SIGNED_PDF_MISSING: "completed envelope whose stamped signed PDF the CRM reservation does not list; "
    "repaired through back-sync's finalization when Ponte never uploaded it, reported otherwise",
    READY_NOT_SENT: "CRM contract ready to sign (validated, unsigned) that was never sent and has no open "
    "dead letter; reported (sent only when asked: --send-missed)",
    IMPORT_CONTENT: "imported person/reservation whose Sienge-owned fields in the CRM differ from what "
    "Sienge holds; repaired by re-importing that record",
}


@dataclass
class DriftRow:
    """One drifted record: what differs, and whether this run repaired it (or what to do)."""

    kind: str
    tenant: str
    #: the record, as a dead letter names it: ``envelope:12``, ``contract:801``, ``customer:42``
    record: str
    detail: str
    repaired: bool = False
    #: what was done (a repair) or what a person should do (a command), in one line
    action: str = ""
    #: import_content: the CRM fields that differ
    fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DriftReport:
    tenant: str
    dry_run: bool = False
    kinds: tuple[str, ...] = KINDS
    rows: list[DriftRow] = field(default_factory=list)
    #: kind -> why its check could not run (an outside system down): not "no drift"
    errors: dict[str, str] = field(default_factory=dict)
    #: kind -> records looked at
    checked: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, record: str, detail: str, *, action: str = "",
            fields: list[str] | None = None) -> DriftRow:
        row = DriftRow(kind, self.tenant, record, detail, action=action, fields=list(fields or []))
        self.rows.append(row)
        return row

    def of(self, kind: str) -> list[DriftRow]:
        return [row for row in self.rows if row.kind == kind]

    def counts(self) -> dict[str, int]:
        return {kind: len(self.of(kind)) for kind in self.kinds}

    def repaired_counts(self) -> dict[str, int]:
        return {kind: sum(1 for row in self.of(kind) if row.repaired) for kind in self.kinds}

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def unrepaired(self) -> list[DriftRow]:
        return [row for row in self.rows if not row.repaired]

    @property
    def clean(self) -> bool:
        """Nothing left to look at: every drift repaired and every check ran."""
        return not self.unrepaired and not self.errors

    def as_json(self) -> dict[str, Any]:
        """``ponte reconcile --json``: counts per kind, then the rows."""
        return {
            "flow": "reconcile",
            "tenant": self.tenant,
            "dry_run": self.dry_run,
            "kinds": list(self.kinds),
            "counts": self.counts(),
            "repaired": self.repaired_counts(),
            "checked": dict(self.checked),
            "unrepaired": len(self.unrepaired),
            "errors": dict(self.errors),
            "drift": [row.as_dict() for row in self.rows],
        }

    def as_metadata(self) -> dict[str, Any]:
        """Counts as flat metadata (the table itself is the caller's: Dagster's types stay there)."""
        data: dict[str, Any] = {"drift_total": self.total, "unrepaired": len(self.unrepaired),
                                "dry_run": self.dry_run}
        for kind, count in self.counts().items():
            data[f"{kind}_count"] = count
        for kind, count in self.repaired_counts().items():
            data[f"{kind}_repaired"] = count
        for kind, count in self.checked.items():
            data[f"{kind}_checked"] = count
        return data

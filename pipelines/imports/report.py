"""What an import did (or, in plan mode, would do): counts per entity, shown in the CLI and Dagster."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

ENTITIES = ("enterprise", "unit", "customer", "sale")
COUNTERS = ("read", "created", "updated", "unchanged", "cancelled", "failed", "dead_lettered")
#: failures a run logs one by one per reason; the rest are counted, and summarised when the run ends
LOGGED_PER_REASON = 3
#: reasons a summary shows before it sums up the rest
REASONS_SHOWN = 15


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
    #: reason code (``pipelines.store.deadletters.reason_code``: kind, field, message without its
    #: values) -> records this run dead-lettered with it
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)

    def note_dead_letter(self, reason: str) -> None:
        self.dead_letters_by_reason[reason] = self.dead_letters_by_reason.get(reason, 0) + 1

    def reasons(self) -> list[tuple[str, int]]:
        """(reason, dead letters) of this run, most frequent first."""
        return sorted(self.dead_letters_by_reason.items(), key=lambda item: (-item[1], item[0]))

    def shown_reasons(self) -> tuple[list[tuple[str, int]], int, int]:
        """The reasons a summary lists, and how many other reasons and letters it sums up."""
        reasons = self.reasons()
        rest = reasons[REASONS_SHOWN:]
        return reasons[:REASONS_SHOWN], len(rest), sum(count for _reason, count in rest)

    def list_command(self, reason: str | None = None) -> str:
        """The command that shows this tenant's import dead letters: by reason, or those of ``reason``."""
        base = f"ponte deadletter list --tenant {shlex.quote(self.tenant)} --flow import"
        return f"{base} --reason {shlex.quote(reason)}" if reason else f"{base} --by-reason"

    def replay_command(self) -> str:
        return f"ponte deadletter replay --all --tenant {shlex.quote(self.tenant)} --flow import"

    def reasons_markdown(self) -> str:
        """Dead letters by reason as a Markdown table, with the commands to inspect and replay them."""
        shown, others, letters = self.shown_reasons()
        lines = ["| reason | dead letters |", "|---|---|"]
        for reason, count in shown:
            cell = reason.replace("`", "'").replace("|", "\\|")
            lines.append(f"| `{cell}` | {count} |")
        if others:
            lines.append(f"| {others} other reason(s) | {letters} |")
        lines += [
            "",
            f"Inspect: `{self.list_command()}` (one reason: `--reason '<part of it>'`)",
            "",
            f"Replay after the fix: `{self.replay_command()}`",
        ]
        return "\n".join(lines)

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

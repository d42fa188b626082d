"""The demo's assistance round trip: CRM → Sienge, Sienge's progress back to the CRM, reconciliation."""

from __future__ import annotations

from typing import Any

from pipelines.assistance.demo import round_trip
from schemas.tenant import load_tenant


def run(*, store: Any, sandbox: Any, instance: Any, console: Any) -> None:
    with console.status("assistance round trip: CRM → Sienge → CRM…"):
        summary = round_trip(store, load_tenant("demo"), sandbox)
    console.print(
        f"[green]✓[/] assistance {summary['crm_id']} opened in the CRM became Sienge {summary['sienge_id']} "
        f"({summary['items_in_sienge']} items, {summary['attachments_in_sienge']} attachment(s)); "
        f"CRM shows the Sienge id: {summary['crm_shows_sienge_id']}"
    )
    for step in summary["steps"]:
        console.print(
            f"  Sienge {step['sienge']:<11} → CRM situation {step['crm_situation']!r}"
            f"{'' if step['changed'] else ' (nothing changed)'}"
        )
    drift = summary["reconciliation_drift"]
    total = sum(len(v) for v in drift.values()) if isinstance(drift, dict) else 0
    console.print(f"  reconciliation repaired {total} drifted request(s); blocked: {summary['blocked'] or 'none'}")

"""`ponte sync assistance`: CV CRM ↔ Sienge technical assistance for one tenant, now.

Loaded by ``orchestration/cli/sync.py`` (``register(app)``); the same code path as the Dagster asset.
"""

from __future__ import annotations

import typer
from rich.table import Table

from orchestration.cli.console import EXIT_FAILURES, console, emit_json, friendly_errors


def print_assistance_report(report: object) -> None:
    """Created / updated / failed tables, then the drift a reconciliation found (counts and ids)."""
    from pipelines.assistance import DRIFT_KINDS, AssistanceReport

    assert isinstance(report, AssistanceReport)
    suffix = " (plan: nothing written)" if report.plan else ""
    verb = "would " if report.plan else ""
    summary = Table("created", "linked", "updated", "unchanged", "failed", "events", "ignored",
                    title=f"assistance {report.tenant}{suffix}")
    summary.add_row(*(str(v) for v in (len(report.created), len(report.linked), len(report.updated),
                                        report.unchanged, len(report.failed), report.events, report.ignored)))
    console.print(summary)
    if report.created:
        table = Table("CRM id", "Sienge id", title=f"{verb}create in Sienge")
        for crm_id, sienge_id in report.created:
            table.add_row(crm_id, sienge_id or "—")
        console.print(table)
    if report.updated:
        table = Table("CRM id", "from", "to", title=f"{verb}update in CV CRM")
        for crm_id, before, after in report.updated:
            table.add_row(crm_id, before, after)
        console.print(table)
    if report.failed:
        table = Table("record", "reason", title="failed (dead letters)" if not report.plan else "would fail")
        for key, reason in report.failed:
            table.add_row(key, reason)
        console.print(table)
    if report.drift is not None:
        drift = report.drift
        table = Table("drift", "count", "ids", title=f"drift found: {drift.total}")
        ids = drift.ids()
        for kind in DRIFT_KINDS:
            table.add_row(kind, str(len(ids[kind])), ", ".join(ids[kind]) or "—")
        table.add_row("blocked (not drift)", str(len(drift.blocked)), ", ".join(sorted(drift.blocked)) or "—")
        console.print(table)
        for crm_id, reason in drift.unrepaired.items():
            console.print(f"[yellow]not repaired[/] {crm_id}: {reason}")
    calls = ", ".join(f"{k} {v}" for k, v in report.api_calls.items())
    console.print(f"API calls: {calls}")


def assistance_report_json(report: object) -> dict[str, object]:
    """What `sync assistance --json` prints: the counts and the ids behind them (masked on output)."""
    from pipelines.assistance import AssistanceReport

    assert isinstance(report, AssistanceReport)
    drift = report.drift
    return {
        "flow": "assistance",
        "tenant": report.tenant,
        "plan": report.plan,
        "counts": {"created": len(report.created), "linked": len(report.linked), "updated": len(report.updated),
                   "unchanged": report.unchanged, "failed": len(report.failed), "events": report.events,
                   "ignored": report.ignored},
        "created": [{"crm_id": crm, "sienge_id": sienge} for crm, sienge in report.created],
        "linked": list(report.linked),
        "updated": [{"crm_id": crm, "from": before, "to": after} for crm, before, after in report.updated],
        "failed": [{"record_key": key, "reason": reason} for key, reason in report.failed],
        "drift": None if drift is None else {
            "total": drift.total, "counts": drift.counts(), "ids": drift.ids(), "details": drift.details,
            "blocked": drift.blocked, "unrepaired": drift.unrepaired,
        },
        "api_calls": dict(report.api_calls),
    }


def register(app: typer.Typer) -> None:
    @app.command("assistance")
    @friendly_errors
    def assistance_cmd(
        tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
        reconcile: bool = typer.Option(
            False, "--reconcile", help="Compare both sides, repair what webhooks missed, report the drift."
        ),
        plan: bool = typer.Option(False, "--plan", help="Dry run: show what would be created/updated."),
        no_poll: bool = typer.Option(
            False, "--no-poll", help="Only process stored webhooks (do not read the CRM for unsent requests)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the run's report as JSON (masked)."),
    ) -> None:
        """Send new CRM assistências to Sienge and apply Sienge's progress/finish/cancel/delete.

        Default: the stored webhooks, then a poll of the CRM for requests never sent. Items without a
        minimum completion time stop their request with an error (see `ponte deadletter list`). Exits 1
        when some requests failed.
        """
        from pipelines.assistance import AssistanceRequest, run_assistance
        from pipelines.connections import open_connector
        from pipelines.store import open_store
        from schemas import load_tenant

        config = load_tenant(tenant)
        store = open_store()
        request = AssistanceRequest(events=True, poll=not no_poll, reconcile=reconcile, plan=plan)
        with (
            open_connector(config, "sienge", store=store) as sienge,
            open_connector(config, "cvcrm", store=store) as cvcrm,
        ):
            report = run_assistance(store, config, sienge, cvcrm, request)
        if as_json:
            emit_json(assistance_report_json(report))
        else:
            print_assistance_report(report)
        if report.failed and not plan:
            if not as_json:
                console.print("[yellow]some requests failed: see `ponte deadletter list`[/]")
            raise typer.Exit(EXIT_FAILURES)

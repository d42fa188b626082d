"""`ponte reconcile`: compare one tenant's signing and import state with the providers' and the CRM's,
repair what is safe and print the drift (a table, or `--json`), with the same code as the Dagster job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import EXIT_FAILURES, console, emit_json, friendly_errors

if TYPE_CHECKING:
    from pipelines.reconcile.report import DriftReport


def register(app: typer.Typer) -> None:
    @app.command("reconcile")
    @friendly_errors
    def reconcile_cmd(
        tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
        kinds: list[str] = typer.Option(
            None, "--kind", "-k",
            help="Only this drift kind (repeatable): envelope_status, signed_pdf_missing, ready_not_sent, "
            "import_content. Default: all.",
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Report the drift; repair nothing, send nothing."),
        send_missed: bool = typer.Option(
            None, "--send-missed/--no-send-missed",
            help="Send ready contracts nobody sent, through dispatch (default: report them only).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the drift table and counts as JSON (masked)."),
    ) -> None:
        """Find and repair drift between Ponte, the signing providers and CV CRM (assistance: `ponte sync
        assistance --reconcile`).

        Kinds: envelope_status (provider finished an envelope Ponte has as open: applied through
        back-sync), signed_pdf_missing (completed, signed PDF not on the CRM reservation: uploaded once
        through back-sync when Ponte never did, reported otherwise), ready_not_sent (validated CRM
        contract never sent: reported), import_content (CRM person/reservation differs from Sienge on
        Sienge-owned fields: that record re-imported). Exits 1 when drift is left unrepaired or a check
        could not run.
        """
        from pipelines.connections import open_connector
        from pipelines.reconcile.runner import ReconcileRequest, kinds_of, run_reconcile
        from pipelines.store import open_store
        from schemas import load_tenant

        config = load_tenant(tenant)
        wanted = kinds_of(kinds)
        store = open_store()

        def opener(key: str):
            return open_connector(config, key, store=store)

        report = run_reconcile(store, config, opener,
                               ReconcileRequest(kinds=wanted, dry_run=dry_run, send_missed=send_missed))
        if as_json:
            emit_json(report.as_json())
        else:
            _print(report)
        if not report.clean:
            raise typer.Exit(EXIT_FAILURES)


def _print(report: DriftReport) -> None:
    counts = report.counts()
    repaired = report.repaired_counts()
    head = f"reconcile {report.tenant}" + (" (dry run: nothing repaired)" if report.dry_run else "")
    console.print(head + ": " + ", ".join(f"{kind} {counts[kind]} ({repaired[kind]} repaired)" for kind in counts))
    if report.rows:
        table = Table("kind", "record", "detail", "repaired", "action / command", show_lines=False)
        for row in report.rows:
            table.add_row(row.kind, row.record, escape(row.detail), "yes" if row.repaired else "no",
                          escape(row.action))
        console.print(table)
    for kind, error in report.errors.items():
        console.print(f"[yellow]{kind}: {escape(error)}[/]")
    if not report.rows and not report.errors:
        console.print("[green]no drift[/]")

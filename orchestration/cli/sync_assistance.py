"""`ponte sync assistance`: CV CRM ↔ Sienge technical assistance for one tenant, now.

Loaded by ``orchestration/cli/sync.py`` (``register(app)``); the same code path as the Dagster asset.
With a Dagster instance configured this is a run of the ``assistance_sync_job`` job (see
:mod:`orchestration.cli.sync_dagster`); its report is rebuilt from the run's two materializations.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from orchestration.cli.console import EXIT_FAILURES, console, emit_json, friendly_errors
from orchestration.cli.sync_dagster import dagster_instance


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


def _assistance_in_dagster(instance: Any, tenant: str, reconcile: bool, poll: bool, plan: bool, *,
                           quiet: bool) -> tuple[Any, str]:
    """The assistance sync as a run of ``assistance_sync_job`` for ``tenant``: its report, rebuilt from
    the run's materializations, and the run's id."""
    from orchestration.assistance.assets import (
        STEP,
        TO_CRM,
        TO_SIENGE,
        AssistanceConfig,
        report_from_metadata,
    )
    from orchestration.cli.sync_dagster import materializations, run_job
    from orchestration.translator import key

    mode = AssistanceConfig.mode_of(reconcile=reconcile, poll=poll)
    result = run_job(instance, "assistance_sync_job", tenant, STEP, {"mode": mode, "plan": plan},
                     {"ponte/mode": mode}, quiet=quiet)
    metadata = materializations(result, STEP)
    by_entity = {entity: metadata.get(key(entity).to_user_string(), {}) for entity in (TO_SIENGE, TO_CRM)}
    return report_from_metadata(tenant, by_entity), result.run_id


def _report_moved(report: Any) -> None:
    """--local with a Dagster instance: each direction that wrote something, as a runless materialization."""
    from orchestration.runless import configured, report_moved

    if report.plan or not configured():
        return
    from orchestration.assistance.assets import TO_CRM, TO_SIENGE

    moved: dict[str, dict[str, Any]] = {}
    if report.created:
        moved[TO_SIENGE] = report.as_metadata()
    if report.linked or report.updated:
        moved[TO_CRM] = report.as_metadata()
    report_moved(report.tenant, moved)


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
        local: bool = typer.Option(False, "--local", help="Run here, not as a Dagster run."),
        dagster: bool = typer.Option(False, "--dagster", help="Run as a Dagster run (needs DAGSTER_HOME)."),
    ) -> None:
        """Send new CRM assistências to Sienge and apply Sienge's progress/finish/cancel/delete.

        Default: the stored webhooks, then a poll of the CRM for requests never sent. Items without a
        minimum completion time stop their request with an error (see `ponte deadletter list`). With
        DAGSTER_HOME set this is a run of the assistance_sync_job job (in the UI's run history); --local
        runs it here and, with DAGSTER_HOME, records what moved on the assistance assets. Exits 1 when
        some requests failed.
        """
        from schemas import load_tenant

        instance = dagster_instance(local, dagster)
        config = load_tenant(tenant)  # an unknown or broken tenant file: its error, before any run
        run_id: str | None = None
        if instance is not None:
            report, run_id = _assistance_in_dagster(instance, config.id, reconcile, not no_poll, plan,
                                                    quiet=as_json)
        else:
            from pipelines.assistance import AssistanceRequest, run_assistance
            from pipelines.connections import open_connector
            from pipelines.store import open_store

            store = open_store()
            request = AssistanceRequest(events=True, poll=not no_poll, reconcile=reconcile, plan=plan)
            with (
                open_connector(config, "sienge", store=store) as sienge,
                open_connector(config, "cvcrm", store=store) as cvcrm,
            ):
                report = run_assistance(store, config, sienge, cvcrm, request)
            _report_moved(report)
        if as_json:
            emit_json({**assistance_report_json(report), **({"dagster_run_id": run_id} if run_id else {})})
        else:
            print_assistance_report(report)
        if report.failed and not plan:
            if not as_json:
                console.print("[yellow]some requests failed: see `ponte deadletter list`[/]")
            raise typer.Exit(EXIT_FAILURES)

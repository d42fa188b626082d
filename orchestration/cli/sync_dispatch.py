"""`ponte sync dispatch`: send contracts for signature now (one, several, or every ready one).

With a Dagster instance configured this is a run of the ``envelope_dispatch`` job (see
:mod:`orchestration.cli.sync_dagster`); the table and ``--json`` are rebuilt from the run's
``esign/envelopes`` materialization, whose ``contracts`` table holds each contract's outcome.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import typer
from rich.table import Table

from orchestration.cli.console import (
    EXIT_FAILURES,
    RecordProgress,
    console,
    emit_json,
    err_console,
    fail,
    friendly_errors,
)
from orchestration.cli.sync_dagster import dagster_instance
from ponte import redact


def _dispatch_in_dagster(instance: Any, tenant: str, contracts: list[str], all_ready: bool, template: str | None,
                         terms: str, plan: bool, resend: bool, *, quiet: bool) -> tuple[Any, str]:
    """The dispatch as a run of ``envelope_dispatch`` for ``tenant``: its report, rebuilt from the run's
    materialization, and the run's id."""
    from orchestration.cli.sync_dagster import materializations, run_job
    from orchestration.dispatch.assets import STEP, report_from_metadata
    from orchestration.translator import key

    run_config: dict[str, Any] = {"contracts": contracts, "all_ready": all_ready or not contracts,
                                  "terms": terms, "plan": plan, "resend": resend}
    if template:
        run_config["template"] = template
    named = len(contracts)
    tags = {"ponte/mode": "ids" if named else "ready", "ponte/ids": str(named) if named else ""}
    result = run_job(instance, "envelope_dispatch", tenant, STEP, run_config, tags, quiet=quiet)
    metadata = materializations(result, STEP).get(key("envelopes").to_user_string(), {})
    return report_from_metadata(tenant, plan, metadata), result.run_id


def _report_moved(report: Any) -> None:
    """--local with a Dagster instance: the envelopes sent (or found) as a runless materialization."""
    from orchestration.runless import configured, report_moved

    if report.plan or not (report.count("sent") or report.count("found")) or not configured():
        return
    metadata = dict(report.as_metadata())
    for connector, calls in report.api_calls.items():
        metadata[f"api_calls.{connector}"] = calls
    report_moved(report.tenant, {"envelopes": metadata})


def _print_report(report: Any) -> None:
    """The run's table (contract, result, envelope, signers, detail), the package and what to do next."""
    title = f"dispatch {report.tenant}" + (" (plan: nothing sent)" if report.plan else "")
    table = Table("contract", "result", "envelope", "signers (order:role/channel)", "detail", title=title)
    for o in report.outcomes:
        signers = ", ".join(f"{s['routing_order']}:{s['role']}/{s['channel']}" for s in o.signers)
        table.add_row(o.contract_id, o.result, o.provider_envelope_id or "", signers, redact(o.reason or ""))
    console.print(table)
    if report.not_shown:
        console.print(f"… and {report.not_shown} more contracts not listed (the Dagster run keeps "
                      f"{len(report.outcomes)} rows, those needing attention first; the counts are "
                      f"complete): `ponte envelopes list --tenant {report.tenant}` and "
                      f"`ponte deadletter list --tenant {report.tenant}` list them all")
    pkg = report.package
    console.print(f"package {pkg.get('package')}: {pkg.get('used')} used, {pkg.get('remaining')} remaining")
    if report.count("dead_lettered"):
        console.print("[yellow]some contracts failed: see `ponte deadletter list`[/]")
    if report.count("deferred"):
        console.print("[yellow]some contracts were deferred (an outside system failed for now): run the "
                      "same command again later, or let the schedule pick them up; nothing is sent twice[/]")


def register(app: typer.Typer) -> None:
    @app.command("dispatch")
    @friendly_errors
    def dispatch_cmd(
        tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
        contracts: list[str] = typer.Option(
            None, "--contract", help="CV CRM contract id (or RESERVATION:CONTRACT); repeatable."
        ),
        all_ready: bool = typer.Option(False, "--all-ready", help="Every validated, unsigned contract."),
        template: str = typer.Option(None, "--template", help="Render this template instead of the CRM's PDF."),
        terms: str = typer.Option("none", "--terms", help="none | with_contract | alone"),
        plan: bool = typer.Option(False, "--plan", help="Dry run: show the envelopes that would be sent."),
        resend: bool = typer.Option(
            False, "--resend",
            help="Send the named contracts again when their envelope was refused, expired or voided (a new "
            "envelope keyed with a resend counter; nothing is voided). A live or signed one is left as it is.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the run's outcomes and counts as JSON (masked)."),
        local: bool = typer.Option(False, "--local", help="Run here, not as a Dagster run (progress bar)."),
        dagster: bool = typer.Option(False, "--dagster", help="Run as a Dagster run (needs DAGSTER_HOME)."),
    ) -> None:
        """Send contracts as envelopes to the tenant's signing provider, exactly once each.

        Bad contracts (a signer without CPF, e-mail or phone) become dead letters and the batch goes
        on; an unverified manager e-mail or a used-up package stops the run with the reason. With
        DAGSTER_HOME set this is a run of the envelope_dispatch job (in the UI's run history); --local
        runs it here and, with DAGSTER_HOME, records the envelopes sent on the envelopes asset. Exits 1
        when some contracts were dead-lettered.
        """
        if not contracts and not all_ready:
            fail("say what to send: --contract ID (repeatable) or --all-ready")
        if resend and (all_ready or not contracts):
            fail("--resend sends named contracts again: give --contract ID (repeatable), not --all-ready")
        if terms not in ("none", "with_contract", "alone"):
            fail(f"--terms {terms!r}: use none, with_contract or alone")
        from schemas import load_tenant

        named = list(contracts or [])
        instance = dagster_instance(local, dagster)
        config = load_tenant(tenant)  # an unknown or broken tenant file: its error, before any run
        run_id: str | None = None
        if instance is not None:
            report, run_id = _dispatch_in_dagster(instance, config.id, named, all_ready, template, terms, plan,
                                                  resend, quiet=as_json)
        else:
            from pipelines.dispatch.flow import DispatchRequest, run_dispatch
            from pipelines.store import open_store

            store = open_store()
            request = DispatchRequest(contracts=named, all_ready=all_ready, plan=plan,
                                      template=template, terms=terms, resend=resend)  # type: ignore[arg-type]
            with RecordProgress(err_console if as_json else console, disable=as_json, unit="contracts") as bar:
                bar.task("dispatch", total=len(named) if named and not all_ready else None)
                report = run_dispatch(store, config, request,
                                      progress=lambda _cid, _result: bar.advance("dispatch"))
            _report_moved(report)
        failed = report.count("dead_lettered") and not report.plan
        if as_json:
            emit_json({"flow": "dispatch", "tenant": report.tenant, "plan": report.plan,
                       "counts": report.as_metadata(), "stopped": report.stopped, "package": report.package,
                       "api_calls": report.api_calls, "outcomes": [asdict(o) for o in report.outcomes],
                       **({"outcomes_not_shown": report.not_shown} if report.not_shown else {}),
                       **({"dagster_run_id": run_id} if run_id else {})})
            if failed:
                raise typer.Exit(EXIT_FAILURES)
            return
        _print_report(report)
        if failed:
            raise typer.Exit(EXIT_FAILURES)

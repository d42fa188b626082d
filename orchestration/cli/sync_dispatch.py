"""`ponte sync dispatch`: send contracts for signature now (one, several, or every ready one)."""

from __future__ import annotations

from dataclasses import asdict

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
    ) -> None:
        """Send contracts as envelopes to the tenant's signing provider, exactly once each.

        Bad contracts (a signer without CPF, e-mail or phone) become dead letters and the batch goes
        on; an unverified manager e-mail or a used-up package stops the run with the reason. Exits 1
        when some contracts were dead-lettered.
        """
        from pipelines.dispatch.flow import DispatchRequest, run_dispatch
        from pipelines.store import open_store
        from schemas import load_tenant

        if not contracts and not all_ready:
            fail("say what to send: --contract ID (repeatable) or --all-ready")
        if resend and (all_ready or not contracts):
            fail("--resend sends named contracts again: give --contract ID (repeatable), not --all-ready")
        if terms not in ("none", "with_contract", "alone"):
            fail(f"--terms {terms!r}: use none, with_contract or alone")
        config = load_tenant(tenant)
        store = open_store()
        request = DispatchRequest(contracts=list(contracts or []), all_ready=all_ready, plan=plan,
                                  template=template, terms=terms, resend=resend)  # type: ignore[arg-type]
        with RecordProgress(err_console if as_json else console, disable=as_json, unit="contracts") as bar:
            bar.task("dispatch", total=len(contracts) if contracts and not all_ready else None)
            report = run_dispatch(store, config, request, progress=lambda _cid, _result: bar.advance("dispatch"))
        failed = report.count("dead_lettered") and not report.plan
        if as_json:
            emit_json({"flow": "dispatch", "tenant": report.tenant, "plan": report.plan,
                       "counts": report.as_metadata(), "stopped": report.stopped, "package": report.package,
                       "api_calls": report.api_calls, "outcomes": [asdict(o) for o in report.outcomes]})
            if failed:
                raise typer.Exit(EXIT_FAILURES)
            return
        title = f"dispatch {report.tenant}" + (" (plan: nothing sent)" if report.plan else "")
        table = Table("contract", "result", "envelope", "signers (order:role/channel)", "detail", title=title)
        for o in report.outcomes:
            signers = ", ".join(f"{s['routing_order']}:{s['role']}/{s['channel']}" for s in o.signers)
            table.add_row(o.contract_id, o.result, o.provider_envelope_id or "", signers, o.reason or "")
        console.print(table)
        pkg = report.package
        console.print(f"package {pkg.get('package')}: {pkg.get('used')} used, {pkg.get('remaining')} remaining")
        if report.count("dead_lettered"):
            console.print("[yellow]some contracts failed: see `ponte deadletter list`[/]")
        if report.count("deferred"):
            console.print("[yellow]some contracts were deferred (an outside system failed for now): run the "
                          "same command again later, or let the schedule pick them up; nothing is sent twice[/]")
        if failed:
            raise typer.Exit(EXIT_FAILURES)

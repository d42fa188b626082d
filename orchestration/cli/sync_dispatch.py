"""`ponte sync dispatch`: send contracts for signature now (one, several, or every ready one)."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestration.cli.console import console, fail, friendly_errors


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
    ) -> None:
        """Send contracts as envelopes to the tenant's signing provider, exactly once each.

        Bad contracts (a signer without CPF, e-mail or phone) become dead letters and the batch goes
        on; an unverified manager e-mail or a used-up package stops the run with the reason.
        """
        from pipelines.dispatch.flow import DispatchRequest, run_dispatch
        from pipelines.store import open_store
        from schemas.tenant import load_tenant

        if not contracts and not all_ready:
            fail("say what to send: --contract ID (repeatable) or --all-ready")
        if terms not in ("none", "with_contract", "alone"):
            fail(f"--terms {terms!r}: use none, with_contract or alone")
        config = load_tenant(tenant)
        store = open_store()
        request = DispatchRequest(contracts=list(contracts or []), all_ready=all_ready, plan=plan,
                                  template=template, terms=terms)  # type: ignore[arg-type]
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} contracts"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("dispatch", total=len(contracts) if contracts and not all_ready else None)
            report = run_dispatch(store, config, request, progress=lambda _cid, _result: bar.advance(task))
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

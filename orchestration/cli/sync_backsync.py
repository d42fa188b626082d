"""`ponte sync backsync`: drain signing webhooks now, poll quiet envelopes, or "sync signature" of one
contract, with the same code as the Dagster job."""

from __future__ import annotations

from datetime import timedelta

import typer

from orchestration.cli.console import EXIT_FAILURES, console, emit_json, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command("backsync")
    @friendly_errors
    def backsync_cmd(
        tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
        contract: str = typer.Option(None, "--contract", help="Sync signature of one CRM contract (idreservacontrato)."),
        poll: bool = typer.Option(False, "--poll", help="Re-read envelopes with no news (lost webhooks)."),
        quiet_minutes: int = typer.Option(30, "--quiet-minutes", help="--poll: no news for this long."),
        as_json: bool = typer.Option(False, "--json", help="Print the run's counts as JSON (masked)."),
    ) -> None:
        """Bring signing status back from DocuSign/Clicksign into Ponte and the CRM.

        Default: process the stored webhooks. --contract X asks the provider about one contract (says
        "still pending" when nothing is signed yet); --poll re-reads quiet envelopes. Exits 1 when some
        items failed (dead letters).
        """
        from pipelines.backsync.flow import drain_inbox, poll_stale, sync_contract
        from pipelines.connections import open_connector
        from pipelines.store import open_store
        from schemas.tenant import load_tenant

        if contract and poll:
            fail("choose --contract or --poll, not both")
        config = load_tenant(tenant)
        store = open_store()

        def opener(key: str):
            return open_connector(config, key, store=store)

        if contract:
            result = sync_contract(store, config, contract, opener)
            if as_json:
                emit_json({"flow": "backsync", "tenant": config.id, "contract": contract,
                           "pending": bool(result.pending), "message": result.message})
                return
            colour = "yellow" if result.pending else "green"
            console.print(f"[{colour}]{result.message}[/]")
            return
        if poll:
            report = poll_stale(store, config, opener, quiet_for=timedelta(minutes=quiet_minutes))
        else:
            report = drain_inbox(store, config, opener)
            while True:
                part = drain_inbox(store, config, opener)
                if part.events == 0:
                    break
                for name in ("events", "applied", "unchanged", "ignored", "unknown", "failed", "notifications"):
                    setattr(report, name, getattr(report, name) + getattr(part, name))
                report.completed += part.completed
                report.statuses.update(part.statuses)
        if as_json:
            emit_json({"flow": "backsync", "tenant": config.id, "mode": "poll" if poll else "webhooks",
                       "counts": {k: v for k, v in report.as_metadata().items() if isinstance(v, int)},
                       "completed": list(report.completed), "statuses": dict(report.statuses)})
            if report.failed:
                raise typer.Exit(EXIT_FAILURES)
            return
        counts = ", ".join(f"{k} {v}" for k, v in report.as_metadata().items() if isinstance(v, int))
        console.print(f"back-sync {config.id}: {counts}")
        for contract_id in report.completed:
            console.print(f"[green]contract {contract_id}: signed PDF stamped and uploaded to the CRM[/]")
        if report.failed:
            console.print("[yellow]some items failed: see `ponte deadletter list`[/]")
            raise typer.Exit(EXIT_FAILURES)

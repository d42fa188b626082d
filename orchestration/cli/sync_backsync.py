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
        local: bool = typer.Option(False, "--local", help="Run here, not as a Dagster run."),
        dagster: bool = typer.Option(False, "--dagster", help="Run as a Dagster run (needs DAGSTER_HOME)."),
    ) -> None:
        """Bring signing status back from DocuSign/Clicksign into Ponte and the CRM.

        Default: process the stored webhooks. --contract X asks the provider about one contract (says
        "still pending" when nothing is signed yet); --poll re-reads quiet envelopes. With DAGSTER_HOME
        set this is a run of the signature_backsync job (in the UI's run history); --local runs it here
        and, with DAGSTER_HOME, records what moved on the signed-documents asset. Exits 1 when some
        items failed (dead letters).
        """
        from pipelines.backsync.flow import drain_inbox, poll_stale, sync_contract
        from pipelines.connections import open_connector
        from pipelines.store import open_store
        from schemas import load_tenant

        if contract and poll:
            fail("choose --contract or --poll, not both")
        from orchestration.cli.sync_dagster import dagster_instance

        instance = dagster_instance(local, dagster)
        if instance is not None:
            _backsync_in_dagster(instance, tenant, contract, poll, quiet_minutes, as_json)
            return
        config = load_tenant(tenant)
        store = open_store()

        def opener(key: str):
            return open_connector(config, key, store=store)

        if contract:
            result = sync_contract(store, config, contract, opener)
            if local:  # what this contract's sync moved, recorded runless when an instance is configured
                from orchestration.backsync.defs import report_backsync

                report_backsync(None, config.id, result.report, "contract")
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
        if local:  # with an instance configured, what moved is recorded runless (never fails the sync)
            from orchestration.backsync.defs import report_backsync

            report_backsync(None, config.id, report, "poll" if poll else "inbox")
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


def _backsync_in_dagster(instance: object, tenant: str, contract: str | None, poll: bool, quiet_minutes: int,
                         as_json: bool) -> None:
    """The back-sync as a run of ``signature_backsync`` for ``tenant`` (tagged ``ponte/source: cli``)."""
    from orchestration.cli.sync_dagster import run_job

    mode = "contract" if contract else "poll" if poll else "inbox"
    run_config: dict[str, object] = {"mode": mode}
    if contract:
        run_config["contract"] = contract
    if poll:
        run_config["quiet_minutes"] = quiet_minutes
    result = run_job(instance, "signature_backsync", tenant, "backsync", run_config, {"ponte/mode": mode},
                     quiet=as_json)
    counts = result.output_for_node("backsync")
    if contract:
        outputs = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
        message = outputs[0].event_specific_data.metadata["message"].value if outputs else ""
        if as_json:
            emit_json({"flow": "backsync", "tenant": tenant, "contract": contract, "message": message,
                       "dagster_run_id": result.run_id})
        else:
            console.print(message)
        return
    if as_json:
        emit_json({"flow": "backsync", "tenant": tenant, "mode": "poll" if poll else "webhooks",
                   "counts": {k: v for k, v in counts.items() if isinstance(v, int)},
                   "completed": list(counts["completed"]), "statuses": dict(counts["statuses"]),
                   "dagster_run_id": result.run_id})
    else:
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if isinstance(v, int))
        console.print(f"back-sync {tenant}: {shown}")
        for contract_id in counts["completed"]:
            console.print(f"[green]contract {contract_id}: signed PDF stamped and uploaded to the CRM[/]")
    if counts.get("failed"):
        if not as_json:
            console.print("[yellow]some items failed: see `ponte deadletter list`[/]")
        raise typer.Exit(EXIT_FAILURES)

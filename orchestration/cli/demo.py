"""`ponte demo`: the main job end to end on the embedded default (SQLite + sandbox), through Dagster.

Starts the sandbox on the ports tenants/demo.yaml points at, runs the customer/sale import as a Dagster
run (stored under .ponte/dagster, so `make ui` shows it), prints what happened, runs it again to show
an unchanged re-run writes nothing, then runs each other flow that is built (dispatch, back-sync,
assistance). The sandbox is only ever imported here, in the CLI, never by production code.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from typing import Any

import typer
from rich.table import Table

from orchestration.cli.console import console, fail, friendly_errors
from orchestration.cli.validate import run_checks
from pipelines.store import open_store
from ponte import redact, settings

PORT_BASE = 18101
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IMPORT_COUNTERS = ("read", "created", "updated", "unchanged", "cancelled", "failed", "dead_lettered")


def _ports_free(base: int, count: int = 8) -> list[int]:
    busy = []
    for port in range(base, base + count):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def _dagster_instance() -> Any:
    from dagster import DagsterInstance

    home = settings.home() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.get()


def _import_metadata(result: Any) -> dict[str, Any]:
    """The import's counts per entity (``customer.created``...) and the run's API calls, from the one
    materialization each entity's asset reported."""
    from orchestration.imports.assets import IMPORT_ENTITIES
    from orchestration.translator import translator

    keys = {translator().get_asset_key(e): e.flow_entity for e in IMPORT_ENTITIES}
    meta: dict[str, Any] = {}
    for event in result.asset_materializations_for_node("crm_customers_and_sales"):
        entity = keys.get(event.asset_key)
        for key, value in event.metadata.items():
            meta[key if key.startswith("api_calls.") or entity is None else f"{entity}.{key}"] = value.value
    return meta


def _import_table(title: str, meta: dict[str, Any]) -> Table:
    table = Table(*("entity", *IMPORT_COUNTERS), title=title)
    for entity in ("enterprise", "unit", "customer", "sale"):
        table.add_row(entity, *(str(meta.get(f"{entity}.{c}", 0)) for c in IMPORT_COUNTERS))
    return table


def _dead_letter_table(store: Any) -> Table | None:
    from pipelines.store import deadletters

    groups = deadletters.by_reason(store, tenant="demo", flow="import")
    if not groups:
        return None
    table = Table("records", "reason", "example", title="import dead letters by reason (fix at the source)")
    for group in groups:
        table.add_row(str(group.count), redact(group.reason), group.example_record)
    return table


def run_demo(customers: int, profile: str = "realistic") -> None:
    from connectors.sandbox import start_sandbox
    from orchestration.definitions import defs
    from orchestration.partitions import ensure_tenant_partitions

    if logging.getLogger().level > logging.DEBUG:  # the tables tell the story; -v shows every log line
        logging.getLogger().setLevel(logging.WARNING)
    checks = run_checks()
    bad = [c for c in checks if c.error]
    for check in bad:
        console.print(f"[red]✗[/] {check.kind} {check.item}: {check.error}")
    if bad:
        raise typer.Exit(1)
    console.print(
        f"[green]✓[/] configuration valid ({len(checks)} checks: tenants, connector specs, mappings, schemas)"
    )
    store = open_store()
    console.print(f"[green]✓[/] state store ready ({store.dialect}, revision {store.current_revision()})")
    busy = _ports_free(PORT_BASE)
    if busy:
        fail(f"ports {busy} are in use (is `ponte sandbox up` or another demo running?); stop it and retry")
    instance = _dagster_instance()
    ensure_tenant_partitions(instance, ["demo"])  # the runs below target the demo partition
    job = defs.resolve_job_def("customer_sale_import")
    with console.status("starting the sandbox…"):
        sandbox = start_sandbox(customers=customers, port_base=PORT_BASE, profile=profile)
    try:
        console.print(
            f"[green]✓[/] sandbox up: Sienge {sandbox.urls['sienge']}, CV CRM {sandbox.urls['cvcrm']} "
            f"({customers} customers, {profile} data; real rate limits on: Ponte paces itself)"
        )
        with console.status("importing Sienge → CV CRM through Dagster (run 1)…"):
            first = job.execute_in_process(
                partition_key="demo", instance=instance, raise_on_error=False, run_config=QUIET
            )
        if not first.success:
            fail("the import run failed; open `make ui` and look at run " + first.run_id)
        meta = _import_metadata(first)
        console.print(_import_table(f"import run {first.run_id[:8]}", meta))
        console.print(
            f"API calls: Sienge {meta.get('api_calls.sienge')}, CV CRM {meta.get('api_calls.cvcrm')}; "
            f"CRM now holds {len(sandbox.state.cvcrm.pessoas)} people, {len(sandbox.state.cvcrm.reservas)} reservations"
        )
        letters = _dead_letter_table(store)
        if letters is not None:
            console.print(letters)
            console.print(
                "records with dirty data wait as dead letters, nothing else stops: see one with "
                "`ponte deadletter list --tenant demo --flow import --by-reason` and `ponte deadletter show ID`, "
                "fix it in Sienge, then `ponte deadletter replay --all --tenant demo --flow import`"
            )
        with console.status("importing again (nothing changed)…"):
            second = job.execute_in_process(
                partition_key="demo",
                instance=instance,
                run_config={**QUIET, "ops": {"crm_customers_and_sales": {"config": {"mode": "full"}}}},
            )
        again = _import_metadata(second)
        console.print(
            f"[green]✓[/] unchanged re-run: {again.get('unchanged')} records unchanged, "
            f"{again.get('api_calls.cvcrm')} CRM calls"
        )
        for module_name in (
            "orchestration.cli.demo_dispatch",
            "orchestration.cli.demo_backsync",
            "orchestration.cli.demo_assistance",
        ):
            try:
                step = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                continue
            step.run(store=store, sandbox=sandbox, instance=instance, console=console)
    finally:
        sandbox.stop()
    _operator_views()
    console.print(f"[bold green]demo done[/]: state in {settings.home()}; `make ui` shows the Dagster runs")


def _operator_views() -> None:
    """What an operator looks at after the runs: the electronic signatures and the envelope package."""
    from orchestration.cli import envelopes, tenant

    console.print("\n[bold]$ ponte envelopes list --tenant demo --limit 10[/]")
    envelopes.list_cmd(tenant="demo", status=[], since=None, provider=None, limit=10, as_json=False)
    console.print("\n[bold]$ ponte tenant package demo[/]")
    tenant.package(tenant="demo", as_json=False)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @friendly_errors
    def demo(
        customers: int = typer.Option(40, help="Customers seeded in the sandbox."),
        profile: str = typer.Option(
            "realistic", help="Sandbox data: realistic (dirty, as real ERPs hold it) or clean."
        ),
    ) -> None:
        """Run the demo: validate config, start the sandbox and run the flows through Dagster.

        Uses the embedded default: SQLite under .ponte/ and the local sandbox stand-ins on ports
        18101-18108 (what tenants/demo.yaml points at). No credentials or network needed.
        """
        if profile not in ("realistic", "clean"):
            fail(f"--profile must be realistic or clean, not {profile!r}")
        run_demo(customers, profile)

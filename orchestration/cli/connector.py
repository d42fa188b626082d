"""`ponte connector ...`: check a tenant's connection, dry-read a stream, validate and list specs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from connectors.runtime import Connector
from connectors.spec import HttpConnectorSpec, available_specs, load_spec, validate_all, validate_specs
from orchestration.cli.console import console, fail, friendly_errors
from ponte import ConfigurationError, redact
from schemas import load_tenant

app = typer.Typer(
    help="Connectors: check a tenant's credentials, dry-read a stream, validate and list specs.",
    no_args_is_help=True,
)


def _open(tenant_name: str, connector_name: str, shared_budget: bool):  # type: ignore[no-untyped-def]
    """The tenant's connector as every flow opens it (its rate limit, file hosts and download cap
    overrides apply); with ``shared_budget`` it draws on the store's shared rate budget."""
    from pipelines.connections import open_connector

    tenant = load_tenant(tenant_name)
    store = None
    if shared_budget:
        from pipelines.store import open_store

        store = open_store()
    return open_connector(tenant, connector_name, store=store)


@app.command("check")
@friendly_errors
def check(
    tenant: str = typer.Argument(..., help="Tenant id (tenants/<id>.yaml) or path"),
    connector: str = typer.Argument(..., help="Connector key in the tenant file, e.g. sienge"),
    shared_budget: bool = typer.Option(
        False, help="Count calls against the shared budget in the state store"
    ),
) -> None:
    """Authenticate and read one record of each stream: says what works and what is refused."""
    conn = _open(tenant, connector, shared_budget)
    with conn:
        results = conn.check()
    table = Table(show_header=True, header_style="bold")
    table.add_column("stream")
    table.add_column("result")
    for result in results:
        mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
        table.add_row(result.stream, f"{mark} {redact(result.detail)}")
    console.print(table)
    console.print(f"{conn.api_calls} API call(s) used")
    working = sum(r.ok for r in results)
    if working < len(results):
        console.print(f"[red]{len(results) - working} of {len(results)} failed[/]")
        raise typer.Exit(1)
    console.print(f"[green]{connector}: all {len(results)} checks passed for tenant {tenant}[/]")


@app.command("read")
@friendly_errors
def read(
    tenant: str = typer.Argument(..., help="Tenant id or path"),
    connector: str = typer.Argument(..., help="Connector key in the tenant file"),
    stream: str = typer.Argument(..., help="Stream name in the connector spec"),
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="Stop after this many records"),
    param: list[str] = typer.Option([], "--param", "-p", help="Stream parameter NAME=VALUE (repeatable)"),
    since: datetime | None = typer.Option(None, help="Incremental lower bound (ISO date/time)"),
    shared_budget: bool = typer.Option(
        False, help="Count calls against the shared budget in the state store"
    ),
) -> None:
    """Dry read: print a stream's records as JSON lines (personal data masked). Writes nothing."""
    params: dict[str, str] = {}
    for item in param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--param {item!r} is not NAME=VALUE")
        params[name] = value
    conn = _open(tenant, connector, shared_budget)
    if not isinstance(conn, Connector):
        fail(f"{connector} is an SMTP connector: it has no streams")
    assert isinstance(conn, Connector)
    count = 0
    with conn:
        for record in conn.read(stream, since=since, params=params, limit=limit):
            console.print(
                redact(json.dumps(record, ensure_ascii=False, default=str)), markup=False, soft_wrap=True
            )
            count += 1
    console.print(f"[dim]{count} record(s), {conn.api_calls} API call(s)[/]")


@app.command("validate")
@friendly_errors
def validate(
    files: list[Path] = typer.Argument(None, help="Spec files (default: every spec in connectors/specs)"),
) -> None:
    """Validate connector specs; each problem names file, line and field."""
    if files:
        errors = validate_specs(list(files))
        results = [(str(f), None) for f in files] if not errors else [("", str(e)) for e in errors]
    else:
        results = validate_all()
    bad = [(item, error) for item, error in results if error]
    for item, error in results:
        if not error:
            console.print(f"[green]✓[/] {item}")
    for _item, error in bad:
        console.print(f"[red]✗[/] {redact(error or '')}", markup=True, soft_wrap=True)
    if bad:
        raise typer.Exit(1)


@app.command("list")
@friendly_errors
def list_specs() -> None:
    """Every spec with its streams, actions and webhooks."""
    table = Table(show_header=True, header_style="bold")
    for column in ("spec", "kind", "streams", "actions", "webhooks"):
        table.add_column(column)
    for name in available_specs():
        try:
            spec = load_spec(name)
        except ConfigurationError as exc:
            table.add_row(name, "[red]invalid[/]", redact(str(exc))[:80], "", "")
            continue
        if isinstance(spec, HttpConnectorSpec):
            table.add_row(
                name, "http", ", ".join(spec.streams), ", ".join(spec.actions), ", ".join(spec.webhooks)
            )
        else:
            table.add_row(name, spec.kind, "", "send", "")
    console.print(table)

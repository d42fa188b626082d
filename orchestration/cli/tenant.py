"""`ponte tenant`: inspect tenant configuration."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from rich.table import Table

from orchestration.cli.console import console, emit_json, friendly_errors, masked
from ponte.redaction import redact
from schemas.tenant import TenantConfig, load_tenant, scan_tenants

app = typer.Typer(help="Tenants: one YAML file each under tenants/.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the configured tenants and their connectors; a tenant file that does not load is listed as
    broken with its error (the others are unaffected). Exits 1 when a file is broken."""
    good, broken = scan_tenants()
    if as_json:
        rows: list[dict[str, Any]] = [
            {"tenant": t.id, "status": "ok", "name": t.name, "connectors": list(t.connectors),
             "signing_provider": t.options.signing_provider}
            for t in good
        ]
        rows += [{"tenant": b.id, "status": "broken", "file": b.path.name, "error": redact(b.message)}
                 for b in broken]
        console.print_json(json.dumps(sorted(rows, key=lambda r: r["tenant"]), ensure_ascii=False))
    else:
        table = Table("tenant", "status", "name", "connectors", "signing provider")
        for tenant in good:
            table.add_row(tenant.id, "ok", tenant.name, ", ".join(tenant.connectors),
                          tenant.options.signing_provider)
        for item in broken:
            table.add_row(item.id, "[red]broken[/]", "", "", "")
        console.print(table)
        for item in broken:
            console.print(f"{item.path.name}: {redact(item.message)}", markup=False, highlight=False, style="red")
        if broken:
            console.print("fix the file(s) above (`ponte validate` names the line); the other tenants keep running")
    if broken:
        raise typer.Exit(1)


def shown_config(config: TenantConfig) -> dict[str, Any]:
    """The configuration as `tenant show` prints it: each credential as its variable's name and whether
    it is set (never a value, a sandbox default included); other values masked like any CLI output."""
    data = masked(config.model_dump(mode="json", exclude_none=True))
    for key, connector in config.connectors.items():
        # replaces the dumped references (sandbox defaults included) in place: the field order stays
        data["connectors"][key]["credentials"] = {
            name: {"env": ref.env, "set": bool(os.environ.get(ref.env)), "sandbox_default": ref.default is not None}
            for name, ref in connector.credentials.items()
        }
    return data


@app.command("show")
@friendly_errors
def show(
    tenant: str = typer.Argument(..., help="Tenant id or path to its YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly the JSON document (no colours)."),
) -> None:
    """Show one tenant's validated configuration (credentials by variable name and whether it is set,
    never their values)."""
    config = load_tenant(tenant)
    if as_json:
        emit_json(shown_config(config))
        return
    console.print_json(json.dumps(shown_config(config), ensure_ascii=False))

__import__("orchestration.cli.tenant_verify", fromlist=["register"]).register(app)

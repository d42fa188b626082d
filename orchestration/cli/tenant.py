"""`ponte tenant`: inspect tenant configuration."""

from __future__ import annotations

import typer
from rich.table import Table

from orchestration.cli.console import console, friendly_errors
from schemas.tenant import list_tenants, load_tenant

app = typer.Typer(help="Tenants: one YAML file each under tenants/.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_cmd() -> None:
    """List the configured tenants and their connectors."""
    table = Table("tenant", "name", "connectors", "signing provider")
    for tenant in list_tenants():
        table.add_row(tenant.id, tenant.name, ", ".join(tenant.connectors), tenant.options.signing_provider)
    console.print(table)


@app.command("show")
@friendly_errors
def show(tenant: str = typer.Argument(..., help="Tenant id or path to its YAML file.")) -> None:
    """Show one tenant's validated configuration (credentials shown by variable name only)."""
    config = load_tenant(tenant)
    console.print_json(config.model_dump_json(exclude_none=True))

__import__("orchestration.cli.tenant_verify", fromlist=["register"]).register(app)

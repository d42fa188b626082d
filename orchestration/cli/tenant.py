"""`ponte tenant`: inspect tenant configuration."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from rich.table import Table

from orchestration.cli.console import console, friendly_errors
from ponte.redaction import redact
from schemas.tenant import TenantConfig, list_tenants, load_tenant

app = typer.Typer(help="Tenants: one YAML file each under tenants/.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_cmd() -> None:
    """List the configured tenants and their connectors."""
    table = Table("tenant", "name", "connectors", "signing provider")
    for tenant in list_tenants():
        table.add_row(tenant.id, tenant.name, ", ".join(tenant.connectors), tenant.options.signing_provider)
    console.print(table)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return redact(value) if isinstance(value, str) else value


def shown_config(config: TenantConfig) -> dict[str, Any]:
    """The configuration as `tenant show` prints it: each credential as its variable's name and whether
    it is set (never a value, a sandbox default included); other values masked like any CLI output."""
    data = _masked(config.model_dump(mode="json", exclude_none=True))
    for key, connector in config.connectors.items():
        # replaces the dumped references (sandbox defaults included) in place: the field order stays
        data["connectors"][key]["credentials"] = {
            name: {"env": ref.env, "set": bool(os.environ.get(ref.env)), "sandbox_default": ref.default is not None}
            for name, ref in connector.credentials.items()
        }
    return data


@app.command("show")
@friendly_errors
def show(tenant: str = typer.Argument(..., help="Tenant id or path to its YAML file.")) -> None:
    """Show one tenant's validated configuration (credentials by variable name and whether it is set,
    never their values)."""
    config = load_tenant(tenant)
    console.print_json(json.dumps(shown_config(config), ensure_ascii=False))

__import__("orchestration.cli.tenant_verify", fromlist=["register"]).register(app)

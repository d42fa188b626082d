"""`ponte tenant`: inspect tenant configuration."""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from rich.markup import escape
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

@app.command("package")
@friendly_errors
def package(
    tenant: str = typer.Argument(..., help="Tenant id or path to its YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print the package as one JSON document."),
) -> None:
    """The tenant's envelope package: size (or unlimited), used, remaining, percent, validity and days
    left, whether it is expired or not yet valid, and the consumption notices already sent."""
    from pipelines.dispatch.package import summary
    from pipelines.store import open_store

    config = load_tenant(tenant)
    view = summary(open_store(), config)
    if as_json:
        emit_json(view)
        return
    if view["package"] is None:
        console.print(f"tenant {config.id} has no envelope package: no envelope can be sent until "
                      f"options.envelope_package is set in tenants/{config.id}.yaml")
        return
    percent = "-" if view["percent"] is None else f"{view['percent']:.1f} %"
    table = Table(show_header=False, box=None)
    for label, value in (("package", view["package"]), ("size", view["size"]), ("used", view["used"]),
                         ("remaining", view["remaining"]), ("percent used", percent),
                         ("valid", f"{view['valid_from']} to {view['valid_until']}"),
                         ("days left", f"{view['days_left']} (today included)")):
        table.add_row(label, escape(str(value)))
    console.print(table)
    status = {
        "ok": "[green]valid[/]: envelopes can be sent",
        "expired": f"[red]expired[/] on {view['valid_until']}: nothing is sent",
        "not_yet_valid": f"[yellow]not yet valid[/]: starts on {view['valid_from']} "
        f"(in {view['starts_in_days']} day(s)); nothing is sent before",
        "used_up": "[red]used up[/]: nothing is sent",
    }[view["status"]]
    console.print(status)
    if view["status"] != "ok":
        console.print(f"buy a new package; update options.envelope_package in tenants/{config.id}.yaml")
    levels = ", ".join(f"{p} %" for p in view["warn_at_percent"]) or "none"
    console.print(f"notices to the responsible e-mails at: {levels}")
    if not view["notices"]:
        console.print("no consumption notice sent yet")
    for notice in view["notices"]:
        state = {"sent": "sent", "unsure": "counted as sent (the run stopped while sending)"}.get(
            notice["status"], notice["status"])
        when = f"{notice['at'][:19].replace('T', ' ')} UTC" if notice["at"] else ""
        console.print(f"  {notice['percent']} %: {state} {when}".rstrip()
                      + (f" ({escape(redact(notice['error']))})" if notice.get("error") else ""))


__import__("orchestration.cli.tenant_verify", fromlist=["register"]).register(app)

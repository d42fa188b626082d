"""`ponte tenant`: inspect tenant configuration."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import console, emit_json, fail, friendly_errors, masked
from ponte import ConfigurationError, PonteError, redact
from schemas import TENANT_ID, TenantConfig, load_tenant, scan_tenants

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


# ------------------------------------------------------------------------------------ tenant new

#: the connectors a new tenant starts with, besides its signing provider (after cvcrm): the ERP and the
#: CRM it integrates, and the SMTP server notices and verification e-mails go through
SCAFFOLD_CONNECTORS = ("sienge", "cvcrm", "smtp")


def signing_specs() -> list[str]:
    """Connector specs that can be a tenant's signing provider: the hand-written providers and every
    spec with a ``signing`` section."""
    from connectors.spec import HttpConnectorSpec, available_specs, load_spec
    from pipelines.dispatch.spec_provider import HAND_WRITTEN

    found = set(HAND_WRITTEN)
    for name in available_specs():
        try:
            spec = load_spec(name)
        except PonteError:
            continue
        if isinstance(spec, HttpConnectorSpec) and spec.signing is not None:
            found.add(name)
    return sorted(found)


def _env_name(tenant_id: str, connector: str, secret: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", f"PONTE_{tenant_id}_{connector}_{secret}".upper())


def _comment(text: str) -> str:
    return " ".join(text.split())


def _connector_block(tenant_id: str, key: str) -> list[str]:
    """A connector's lines: the spec's values without a default as TODOs, each secret as a variable."""
    from connectors.spec import load_spec

    spec = load_spec(key)
    lines = [f"  {key}:", f"    spec: {key}"]
    todo = {name: decl for name, decl in spec.values.items() if decl.default is None}
    if todo:
        lines.append("    values:")
        for name, decl in todo.items():
            example = f" (e.g. {decl.example})" if decl.example else ""
            lines.append(f"      {name}: TODO  # {_comment(decl.description)}{example}")
    defaults = [name for name, decl in spec.values.items() if decl.default is not None]
    if defaults:
        lines.append(f"    # values with a default in connectors/specs/{key}.yaml: {', '.join(defaults)}")
    required = {name: decl for name, decl in spec.secrets.items() if decl.required}
    optional = {name: decl for name, decl in spec.secrets.items() if not decl.required}
    if required:
        lines.append("    credentials:")
    elif optional:
        lines.append("    # credentials:")
    for name, decl in required.items():
        lines.append(f"      {name}: {{env: {_env_name(tenant_id, key, name)}}}  # {_comment(decl.description)}")
    for name, decl in optional.items():
        lines.append(f"      # {name}: {{env: {_env_name(tenant_id, key, name)}}}  # optional: "
                     f"{_comment(decl.description)}")
    return lines


def scaffold(tenant_id: str, name: str, provider: str, path: Path) -> str:
    """The text of a new tenant file at ``path``: commented, every credential an environment variable."""
    from orchestration.schema_export import TENANT_SCHEMA, schema_line

    keys = [*SCAFFOLD_CONNECTORS[:2], provider, *SCAFFOLD_CONNECTORS[2:]]  # sienge, cvcrm, provider, smtp
    lines = [
        schema_line(TENANT_SCHEMA, path),
        f"# Tenant {tenant_id}, written by `ponte tenant new`: replace each TODO, then run `ponte validate`",
        "# (docs/tenants.md). Credentials name environment variables, never a secret in this file: set each",
        f"# PONTE_{tenant_id.upper().replace('-', '_')}_* variable where Ponte runs (`ponte validate` warns "
        "about unset ones).",
        f"id: {tenant_id}",
        f"name: {json.dumps(name, ensure_ascii=False)}",
        "connectors:",
    ]
    for key in dict.fromkeys(keys):
        lines += _connector_block(tenant_id, key)
    lines += [
        "options:",
        f"  signing_provider: {provider}  # a key of connectors",
        "  # the envelope package the developer bought: no envelope is sent without one",
        "  # envelope_package: {id: TODO, size: 500, valid_from: 2026-01-01, valid_until: 2026-12-31}",
        "  signer_chain:  # routing order: 1 signs first; required: false skips a missing person",
        "    - {role: client, order: 1}",
        "    - {role: spouse, order: 2, required: false}",
        "    - {role: witness, order: 3, required: false}",
        "  notifications: {by: provider}  # or ponte: Ponte invites by SMTP / WhatsApp",
        "  responsible_emails: []  # TODO: who is told as the envelope package runs out",
        "  contract_managers: []  # TODO: one verified e-mail is needed before anything is sent",
    ]
    return "\n".join(lines) + "\n"


@app.command("new")
@friendly_errors
def new(
    tenant_id: str = typer.Argument(..., metavar="ID", help="Tenant id: lowercase letters, digits, - and _."),
    name: str = typer.Option(None, "--name", help="The developer's name (default: the id)."),
    provider: str = typer.Option("docusign", "--provider", help="Signing provider: a connector spec with signing (docusign, clicksign, or one described in YAML)"),
    out: Path = typer.Option(None, "--out", help="Directory to write ID.yaml in (default: tenants/)."),
) -> None:
    """Write a new tenant file, commented, with every credential as an environment variable
    (PONTE_<ID>_...). The file is validated before it is written; an existing file is never overwritten."""
    from ponte import settings

    if not re.match(TENANT_ID, tenant_id):
        fail(f"{tenant_id!r} is not a tenant id: lowercase letters, digits, - and _ (at most 63)")
    providers = signing_specs()
    if provider not in providers:
        fail(ConfigurationError(f"{provider!r} is not a signing provider",
                                hint=f"signing providers: {', '.join(providers)}"))
    path = (out or settings.tenants_dir()) / f"{tenant_id}.yaml"
    if path.exists():
        fail(ConfigurationError(f"{path} already exists; nothing written",
                                hint=f"edit it, or pick another id (`ponte tenant show {tenant_id}`)"))
    text = scaffold(tenant_id, name or tenant_id, provider, path)
    with tempfile.TemporaryDirectory() as scratch:  # validated as `ponte validate` loads it
        trial = Path(scratch) / path.name
        trial.write_text(text, encoding="utf-8")
        load_tenant(trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # never overwrites, even a file made meanwhile
        handle.write(text)
    console.print(f"wrote {path}: replace each TODO, set the PONTE_{tenant_id.upper().replace('-', '_')}_* "
                  "variables, then run `ponte validate`", markup=False, highlight=False)


__import__("orchestration.cli.tenant_verify", fromlist=["register"]).register(app)

"""`ponte validate`: check every tenant file, connector spec, mapping and exported schema.

Each layer contributes a ``validate_all() -> list[Check]``-style function; a layer not built yet is
reported as such rather than silently passing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestration import schema_export
from orchestration.cli.console import EXIT_FAILURES, console, emit_json, friendly_errors
from pipelines.dispatch.signing_links import link_problems
from ponte import PonteError, load_yaml, redact, settings
from schemas import TenantConfig, identity_verification_gap, load_tenant


@dataclass
class Check:
    kind: str
    item: str
    error: str | None = None
    #: what does not fail the check but will fail a run (an unset credential variable): one row each
    warnings: list[CredentialWarning] = field(default_factory=list)


@dataclass(frozen=True)
class CredentialWarning:
    """A credential a tenant names by an environment variable that is unset, with no default."""

    tenant: str
    connector: str
    credential: str
    variable: str

    @property
    def item(self) -> str:
        return f"tenant {self.tenant}, connector {self.connector}, credential {self.credential}"

    @property
    def message(self) -> str:  # names the variable, never a value
        return f"{self.item}: environment variable {self.variable} is not set (set it where Ponte runs)"

    def row(self) -> dict[str, Any]:
        return {"kind": "credential", "item": self.item, "error": None, "result": "warning",
                "warning": self.message, "tenant": self.tenant, "connector": self.connector,
                "credential": self.credential, "variable": self.variable}


def unset_credentials(tenant: TenantConfig) -> list[CredentialWarning]:
    """The tenant's credentials whose variable is unset (or empty) and have no default: the run that
    needs one stops on it, so `ponte validate` warns now (without failing: the machine that validates
    is often not the one that runs)."""
    return [
        CredentialWarning(tenant.id, connector, name, ref.env)
        for connector, config in tenant.connectors.items()
        for name, ref in config.credentials.items()
        if ref.default is None and not os.environ.get(ref.env)
    ]


def _warn_unset_credentials(checks: list[Check]) -> None:
    """Attach :func:`unset_credentials` to each tenant check whose file loads."""
    for check in checks:
        if check.kind != "tenant" or check.error:
            continue
        try:
            check.warnings = unset_credentials(load_tenant(Path(check.item)))
        except PonteError:
            continue  # reported by the tenant check itself


def _dispatch_rules(path: Path, tenant: TenantConfig) -> str | None:
    """What the schema cannot see: combinations dispatch would refuse (a signing link that does not
    exist, see pipelines/dispatch/signing_links.py), named by file, line and field like a schema error."""
    problems = link_problems(tenant)
    evidence = identity_verification_gap(tenant)  # evidence the signing provider cannot be asked for
    from pipelines.dispatch.spec_provider import signing_gaps

    gaps = signing_gaps(tenant)  # what a provider described in YAML lacks for dispatch and back-sync
    if not problems and not evidence and not gaps:
        return None
    doc = load_yaml(path)
    found = [
        f"{doc.where(tuple(p.field.split('.')))}: tenant field {p.field}: {p.message} (fix: {p.hint})"
        for p in problems
    ]
    if evidence:
        found.append(f"{doc.where(('options', 'evidence'))}: tenant field options.evidence: {evidence}")
    found += [f"{doc.where(('options', 'signing_provider'))}: tenant field options.signing_provider: {gap}"
              for gap in gaps]
    return "; ".join(found)


def _dispatch_triggers(path: Path, tenant: TenantConfig) -> str | None:
    """What dispatch triggers the CRM could never fire (pipelines/dispatch/webhooks.py, trigger_problems),
    named by file, line and field."""
    from pipelines.dispatch.webhooks import trigger_problems

    problems = trigger_problems(tenant)
    if not problems:
        return None
    doc = load_yaml(path)
    return "; ".join(f"{doc.where(tuple(int(k) if k.isdigit() else k for k in p.field.split('.')))}: "
                     f"tenant field {p.field}: {p.message}" for p in problems)


def _tenants(paths: Iterable[Path]) -> list[Check]:
    checks = []
    for path in paths:
        try:
            tenant = load_tenant(path)
            found = [e for e in (_dispatch_rules(path, tenant), _dispatch_triggers(path, tenant)) if e]
            checks.append(Check("tenant", str(path), "; ".join(found) or None))
        except PonteError as exc:
            checks.append(Check("tenant", str(path), str(exc)))
    return checks


def _layer(kind: str, module: str, attr: str = "validate_all") -> list[Check]:
    try:
        func: Callable[[], list[tuple[str, str | None]]] = getattr(importlib.import_module(module), attr)
    except (ModuleNotFoundError, AttributeError):
        return [Check(kind, "(not built yet)")]
    return [Check(kind, item, error) for item, error in func()]


def _schemas() -> list[Check]:
    stale = schema_export.stale()
    if stale:
        return [Check("schema", rel, "differs from the models: run `ponte schemas export`") for rel in stale]
    return [Check("schema", "schemas/json (all files current)")]


def run_checks(tenant_files: list[Path] | None = None) -> list[Check]:
    files = tenant_files or sorted(settings.tenants_dir().glob("*.yaml"))
    checks = _tenants(files)
    _warn_unset_credentials(checks)
    if not tenant_files:
        checks += _layer("connector spec", "connectors.spec")
        checks += _layer("mapping", "mappings")
        checks += _layer("template", "pipelines.documents.render")
        checks += _schemas()
    return checks


def register(app: typer.Typer) -> None:
    @app.command("validate")
    @friendly_errors
    def validate(
        files: list[Path] = typer.Argument(
            None,
            help="Tenant files to check (default: every file in tenants/ plus specs, mappings, schemas).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output (masked the same way)."),
    ) -> None:
        """Validate tenant files, connector specs, mappings and the exported JSON Schemas.

        Exits 0 when everything is valid; otherwise prints each problem with its file, line, field and
        how to fix it, and exits 1. A credential whose environment variable is unset (no default) is a
        warning row naming tenant, connector, credential and variable; warnings alone exit 0.
        """
        checks = run_checks(files or None)
        if as_json:
            rows = []
            for c in checks:
                rows.append({"kind": c.kind, "item": c.item, "error": c.error,
                             "result": "failed" if c.error else "not_built" if c.item == "(not built yet)" else "ok"})
                rows += [w.row() for w in c.warnings]
            failures = sum(1 for c in checks if c.error)
            warned = sum(len(c.warnings) for c in checks)
            emit_json({"ok": not failures, "total": len(checks), "failed": failures, "warnings": warned,
                       "checks": rows})
            if failures:
                raise typer.Exit(EXIT_FAILURES)
            return
        table = Table(show_header=True, header_style="bold")
        table.add_column("kind")
        table.add_column("item")
        table.add_column("result")
        failed = 0
        for check in checks:
            if check.error:
                failed += 1
                table.add_row(check.kind, check.item, f"[red]✗ {redact(check.error)}[/]")
            elif check.item == "(not built yet)":
                table.add_row(check.kind, check.item, "[yellow]–[/]")
            else:
                table.add_row(check.kind, check.item, "[green]✓[/]")
            for warning in check.warnings:
                table.add_row("credential", escape(warning.item),
                              f"[yellow]! environment variable {escape(warning.variable)} is not set[/]")
        console.print(table)
        warned = sum(len(c.warnings) for c in checks)
        if warned:
            console.print(f"[yellow]{warned} warning(s)[/]: credential variables not set here (a run needs them)")
        if failed:
            console.print(f"[red]{failed} problem(s) found[/]")
            raise typer.Exit(EXIT_FAILURES)
        console.print(f"[green]all {len(checks)} checks passed[/]")

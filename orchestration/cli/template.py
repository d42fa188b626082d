"""`ponte template`: list the contract templates, preview one as a PDF.

Templates are ``mappings/templates/<name>.html.j2`` with a declaration ``<name>.yml`` (title, sources);
``render`` fills one with a contract's data (or the built-in sample, ``--sample``) and writes the PDF
dispatch would send, so whoever writes a template sees the pages before any signer does.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import console, emit_json, fail, friendly_errors
from ponte import PonteError, redact

app = typer.Typer(
    help="Contract templates (HTML + Jinja2, laid out as PDF): list them, preview one.",
    no_args_is_help=True,
)


@app.command("list")
@friendly_errors
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List every template with its title, declared sources and the variables it uses."""
    from pipelines.documents.render import list_templates, template_info

    rows = []
    for name in list_templates():
        try:
            info = template_info(name)
        except PonteError as exc:
            rows.append({"name": name, "error": str(exc)})
            continue
        rows.append(
            {
                "name": info.name,
                "title": info.title,
                "sources": list(info.sources),
                "variables": sorted(info.variables),
            }
        )
    if as_json:
        emit_json({"templates": rows})
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("template", "title", "sources", "variables"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if "error" in row:
            table.add_row(escape(row["name"]), f"[red]✗ {escape(redact(row['error']))}[/]", "", "")
            continue
        table.add_row(
            escape(row["name"]),
            escape(row["title"]),
            escape(", ".join(row["sources"])),
            escape(", ".join(row["variables"])),
        )
    console.print(table)


#: ``--contract``: the CV CRM contract id, or RESERVATION:CONTRACT (both numeric in CV CRM)
CONTRACT_REF = re.compile(r"\d+(:\d+)?")


def _known_template(name: str) -> None:
    """Stop with the templates there are (and the closest name) before anything is read."""
    from pipelines.documents.render import list_templates

    names = list_templates()
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    meant = f"did you mean {close[0]!r}? " if close else ""
    fail(f"no contract template {name!r} (fix: {meant}templates available: {', '.join(names) or 'none'}; "
         "`ponte template list` shows them)")


def _contract_context(name: str, contract: str | None, tenant: str | None) -> tuple[dict[str, Any], str | None]:
    """The live variables of a CRM contract, read as dispatch reads them, and the PDF's title."""
    if not contract or not tenant:
        fail("give --contract and --tenant to render from a contract's data, or --sample")
    contract = contract.strip()
    if not CONTRACT_REF.fullmatch(contract):
        fail(f"--contract {contract!r} is not a contract: give its CV CRM id (801) or RESERVATION:CONTRACT "
             "(3001:801)")
    from pipelines.dispatch.flow import preview_context
    from pipelines.store import open_store
    from schemas import load_tenant

    config = load_tenant(tenant)
    store = open_store()
    try:
        context = preview_context(store, config, contract, name)
    finally:
        store.dispose()
    return context, (context.get("contrato") or {}).get("titulo")


@app.command("render")
@friendly_errors
def render_cmd(
    name: str = typer.Argument(..., help="Template name (see `ponte template list`)."),
    contract: str = typer.Option(
        None, "--contract", help="The CV CRM contract whose data fills it: 801 or RESERVATION:CONTRACT (3001:801)."
    ),
    tenant: str = typer.Option(None, "--tenant", "-t", help="Tenant id or file."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write the PDF (default: ./<name>-<contract>.pdf)."),
    sample: bool = typer.Option(
        False, "--sample", help="Fill it with the built-in sample data instead of a contract's."
    ),
    html: Path = typer.Option(None, "--html", help="Also write the filled HTML here (to debug the layout)."),
) -> None:
    """Render template NAME as a PDF, from a contract's data or the sample, and say where it went.

    From a contract, the PDF is the one dispatch would send with `--template NAME` (the contract's
    title included); nothing is sent and nothing is recorded.

    Exit code 0 when the PDF was written; 2 when the template is broken or unknown, the contract is not
    in the CRM, or a value it needs is missing (the error names the value and where to fill it in).
    """
    from pipelines.documents.render import SAMPLE_CONTEXT, html_to_pdf, render_html

    _known_template(name)
    if sample:
        context, record, title = SAMPLE_CONTEXT, "sample", None
    else:
        context, title = _contract_context(name, contract, tenant)
        record = f"contract {contract.strip()}"
    filled = render_html(name, context, record=record, title=title)
    if html:
        html.write_text(filled, encoding="utf-8")
    content, pages = html_to_pdf(filled, template=name)
    target = out or Path(f"{name}-{'sample' if sample else contract.strip()}.pdf")
    target.write_bytes(content)
    console.print(
        f"[green]✓[/] wrote {escape(redact(str(target)))}: {pages} page{'s' if pages != 1 else ''}, "
        f"{len(content):,} bytes"
    )


__all__ = ["app"]

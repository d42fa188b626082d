"""`ponte template`: list the contract templates, preview one as a PDF.

Templates are ``mappings/templates/<name>.html.j2`` with a declaration ``<name>.yaml`` (title, sources);
``render`` fills one with a contract's data (or the built-in sample, ``--sample``) and writes the PDF
dispatch would send, so whoever writes a template sees the pages before any signer does.
"""

from __future__ import annotations

from pathlib import Path

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


@app.command("render")
@friendly_errors
def render_cmd(
    name: str = typer.Argument(..., help="Template name (see `ponte template list`)."),
    contract: str = typer.Option(None, "--contract", help="The CV CRM contract whose data fills it."),
    tenant: str = typer.Option(None, "--tenant", "-t", help="Tenant id or file."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write the PDF (default: ./<name>-<contract>.pdf)."),
    sample: bool = typer.Option(
        False, "--sample", help="Fill it with the built-in sample data instead of a contract's."
    ),
    html: Path = typer.Option(None, "--html", help="Also write the filled HTML here (to debug the layout)."),
) -> None:
    """Render template NAME as a PDF, from a contract's data or the sample, and say where it went.

    Exit code 0 when the PDF was written; 2 when the template is broken or a value it needs is missing
    (the error names the value and where to fill it in).
    """
    from pipelines.documents.render import SAMPLE_CONTEXT, html_to_pdf, render_html

    if sample:
        context, record = SAMPLE_CONTEXT, "sample"
    else:
        if not contract or not tenant:
            fail("give --contract and --tenant to render from a contract's data, or --sample")
        from pipelines.dispatch.flow import preview_context
        from pipelines.store import open_store
        from schemas import load_tenant

        context = preview_context(open_store(), load_tenant(tenant), contract, name)
        record = f"contract {contract}"
    filled = render_html(name, context, record=record)
    if html:
        html.write_text(filled, encoding="utf-8")
    content, pages = html_to_pdf(filled, template=name)
    target = out or Path(f"{name}-{'sample' if sample else contract}.pdf")
    target.write_bytes(content)
    console.print(
        f"[green]✓[/] wrote {escape(str(target))}: {pages} page{'s' if pages != 1 else ''}, "
        f"{len(content):,} bytes"
    )


__all__ = ["app"]

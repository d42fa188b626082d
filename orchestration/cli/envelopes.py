"""`ponte envelopes show CONTRACT`: the signing history of one contract (masked), as the seeds ask;
`ponte envelopes list`: the tenant's envelopes, newest first, filtered, with counts by status."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import console, emit_json, friendly_errors, masked

app = typer.Typer(help="Envelopes sent for signature and their history.", no_args_is_help=True)


@app.command("show")
@friendly_errors
def show(
    contract: str = typer.Argument(..., help="CRM contract id (idreservacontrato)."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the history as one JSON document (masked)."),
) -> None:
    """Every document sent for CONTRACT: status, each signer (e-mail, masked CPF, status, time), link."""
    from pipelines.backsync.history import contract_history
    from pipelines.store import open_store
    from schemas import load_tenant

    config = load_tenant(tenant)
    history = contract_history(open_store(), config.id, contract, config.options.verification_base_url)
    if as_json:
        emit_json(history)
        return
    if not history:
        console.print(f"contract {contract}: no document was ever sent for signature")
        return
    for item in history:
        state = "pending" if item["pending"] else item["status"]
        console.print(f"[bold]{item['document']}[/] ({item['provider']} {item['provider_envelope_id']}): "
                      f"{state}, sent {item['sent_at'] or '-'}, completed {item['completed_at'] or '-'}")
        table = Table("#", "role", "e-mail", "CPF", "status", "signed at")
        for s in item["signers"]:
            table.add_row(str(s["order"]), s["role"], s["email"] or "", s["cpf"] or "", s["status"],
                          s["signed_at"] or "")
        console.print(table)
        crm = item.get("crm")
        if crm:
            done = [step for step, entry in crm["steps"].items() if entry.get("done")]
            left = [step for step, entry in crm["steps"].items() if not entry.get("done")]
            console.print(
                f"CRM: {'complete' if crm['complete'] else 'not complete yet'}; done: {', '.join(done) or '-'}"
                + (f"; left: {', '.join(left)} (the next back-sync poll finishes them)" if left else "")
            )
            for warning in crm["warnings"]:
                console.print(f"[yellow]![/] {warning}")
        if item["link"]:
            console.print(f"document: {item['link']}" + (f"  sha256 {item['signed_sha256']}" if item["signed_sha256"] else ""))


@app.command("list")
@friendly_errors
def list_cmd(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
    status: list[str] = typer.Option(
        [], "--status", "-s",
        help="Only envelopes in this status: pending (draft, sent, delivered), sent, delivered, completed, "
        "declined, voided, expired, draft. Repeat for several.",
    ),
    since: str = typer.Option(None, "--since", help="Only envelopes sent on or after this day (YYYY-MM-DD)."),
    provider: str = typer.Option(None, "--provider", "-p", help="Only this signing provider (e.g. docusign)."),
    limit: int = typer.Option(100, "--limit", min=0, help="Show at most this many (0: all); the counts cover all."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as one JSON document (masked)."),
) -> None:
    """The tenant's envelopes, newest first: contract, document, status, signers done of total,
    provider and its envelope id, sent and completed times; then the counts by status."""
    from pipelines.dispatch.listing import list_envelopes, parse_filter
    from pipelines.store import open_store
    from schemas import load_tenant

    flt = parse_filter(status, since, provider)  # a bad filter is refused before anything is opened
    config = load_tenant(tenant)
    listing = list_envelopes(open_store(), config.id, flt, limit=limit or None)
    if as_json:
        emit_json(listing.as_dict())
        return
    if listing.envelopes:
        table = Table("contract", "document", "status", "signed", "provider", "provider envelope",
                      "sent (UTC)", "completed (UTC)")
        for item in masked(listing.envelopes):
            table.add_row(
                item["contract"], escape(item["document"] or ""), item["status"],
                f"{item['signers_signed']}/{item['signers_total']}", item["provider"],
                item["provider_envelope_id"] or "", _minute(item["sent_at"]), _minute(item["completed_at"]),
            )
        console.print(table)
        if len(listing.envelopes) < listing.total:
            console.print(f"showing the newest {len(listing.envelopes)} of {listing.total} (--limit 0 shows all)")
    console.print(listing.counts_line() if listing.total else "0 envelopes match")


def _minute(value: str | None) -> str:
    """An ISO time as ``2026-11-23 10:15`` (UTC) for the table; the JSON keeps the full value."""
    return value[:16].replace("T", " ") if value else ""

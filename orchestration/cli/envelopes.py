"""`ponte envelopes show CONTRACT`: the signing history of one contract (masked), as the seeds ask."""

from __future__ import annotations

import typer
from rich.table import Table

from orchestration.cli.console import console, emit_json, friendly_errors

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
    from schemas.tenant import load_tenant

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
        if item["link"]:
            console.print(f"document: {item['link']}" + (f"  sha256 {item['signed_sha256']}" if item["signed_sha256"] else ""))

"""`ponte tenant verify-email`: prove a contract manager's e-mail before anything is sent."""

from __future__ import annotations

import typer

from orchestration.cli.console import console, friendly_errors
from ponte import redact


def register(tenant_app: typer.Typer) -> None:
    @tenant_app.command("verify-email")
    @friendly_errors
    def verify_email(
        tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id (tenants/<id>.yaml)."),
        email: str = typer.Option(..., "--email", help="A contract manager's e-mail (options.contract_managers)."),
        code: str = typer.Option(None, "--code", help="The code from the e-mail; without it a code is sent."),
    ) -> None:
        """Send a verification code by SMTP (no --code), or confirm it (--code 123456)."""
        from pipelines.connections import TenantConnectors
        from pipelines.dispatch.verify import confirm_code, send_code
        from pipelines.store import open_store
        from schemas import load_tenant

        config = load_tenant(tenant)
        store = open_store()
        if code:
            confirm_code(store, config, email, code)
            console.print(f"[green]{redact(email)} is verified[/]: envelopes may be sent for {config.id}")
            return
        with TenantConnectors(config, store) as conns:
            send_code(store, config, email, conns.get("smtp"))
        console.print(f"code sent to {redact(email)}; confirm with: ponte tenant verify-email -t {config.id} "
                      "--email <the same e-mail> --code <code>")

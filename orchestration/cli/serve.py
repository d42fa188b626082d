"""`ponte serve`: run the webhook gateway."""

from __future__ import annotations

import typer

from orchestration.cli.console import console, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @friendly_errors
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8088, help="Port to listen on."),
        workers: int = typer.Option(1, help="Worker processes (instances share the inbox in the store)."),
    ) -> None:
        r"""Run the webhook gateway: authenticates deliveries and stores them in the inbox before answering.

        Routes: POST /webhooks/{tenant}/{connector}/{webhook}\[/{secret}], GET /health, GET /openapi.json,
        GET /verify/{code}. Point PONTE_DATABASE_URL at PostgreSQL to run several instances.
        """
        import uvicorn

        from pipelines.store import open_store

        open_store()  # migrate once before workers start
        console.print(f"gateway listening on http://{host}:{port} (health: /health)")
        uvicorn.run(
            "orchestration.gateway.factory:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )

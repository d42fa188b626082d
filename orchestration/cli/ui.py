"""`ponte ui`: the Dagster UI on the demo tenant, with the sandbox running behind it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import typer

from orchestration.cli.console import console, friendly_errors
from ponte import settings


def register(app: typer.Typer) -> None:
    @app.command("ui")
    @friendly_errors
    def ui(
        port: int = typer.Option(3000, help="Port of the Dagster UI."),
        sandbox: bool = typer.Option(True, help="Start the sandbox stand-ins the demo tenant points at."),
    ) -> None:
        """Open the Dagster UI (dagster dev) for Ponte's definitions; Ctrl-C stops everything.

        `dagster dev` starts child processes (code server, webserver, daemon) that survive a plain
        SIGTERM to their parent, so it runs in its own process group and the whole group is stopped.
        """
        home = settings.home() / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        running = None
        if sandbox:
            from connectors.sandbox import start_sandbox

            running = start_sandbox(port_base=18101)
            console.print("sandbox running on ports 18101-18108 (see `ponte sandbox up --help`)")
        command = [sys.executable, "-m", "dagster", "dev", "-m", "orchestration.definitions", "-p", str(port)]
        process = subprocess.Popen(command, env=env, start_new_session=True)
        console.print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C to stop)")
        try:
            process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            if running is not None:
                running.stop()

"""`ponte schemas`: export and check the JSON Schemas generated from the models."""

from __future__ import annotations

import typer

from orchestration import schema_export
from orchestration.cli.console import console, fail, friendly_errors

app = typer.Typer(
    help="JSON Schemas (draft 2020-12) exported from Ponte's pydantic models.", no_args_is_help=True
)


@app.command("export")
@friendly_errors
def export_cmd() -> None:
    """Write schemas/json/** from the models (run after changing a model; commit the result)."""
    written = schema_export.export()
    for path in written:
        console.print(f"wrote {path}")
    console.print(f"{len(written)} file(s) changed" if written else "schemas are up to date")


@app.command("check")
@friendly_errors
def check_cmd() -> None:
    """Fail if a committed schema differs from what the models export."""
    stale = schema_export.stale()
    if stale:
        fail(f"stale schemas: {', '.join(stale)}; run `ponte schemas export` and commit the files")
    console.print("schemas are up to date")

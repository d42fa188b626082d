"""`ponte state`: the incremental cursors each tenant's streams resume from, shown and reset.

A cursor is the position an incremental read starts from next time (``sync_cursors`` in the store);
resetting one makes the next run read that stream from the beginning (like ``sync import --full``, but
for one stream and for every later run until the cursor advances again).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import console, emit_json, fail, friendly_errors
from pipelines.store import cursors_of, open_store, set_cursor

app = typer.Typer(help="Incremental cursors: where each tenant's streams resume, and resetting them.",
                  no_args_is_help=True)


def _row(cursor: Any) -> dict[str, Any]:
    return {
        "tenant": cursor.tenant,
        "connector": cursor.connector,
        "stream": cursor.stream,
        "value": cursor.value,
        "updated_at": cursor.updated_at.isoformat() if cursor.updated_at is not None else None,
    }


def _matches(cursor: Any, stream: str) -> bool:
    """``customers`` or ``sienge/customers`` names a cursor."""
    return stream in (cursor.stream, f"{cursor.connector}/{cursor.stream}")


def _names(cursors: list[Any]) -> str:
    return ", ".join(f"{c.connector}/{c.stream}" for c in cursors) or "none"


@app.command("show")
@friendly_errors
def show(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id."),
    stream: str = typer.Option(None, "--stream", "-s", help="Only this stream (customers or sienge/customers)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show the saved cursors of a tenant: connector, stream, value (where the next run starts) and when
    it last moved. A stream without a cursor is read from the beginning."""
    store = open_store()
    with store.session() as session:
        found = cursors_of(session, tenant)
        shown = [c for c in found if stream is None or _matches(c, stream)]
        rows = [_row(c) for c in shown]
        names = _names(found)
    if stream is not None and not rows:
        fail(f"tenant {tenant} has no cursor for stream {stream!r}; streams with a cursor: {names}")
    if as_json:
        emit_json({"tenant": tenant, "cursors": rows})
        return
    table = Table("connector", "stream", "cursor", "updated", title=f"cursors of {tenant}")
    for row in rows:
        table.add_row(*(escape(str(row[k] if row[k] is not None else "-")) for k in
                        ("connector", "stream", "value", "updated_at")))
    console.print(table)
    if not rows:
        console.print(f"no saved cursors for tenant {escape(tenant)}: its next run reads every stream in full")


@app.command("reset")
@friendly_errors
def reset(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant id."),
    stream: str = typer.Option(..., "--stream", "-s", help="Stream to reset (customers or sienge/customers)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print what was reset as JSON (needs --yes)."),
) -> None:
    """Reset one stream's cursor: its next run reads the stream from the beginning (records that did not
    change cost no write). Asks first unless --yes."""
    if as_json and not yes:
        fail("--json prints no prompt: add --yes to reset without asking")
    store = open_store()
    with store.session() as session:
        found = cursors_of(session, tenant)
        matched = [c for c in found if _matches(c, stream)]
        if not matched:
            fail(f"tenant {tenant} has no cursor for stream {stream!r}; streams with a cursor: {_names(found)}")
        if len(matched) > 1:
            fail(f"stream {stream!r} is ambiguous for tenant {tenant}: name one of {_names(matched)}")
        connector, stream_name, before = matched[0].connector, matched[0].stream, matched[0].value
        name = f"{connector}/{stream_name}"
    if not yes and not typer.confirm(f"reset the cursor of {tenant} {name} (now {before or 'empty'})?"):
        console.print("nothing reset")
        raise typer.Exit(1)
    with store.session() as session:
        set_cursor(session, tenant, connector, stream_name, None)
    if as_json:
        emit_json({"tenant": tenant, "stream": name, "before": before, "reset": True})
        return
    console.print(f"reset {escape(tenant)} {escape(name)} (was {escape(before or 'empty')}): "
                  "its next run reads the stream from the beginning")

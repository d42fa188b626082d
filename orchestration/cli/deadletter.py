"""`ponte deadletter`: records that failed, why, and replaying them after a fix."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import console, fail, friendly_errors
from pipelines.replay import replay
from pipelines.store import deadletters, open_store
from ponte.redaction import mask_record, redact

app = typer.Typer(
    help="Dead letters: failed records with their reason, and replay after a fix.", no_args_is_help=True
)


@app.command("list")
@friendly_errors
def list_cmd(
    tenant: str = typer.Option(None, "--tenant", "-t", help="Only this tenant."),
    flow: str = typer.Option(None, help="Only this flow (import, dispatch, backsync, assistance)."),
) -> None:
    """List open dead letters (personal data masked)."""
    rows = deadletters.list_open(open_store(), tenant, flow)
    table = Table("id", "tenant", "flow", "record", "kind", "field", "reason", "since")
    for row in rows:
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    str(row.id),
                    row.tenant,
                    row.flow,
                    redact(row.record_key),
                    row.error_kind,
                    redact(row.field or ""),
                    redact(row.reason or ""),
                    f"{row.created_at:%Y-%m-%d %H:%M}",
                )
            )
        )
    console.print(table)
    console.print(f"{len(rows)} open dead letter(s)")


def render(row: Any) -> list[str]:
    """The lines `deadletter show` prints for ``row``, masked: free text by pattern, the payload by
    field (an ``email`` is masked whatever it holds, a malformed address included) and then by pattern.

    The suite's log scan renders every dead letter a test writes through this function too.
    """
    payload = mask_record(row.payload)
    return [
        f"{row.flow} {redact(row.record_key)} (tenant {row.tenant}, {row.status})",
        f"kind: {row.error_kind}",
        f"reason: {redact(row.reason or '')}",
        f"field: {redact(row.field or '-')}",
        f"fix: {redact(row.hint or '-')}",
        f"mapping version: {row.mapping_version or '-'}",
        *redact(json.dumps(payload, indent=2, ensure_ascii=False, default=str)).splitlines(),
    ]


@app.command("show")
@friendly_errors
def show(
    dead_letter_id: int = typer.Argument(..., help="Dead-letter id (from `ponte deadletter list`)."),
) -> None:
    """Show one dead letter: reason, fix hint, mapping version and the original payload (masked)."""
    row = deadletters.get(open_store(), dead_letter_id)
    if row is None:
        fail(f"no dead letter {dead_letter_id}; see `ponte deadletter list`")
        return
    header, *rest = render(row)
    console.print(f"[bold]{escape(header)}[/]")
    for line in rest:
        console.print(line, markup=False, soft_wrap=True)


@app.command("replay")
@friendly_errors
def replay_cmd(
    dead_letter_ids: list[int] = typer.Argument(None, help="Ids to replay (default: all open, with --all)."),
    all_open: bool = typer.Option(False, "--all", help="Replay every open dead letter (of --tenant/--flow)."),
    tenant: str = typer.Option(None, "--tenant", "-t"),
    flow: str = typer.Option(None),
) -> None:
    """Replay dead letters through their flow; the record is re-read from its source first."""
    store = open_store()
    if dead_letter_ids:
        letters = [deadletters.get(store, i) for i in dead_letter_ids]
        missing = [i for i, letter in zip(dead_letter_ids, letters, strict=True) if letter is None]
        if missing:
            fail(f"no dead letter(s) {missing}; see `ponte deadletter list`")
    elif all_open:
        letters = deadletters.list_open(store, tenant, flow)
    else:
        fail("name dead-letter ids, or use --all")
        return
    resolved = 0
    for letter in letters:
        assert letter is not None
        outcome = replay(store, letter)
        if outcome.resolved:
            resolved += 1
            console.print(f"[green]✓[/] {escape(redact(letter.record_key))} replayed")
        else:
            console.print(f"[red]✗[/] {escape(redact(letter.record_key))}: {escape(redact(outcome.reason or ''))}")
    console.print(f"{resolved} of {len(letters)} replayed")
    if resolved < len(letters):
        raise typer.Exit(1)

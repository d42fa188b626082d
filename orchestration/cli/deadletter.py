"""`ponte deadletter`: records that failed, why, and replaying them after a fix."""

from __future__ import annotations

import json
import shlex
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from orchestration.cli.console import EXIT_FAILURES, console, emit_json, fail, friendly_errors
from pipelines.replay import ReplayOutcome, ReplaySummary, replay, replay_all
from pipelines.store import deadletters, open_store
from ponte import mask_record, redact

app = typer.Typer(
    help="Dead letters: failed records with their reason, and replay after a fix.", no_args_is_help=True
)


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _row_json(row: Any) -> dict[str, Any]:
    """A letter for ``--json``: masked as the table masks it (free text by pattern); no payload (see
    `deadletter show`)."""
    return {
        "id": row.id,
        "tenant": row.tenant,
        "flow": row.flow,
        "record_key": redact(row.record_key),
        "status": row.status,
        "kind": row.error_kind,
        "reason_code": redact(row.reason_code or row.error_kind or ""),
        "reason": redact(row.reason or ""),
        "field": redact(row.field) if row.field else None,
        "hint": redact(row.hint) if row.hint else None,
        "mapping_version": row.mapping_version,
        "failures": row.failures,
        "replay_count": row.replay_count,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _command(*words: str, **options: str | None) -> str:
    """``ponte deadletter <words> --option value ...``, quoted for a shell; options without a value left out."""
    parts = ["ponte", "deadletter", *words]
    for name, value in options.items():
        if value:
            parts += [f"--{name}", value]
    return " ".join(shlex.quote(part) for part in parts)


@app.command("list")
@friendly_errors
def list_cmd(
    tenant: str = typer.Option(None, "--tenant", "-t", help="Only this tenant."),
    flow: str = typer.Option(None, help="Only this flow (import, dispatch, backsync, assistance)."),
    reason: str = typer.Option(
        None, "--reason", help="Only letters whose reason (as --by-reason shows it) contains this text."
    ),
    by_reason: bool = typer.Option(
        False, "--by-reason", help="Count the open letters by reason: count, oldest, newest, an example."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="Letters per page."),
    offset: int = typer.Option(None, "--offset", min=0, help="Skip this many letters (instead of --page)."),
    page_number: int = typer.Option(1, "--page", min=1, help="Page to show, 1 first (pages of --limit)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (masked the same way)."),
) -> None:
    """List open dead letters, oldest first, a page at a time, or counted by reason (personal data masked)."""
    store = open_store()
    if by_reason:
        _list_by_reason(store, tenant, flow, reason, as_json)
        return
    start = offset if offset is not None else (page_number - 1) * limit
    total = deadletters.count_open(store, tenant, flow, reason)
    rows = deadletters.page(store, tenant=tenant, flow=flow, reason=reason, limit=limit, offset=start)
    if as_json:
        typer.echo(json.dumps({"total": total, "limit": limit, "offset": start,
                               "dead_letters": [_row_json(row) for row in rows]}, ensure_ascii=False))
        return
    table = Table("id", "tenant", "flow", "record", "kind", "field", "reason", "failures", "since")
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
                    str(row.failures),
                    _when(row.created_at),
                )
            )
        )
    console.print(table)
    shown = f"{start + 1}-{start + len(rows)} of " if rows and (start or len(rows) < total) else ""
    console.print(f"{shown}{total} open dead letter(s)")
    if start + len(rows) < total:
        following = _command("list", tenant=tenant, flow=flow, reason=reason)
        next_page = start // limit + 2 if offset is None else None
        more = f"--page {next_page}" if next_page else f"--offset {start + len(rows)}"
        console.print(escape(f"next: {following} --limit {limit} {more}"), soft_wrap=True)
        if not reason:
            grouped = _command("list", tenant=tenant, flow=flow)
            console.print(escape(f"by reason: {grouped} --by-reason"), soft_wrap=True)


def _list_by_reason(store: Any, tenant: str | None, flow: str | None, reason: str | None, as_json: bool) -> None:
    groups = deadletters.by_reason(store, tenant=tenant, flow=flow, reason=reason)
    total = sum(group.count for group in groups)
    if as_json:
        typer.echo(json.dumps({"total": total, "reasons": [
            {
                "tenant": group.tenant,
                "flow": group.flow,
                "reason": redact(group.reason),
                "count": group.count,
                "oldest": _iso(group.oldest),
                "newest": _iso(group.newest),
                "example": {"id": group.example_id, "record_key": redact(group.example_record)},
            }
            for group in groups
        ]}, ensure_ascii=False))
        return
    table = Table(title="open dead letters by reason")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("reason", ratio=1, overflow="fold")
    table.add_column("tenant/flow")
    table.add_column("oldest")
    table.add_column("newest")
    table.add_column("example")
    for group in groups:
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    f"{group.count:,}",
                    redact(group.reason),
                    f"{group.tenant}/{group.flow}",
                    _when(group.oldest),
                    _when(group.newest),
                    f"{group.example_id} {redact(group.example_record)}",
                )
            )
        )
    console.print(table)
    console.print(f"{total} open dead letter(s), {len(groups)} reason(s)")
    if groups:
        one = _command("list", tenant=tenant, flow=flow, reason="<part of the reason>")
        console.print(escape(f"one reason: {one}"), soft_wrap=True)
        console.print(escape(f"replay after the fix: {_command('replay', '--all', tenant=tenant, flow=flow)}"),
                      soft_wrap=True)


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
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (masked the same way)."),
) -> None:
    """Show one dead letter: reason, fix hint, mapping version and the original payload (masked)."""
    row = deadletters.get(open_store(), dead_letter_id)
    if row is None:
        fail(f"no dead letter {dead_letter_id}; see `ponte deadletter list`")
        return
    if as_json:
        # the payload masked by field first, as `render` does; emit_json masks every string by pattern
        emit_json({**_row_json(row), "payload": mask_record(row.payload)})
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
    as_json: bool = typer.Option(False, "--json", help="Print the outcomes and counts as JSON (masked)."),
) -> None:
    """Replay dead letters through their flow; the record is re-read from its source first.

    With --all, a page at a time: import letters go 1,000 to an import run, other flows' one by one.
    Exits 1 when some replays failed (their letters stay open).
    """
    store = open_store()
    if dead_letter_ids:
        letters = [deadletters.get(store, i) for i in dead_letter_ids]
        missing = [i for i, letter in zip(dead_letter_ids, letters, strict=True) if letter is None]
        if missing:
            fail(f"no dead letter(s) {missing}; see `ponte deadletter list`")
    elif all_open:
        _replay_all(store, tenant, flow, as_json)
        return
    else:
        fail("name dead-letter ids, or use --all")
        return
    resolved = 0
    outcomes: list[ReplayOutcome] = []
    for letter in letters:
        assert letter is not None
        outcome = replay(store, letter)
        outcomes.append(outcome)
        if as_json:
            resolved += outcome.resolved
        elif outcome.resolved:
            resolved += 1
            console.print(f"[green]✓[/] {escape(redact(letter.record_key))} replayed")
        else:
            console.print(f"[red]✗[/] {escape(redact(letter.record_key))}: {escape(redact(outcome.reason or ''))}")
    if as_json:
        emit_json({"total": len(letters), "resolved": resolved, "failed": len(letters) - resolved,
                   "outcomes": [_outcome_json(o) for o in outcomes]})
    else:
        console.print(f"{resolved} of {len(letters)} replayed")
    if resolved < len(letters):
        raise typer.Exit(EXIT_FAILURES)


def _outcome_json(outcome: ReplayOutcome) -> dict[str, Any]:
    return {"id": outcome.dead_letter_id, "record_key": outcome.record_key, "resolved": outcome.resolved,
            "reason": outcome.reason}


#: failures `replay --all` prints one by one before it only counts them
SHOWN_FAILURES = 20


def _replay_all(store: Any, tenant: str | None, flow: str | None, as_json: bool = False) -> None:
    shown = 0
    collected: list[ReplayOutcome] = []

    def progress(summary: ReplaySummary, outcomes: list[ReplayOutcome]) -> None:
        nonlocal shown
        if as_json:
            collected.extend(outcomes)
            return
        for outcome in outcomes:
            if not outcome.resolved and shown < SHOWN_FAILURES:
                shown += 1
                console.print(
                    f"[red]✗[/] {escape(redact(outcome.record_key))}: {escape(redact(outcome.reason or ''))}",
                    soft_wrap=True,
                )
        console.print(f"{summary.done} of {summary.total}: {summary.resolved} replayed, {summary.failed} failed")

    summary = replay_all(store, tenant=tenant, flow=flow, progress=progress)
    if as_json:
        emit_json({"total": summary.total, "resolved": summary.resolved, "failed": summary.failed,
                   "runs": summary.runs,
                   "reasons": [{"reason": r, "count": n} for r, n in summary.reasons.most_common()],
                   "outcomes": [_outcome_json(o) for o in collected]})
        if summary.failed:
            raise typer.Exit(EXIT_FAILURES)
        return
    if summary.failed:
        console.print("failed, by reason:")
        for reason, count in summary.reasons.most_common(10):
            console.print(f"  {count:>7} {escape(redact(reason))}", soft_wrap=True)
        if len(summary.reasons) > 10:
            console.print(f"  … and {len(summary.reasons) - 10} other reason(s)")
    console.print(f"{summary.resolved} of {summary.total} replayed, {summary.failed} failed")
    if summary.failed:
        console.print(escape(f"still open: {_command('list', tenant=tenant, flow=flow)} --by-reason"), soft_wrap=True)
        raise typer.Exit(EXIT_FAILURES)

"""Shared console output for CLI commands: masked, coloured, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ponte import PonteError, redact

#: no emoji codes: a record key such as "contract:abc:" is text, not ":abc:"
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes (README, "Exit codes"): done; done but some records/replays/checks failed; a usage or
#: configuration error (bad file, bad argument, an outside system refusing). Typer's usage errors are 2.
EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USER_ERROR = 2


def masked(value: Any) -> Any:
    """``value`` with every string in it masked like any CLI message (dicts and lists walked)."""
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    return redact(value) if isinstance(value, str) else value


def emit_json(data: Any) -> None:
    """Print ``data`` (masked) as one JSON document on stdout, and nothing else: for ``--json``."""
    sys.stdout.write(json.dumps(masked(data), ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def fail(error: PonteError | str, code: int = EXIT_USER_ERROR) -> None:
    """Print a user-facing error (masked) and exit; never a traceback for a user mistake."""
    text = str(error)
    err_console.print(f"[bold red]error[/]: {escape(redact(text))}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _follow_terminal_width() -> None:
    """Honour COLUMNS as it is now (consoles are created at import, before a caller may set it)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        console.width = err_console.width = int(columns)


def friendly_errors(func: F) -> F:
    """Turn Ponte's own errors into a clear message and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _follow_terminal_width()
        try:
            return func(*args, **kwargs)
        except PonteError as exc:
            fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


class RecordProgress:
    """Progress bars for a local sync: one per entity (or one for the run), each with its count, total
    (when known), rate and ETA, and "waiting for the rate budget" while a request waits for its slot
    (``connectors.runtime.ratelimit.waits_reported_to``).

    ``advance(name, n)`` is the flows' progress callback (``run_import``'s ``(entity, n)``); ``total``
    gives a bar its end, so it shows an ETA.
    """

    def __init__(self, target: Console, *, disable: bool = False, unit: str = "records") -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("[yellow]{task.fields[waiting]}"),
            console=target,
            transient=True,
            disable=disable,
        )
        self._tasks: dict[str, Any] = {}
        self._stack: Any = None

    def __enter__(self) -> RecordProgress:
        import contextlib

        from connectors.runtime import waits_reported_to

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(self._progress)
        self._stack.enter_context(waits_reported_to(self.waiting))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def task(self, name: str, total: int | None = None) -> Any:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total, rate="", waiting="")
        return self._tasks[name]

    def advance(self, name: str, n: int = 1) -> None:
        task = self.task(name)
        self._progress.update(task, advance=n, waiting="")
        speed = self._progress.tasks[task].speed
        self._progress.update(task, rate=f"{speed:.1f}/s" if speed else "")

    def waiting(self, who: str, seconds: float) -> None:
        """A request waits ``seconds`` for its slot in the rate budget (shown on every open bar)."""
        connector = who.rsplit(":", 1)[-1] or "API"
        if not self._tasks:
            self.task("starting")
        for task in self._tasks.values():
            self._progress.update(task, waiting=f"waiting for the rate budget ({connector}, {seconds:.1f} s)")

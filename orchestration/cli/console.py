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

from ponte.errors import PonteError
from ponte.redaction import redact

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

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

"""Shared console output for CLI commands: masked, coloured, and errors without tracebacks."""

from __future__ import annotations

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

#: Exit code for a user mistake (bad file, bad argument) or an outside system refusing.
EXIT_USER_ERROR = 2


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

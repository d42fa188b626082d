"""Shared console output for CLI commands: masked, coloured, and errors without tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

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
    err_console.print(f"[bold red]error[/]: {redact(text)}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn Ponte's own errors into a clear message and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PonteError as exc:
            fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]

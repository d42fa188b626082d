"""Every `ponte` command answers `--help` with its explanation (a docstring's markup once broke one)."""

from __future__ import annotations

from typing import Any

from typer.main import get_command
from typer.testing import CliRunner

from orchestration.cli.app import app


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if hasattr(command, "commands"):  # a group (typer ships its own click)
        for name, sub in command.commands.items():
            found += _paths(sub, (*prefix, name))
    return found


def test_every_command_explains_itself() -> None:
    root = get_command(app)
    paths = _paths(root)
    assert ("serve",) in paths and ("sync", "dispatch") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], terminal_width=120)
        assert result.exit_code == 0, (path, result.output, result.exception)
        assert "Usage:" in result.output, path
        if path:
            assert len(result.output.split("Usage:", 1)[1].strip().splitlines()) > 2, path



def test_an_error_prints_a_record_key_as_written_not_as_an_emoji() -> None:
    import typer

    from orchestration.cli.console import err_console, fail

    with err_console.capture() as captured:
        try:
            fail("tenant demo, record contract:abc: not found")
        except typer.Exit as exit_:
            assert exit_.exit_code == 2
    assert "record contract:abc: not found" in captured.get()

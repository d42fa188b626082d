"""Entry point of the ``ponte`` command: registers every command group.

Adding a group: write ``orchestration/cli/<group>.py`` exposing ``app = typer.Typer(...)`` (or
``register(app)`` for top-level commands) and add it to ``_GROUPS`` / ``_COMMANDS`` below.
"""

from __future__ import annotations

import importlib

import typer

from ponte import configure_logging

app = typer.Typer(
    name="ponte",
    help=(
        "Ponte integration hub: connects Sienge, CV CRM, DocuSign, Clicksign, SMTP and WhatsApp "
        "through declarative connectors, schema mappings and Dagster pipelines."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, group name); a module that does not exist yet is simply not offered.
_GROUPS: list[tuple[str, str]] = [
    ("orchestration.cli.db", "db"),
    ("orchestration.cli.schemas", "schemas"),
    ("orchestration.cli.tenant", "tenant"),
    ("orchestration.cli.connector", "connector"),
    ("orchestration.cli.sandbox", "sandbox"),
    ("orchestration.cli.mapping", "mapping"),
    ("orchestration.cli.template", "template"),
    ("orchestration.cli.sync", "sync"),
    ("orchestration.cli.deadletter", "deadletter"),
    ("orchestration.cli.envelopes", "envelopes"),
    ("orchestration.cli.state", "state"),
]
# modules exposing register(app) for top-level commands
_COMMANDS: list[str] = [
    "orchestration.cli.validate",
    "orchestration.cli.demo",
    "orchestration.cli.serve",
    "orchestration.cli.ui",
    "orchestration.cli.reconcile",
]


def _load() -> None:
    for module_name, group in _GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        app.add_typer(module.app, name=group)
    for module_name in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(app)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logs (always masked)."),
) -> None:
    configure_logging("DEBUG" if verbose else None)


_load()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

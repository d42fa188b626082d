"""`ponte db`: the state store's schema."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from orchestration.cli.console import console, friendly_errors
from pipelines.store import Store

app = typer.Typer(
    help="State store (SQLite by default, PostgreSQL via PONTE_DATABASE_URL).", no_args_is_help=True
)


def _where(store: Store) -> str:
    return make_url(store.url).render_as_string(hide_password=True)


@app.command("upgrade")
@friendly_errors
def upgrade(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or migrate the state store's tables (safe to run any number of times)."""
    store = Store()
    store.upgrade(revision)
    console.print(f"state store at {_where(store)} is at revision {store.current_revision()}")


@app.command("current")
@friendly_errors
def current() -> None:
    """Show the state store's URL (password hidden) and migration revision."""
    store = Store()
    console.print(f"{_where(store)}: revision {store.current_revision() or '(empty: run ponte db upgrade)'}")

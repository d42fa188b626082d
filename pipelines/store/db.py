"""Opening the state store: engines tuned for each backend and the migration entry point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ponte import ConfigurationError, get_logger, settings

log = get_logger("store")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: a claim's SELECT and UPDATE then run with no other writer in
        # between, which is what SKIP LOCKED gives us on PostgreSQL.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """Handle on the state store; cheap to share, one per process."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or settings.database_url()
        try:
            parsed = make_url(self.url)
        except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
            raise ConfigurationError(
                f"PONTE_DATABASE_URL is not a database URL: {exc}",
                hint="use sqlite:///path/to/ponte.db or postgresql+psycopg://user@host:5432/db",
            ) from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url)
        elif self.dialect == "postgresql":
            # prepare_threshold=None: no server-side prepared statements. Their generic plans cannot see
            # the values, and the import's id-map lookup (a 200-id IN list) then checked every id of the
            # entity row by row: 244 ms a batch at 20,000 customers, 14 ms with a plan per execution
            # (SQLAlchemy still caches the compiled SQL on our side)
            psycopg3 = parsed.get_driver_name() == "psycopg"  # psycopg2 never prepares server-side
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                        connect_args={"prepare_threshold": None} if psycopg3 else {})
        else:
            raise ConfigurationError(
                f"unsupported database backend {self.dialect!r}",
                hint="Ponte's state store runs on SQLite or PostgreSQL",
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        from alembic import command

        try:
            command.upgrade(self._alembic_config(), revision)
        except OperationalError as exc:
            raise ConfigurationError(
                f"cannot reach the state store at {make_url(self.url).render_as_string(hide_password=True)}:"
                f" {exc.orig}",
                hint="start the database or correct PONTE_DATABASE_URL",
            ) from exc

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["engine"] = self.engine
        return config

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, upgrade: bool = True) -> Store:
    """Open the store and bring its schema up to date (migrations are idempotent)."""
    store = Store(url)
    if upgrade:
        store.upgrade()
    return store

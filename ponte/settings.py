"""Process-wide settings, from the environment only (secrets never live in files)."""

from __future__ import annotations

import os
from pathlib import Path

from ponte.errors import ConfigurationError

DEFAULT_HOME = ".ponte"


def home() -> Path:
    """Where Ponte keeps local state (SQLite file, stamped PDFs): ``PONTE_HOME`` or ``./.ponte``."""
    return Path(os.environ.get("PONTE_HOME", DEFAULT_HOME)).resolve()


def database_url() -> str:
    """The state store: ``PONTE_DATABASE_URL`` or a SQLite file under :func:`home`.

    Name the PostgreSQL driver explicitly (``postgresql+psycopg://`` or ``postgresql+psycopg2://``):
    a bare ``postgresql://`` means different drivers to different libraries.
    """
    url = os.environ.get("PONTE_DATABASE_URL")
    if url:
        return url
    path = home() / "ponte.db"
    return f"sqlite:///{path}"


def project_root() -> Path:
    """The repository (or installed tree) root holding tenants/, connectors/ and mappings/."""
    env = os.environ.get("PONTE_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def tenants_dir() -> Path:
    return Path(os.environ.get("PONTE_TENANTS_DIR", project_root() / "tenants")).resolve()


def import_workers() -> int:
    """Processes that map and validate import batches beside the run: ``PONTE_IMPORT_WORKERS``, or the
    machine's cores up to 4. ``0`` keeps everything in the run's own process."""
    raw = os.environ.get("PONTE_IMPORT_WORKERS", "").strip()
    if not raw:
        return min(4, os.cpu_count() or 1)
    if not raw.isdigit():
        raise ConfigurationError(
            f"PONTE_IMPORT_WORKERS must be a whole number of processes, got {raw!r}",
            hint="set it to 0 (no workers), or to at most the machine's cores",
        )
    return int(raw)

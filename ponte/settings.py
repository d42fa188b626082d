"""Process-wide settings, from the environment only (secrets never live in files)."""

from __future__ import annotations

import os
from pathlib import Path

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

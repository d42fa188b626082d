"""The state store: SQLAlchemy 2.0 typed ORM over SQLite (default) or PostgreSQL (production)."""

from pipelines.store.db import Store, open_store
from pipelines.store.models import Base

__all__ = ["Base", "Store", "open_store"]

"""The state store: SQLAlchemy 2.0 typed ORM over SQLite (default) or PostgreSQL (production)."""

from pipelines.store import deadletters
from pipelines.store.claims import claimable
from pipelines.store.db import Store, open_store
from pipelines.store.inbox import store_event
from pipelines.store.models import Base, Envelope, EnvelopeSigner, IdMap, InboxEvent, utcnow
from pipelines.store.rate_budget import SqlRateBudget
from pipelines.store.repos import cursors_of, set_cursor

__all__ = [
    "Base",
    "Envelope",
    "EnvelopeSigner",
    "IdMap",
    "InboxEvent",
    "SqlRateBudget",
    "Store",
    "claimable",
    "cursors_of",
    "deadletters",
    "open_store",
    "set_cursor",
    "store_event",
    "utcnow",
]

"""Tables of the state store.

Every table that holds work (outbox, inbox) carries a *lease* (``claimed_by``/``claimed_until``): a
worker that dies mid-item loses its lease and another worker picks the item up, so nothing is lost
when a process is killed. Unique constraints, not application checks, are what stop doubles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from pipelines.store.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")
TS = UTCDateTime()


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)


class SyncCursor(Base):
    """Incremental position per tenant, connector and stream; advanced with the records it covers."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("tenant", "connector", "stream"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(100))
    value: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)


class IdMap(Base):
    """Cross-reference of one entity between two systems, with the hash of what was last written."""

    __tablename__ = "id_map"
    __table_args__ = (
        UniqueConstraint("tenant", "entity", "source_system", "source_id", "target_system"),
        Index("ix_id_map_target", "tenant", "entity", "target_system", "target_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(50))
    source_system: Mapped[str] = mapped_column(String(50))
    source_id: Mapped[str] = mapped_column(String(100))
    target_system: Mapped[str] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(100))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    mapping_version: Mapped[str | None] = mapped_column(String(50))
    last_synced_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class OutboxItem(Base):
    """A write to an outside system, keyed by an idempotency key derived from business identity."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_claim", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: pending -> in_flight -> done | failed (retry later) | dead (dead-lettered)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(TS)
    #: set before the call leaves, so a crash after sending is known to be "maybe sent"
    sent_at: Mapped[datetime | None] = mapped_column(TS)
    external_id: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)


def _event_id_as_given(context: Any) -> str | None:
    """A row inserted without its original event id (tests, hand-written rows) keeps its key as the id."""
    return context.get_current_parameters().get("event_id")


class InboxEvent(Base):
    """A received webhook, stored raw before it is acknowledged; deduplicated by event id."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("tenant", "connector", "event_id"),
        Index("ix_inbox_claim", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(64))
    #: the dedupe key (see ``pipelines.store.inbox.dedupe_key``): the event id itself when it has at most
    #: 200 characters, otherwise ``sha256:<hex>`` of it; never a truncation, so two ids never collapse
    event_id: Mapped[str] = mapped_column(String(200))
    #: the event id as delivered, in full (NUL and lone surrogates, which a text column cannot hold,
    #: written as backslash escapes). NULL only on a row written by a gateway older than migration 0002
    #: while an upgrade rolled out; its ``event_id`` is then the id as that gateway received it
    original_event_id: Mapped[str | None] = mapped_column(Text, default=_event_id_as_given)
    event_type: Mapped[str | None] = mapped_column(Text)
    event_time: Mapped[datetime | None] = mapped_column(TS)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    #: new -> processing -> done | failed (retry later) | dead
    status: Mapped[str] = mapped_column(String(20), default="new")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(TS)
    received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(TS)
    last_error: Mapped[str | None] = mapped_column(Text)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)


#: the one condition the store keeps a record's dead letter unique under (a literal, so that both
#: planners match a query's ``status = 'open'`` to the partial index)
DEAD_LETTER_OPEN = text("status = 'open'")


class DeadLetter(Base):
    """A record that failed, with why, the mapping version and the original payload, to replay later.

    At most one *open* letter per (tenant, flow, record): a partial unique index, so a failure is one
    upsert (no lookup first) and two writers racing cannot open two.
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_open", "tenant", "flow", "status"),
        Index(
            "uq_dead_letters_open_record",
            "tenant",
            "flow",
            "record_key",
            unique=True,
            sqlite_where=DEAD_LETTER_OPEN,
            postgresql_where=DEAD_LETTER_OPEN,
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    flow: Mapped[str] = mapped_column(String(50))
    record_key: Mapped[str] = mapped_column(String(200))
    error_kind: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(200))
    hint: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mapping_version: Mapped[str | None] = mapped_column(String(50))
    run_id: Mapped[str | None] = mapped_column(String(100))
    #: open -> replayed (succeeded); a record that fails again updates its open letter (failures + 1).
    #: superseded: a duplicate open letter that migration 0003 closed (the newest one stayed open)
    status: Mapped[str] = mapped_column(String(20), default="open")
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    #: what failures group under: kind, field and the message with its values taken out
    #: (``pipelines.store.deadletters.reason_code``); NULL only on rows an older release wrote meanwhile
    reason_code: Mapped[str | None] = mapped_column(String(300))
    #: how many times the record failed while this letter was open
    failures: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)


class Envelope(Base):
    """One document sent for signature; a state machine (see pipelines.dispatch)."""

    __tablename__ = "envelopes"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_envelopes_contract", "tenant", "contract_id"),
        Index("ix_envelopes_provider", "provider", "provider_envelope_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    contract_id: Mapped[str] = mapped_column(String(100))
    document_name: Mapped[str] = mapped_column(String(300), default="")
    document_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(300))
    provider: Mapped[str] = mapped_column(String(50))
    provider_envelope_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), default="draft")
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    sent_at: Mapped[datetime | None] = mapped_column(TS)
    completed_at: Mapped[datetime | None] = mapped_column(TS)
    last_event_at: Mapped[datetime | None] = mapped_column(TS)
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_path: Mapped[str | None] = mapped_column(String(500))
    verification_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)

    signers: Mapped[list[EnvelopeSigner]] = relationship(
        back_populates="envelope", cascade="all, delete-orphan", order_by="EnvelopeSigner.routing_order"
    )


class EnvelopeSigner(Base):
    __tablename__ = "envelope_signers"
    __table_args__ = (UniqueConstraint("envelope_id", "role", "routing_order"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    envelope_id: Mapped[int] = mapped_column(ForeignKey("envelopes.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(50))
    routing_order: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20), default="email")
    #: what the signer does (the tenant's chain): sign, approve or receive_copy; the row's final status
    #: says which happened (signed, approved, copy_delivered: pipelines/backsync/machine.py)
    interaction: Mapped[str] = mapped_column(String(20), default="sign", server_default="sign")
    provider_recipient_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30), default="created")
    signed_at: Mapped[datetime | None] = mapped_column(TS)
    notified_at: Mapped[datetime | None] = mapped_column(TS)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    envelope: Mapped[Envelope] = relationship(back_populates="signers")


class AuditEntry(Base):
    """Every write and decision, with lineage: source record, mapping version, run."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "tenant", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    flow: Mapped[str] = mapped_column(String(50))
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(200))
    source_record: Mapped[str | None] = mapped_column(String(200))
    mapping_version: Mapped[str | None] = mapped_column(String(50))
    run_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PackageLedgerEntry(Base):
    """Envelope-package consumption: one row per envelope sent (or refunded with delta -1)."""

    __tablename__ = "package_ledger"
    __table_args__ = (UniqueConstraint("tenant", "envelope_key", "delta"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    package_id: Mapped[str] = mapped_column(String(100))
    envelope_key: Mapped[str] = mapped_column(String(300))
    delta: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class VerifiedEmail(Base):
    """Contract-manager e-mails and their verification state (a code sent by SMTP)."""

    __tablename__ = "verified_emails"
    __table_args__ = (UniqueConstraint("tenant", "email"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(200))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(TS)
    verified_at: Mapped[datetime | None] = mapped_column(TS)


class RateBudget(Base):
    """A token bucket per tenant and connector, shared by every process through the database."""

    __tablename__ = "rate_budgets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    capacity: Mapped[float] = mapped_column(Float)
    refill_per_second: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # epoch seconds, float precision

"""The list of electronic signatures: a tenant's envelopes, newest first, with filters and counts.

One query for ``ponte envelopes list`` and the dispatch asset's metadata. Nothing personal leaves here:
per envelope the contract, the document's name, its status, how many signers are done of how many, the
provider and its envelope id, and when it was sent and completed (the signers themselves, masked, are
``ponte envelopes show``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, select
from sqlalchemy.orm import selectinload

from pipelines.dispatch.package import LOCAL_TZ
from pipelines.store.db import Store
from pipelines.store.models import Envelope
from ponte import DataError
from schemas.canonical import EnvelopeStatus, SignerStatus

#: an envelope still out for signature
PENDING = frozenset({EnvelopeStatus.draft, EnvelopeStatus.sent, EnvelopeStatus.delivered})
#: what ``--status`` accepts: every envelope status, and ``pending`` for the three above
STATUSES = ("pending", *(s.value for s in EnvelopeStatus))
#: the order of the counts line
COUNT_ORDER = ("completed", "pending", "declined", "voided", "expired")
#: signer statuses of someone who did what they were asked (pipelines/backsync/machine.py SIGNER_DONE)
SIGNER_DONE = frozenset({SignerStatus.signed.value, "approved", "copy_delivered"})


@dataclass(frozen=True)
class EnvelopeFilter:
    statuses: tuple[str, ...] = ()
    since: date | None = None
    provider: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": list(self.statuses) or None,
            "since": self.since.isoformat() if self.since else None,
            "provider": self.provider,
        }


def parse_filter(
    statuses: list[str] | None = None, since: str | None = None, provider: str | None = None
) -> EnvelopeFilter:
    """The filters as typed by a person; DataError (a clear message, no traceback) for a bad one."""
    wanted = tuple(dict.fromkeys(s.strip().lower() for s in statuses or [] if s.strip()))
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        raise DataError(
            f"unknown envelope status {', '.join(map(repr, unknown))}",
            field="--status",
            hint=f"use one of: {', '.join(STATUSES)}",
        )
    day = None
    if since:
        try:
            day = date.fromisoformat(since.strip())
        except ValueError:
            raise DataError(
                f"{since.strip()!r} is not a day", field="--since", hint="write it as YYYY-MM-DD, e.g. 2026-11-01"
            ) from None
    return EnvelopeFilter(wanted, day, (provider or "").strip() or None)


def _when() -> ColumnElement[Any]:
    """When an envelope went out (a draft that never did: when it was made)."""
    return func.coalesce(Envelope.sent_at, Envelope.created_at)


def _conditions(tenant: str, flt: EnvelopeFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Envelope.tenant == tenant]
    if flt.statuses:
        wanted = set(flt.statuses) - {"pending"}
        if "pending" in flt.statuses:
            wanted |= {s.value for s in PENDING}
        where.append(Envelope.status.in_(sorted(wanted)))
    if flt.since:
        # the developer's calendar day, like the package's dates
        start = datetime.combine(flt.since, time.min, tzinfo=LOCAL_TZ)
        where.append(_when() >= literal(start, type_=Envelope.sent_at.type))
    if flt.provider:
        where.append(Envelope.provider == flt.provider)
    return where


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class EnvelopeList:
    tenant: str
    filters: EnvelopeFilter
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    envelopes: list[dict[str, Any]] = field(default_factory=list)

    def counts_line(self) -> str:
        """``3 envelopes: 1 completed, 2 pending`` (only the statuses that occur)."""
        noun = "envelope" if self.total == 1 else "envelopes"
        parts = [f"{self.counts[k]} {k}" for k in COUNT_ORDER if self.counts.get(k)]
        parts += [f"{n} {k}" for k, n in sorted(self.counts.items()) if k not in COUNT_ORDER and n]
        return f"{self.total} {noun}" + (": " + ", ".join(parts) if parts else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "filters": self.filters.as_dict(),
            "total": self.total,
            "shown": len(self.envelopes),
            "counts": self.counts,
            "envelopes": self.envelopes,
        }


def status_counts(store: Store, tenant: str, flt: EnvelopeFilter | None = None) -> dict[str, int]:
    """Envelopes by status (draft, sent and delivered together as ``pending``)."""
    with store.session() as session:
        rows = session.execute(
            select(Envelope.status, func.count())
            .where(and_(*_conditions(tenant, flt or EnvelopeFilter())))
            .group_by(Envelope.status)
        ).all()
    counts: dict[str, int] = {}
    for status, n in rows:
        key = "pending" if status in PENDING else str(status)
        counts[key] = counts.get(key, 0) + int(n)
    return counts


def list_envelopes(store: Store, tenant: str, flt: EnvelopeFilter | None = None, limit: int | None = None
                   ) -> EnvelopeList:
    """The tenant's envelopes that match ``flt``, newest first (at most ``limit``; counts cover all)."""
    flt = flt or EnvelopeFilter()
    counts = status_counts(store, tenant, flt)
    with store.session() as session:
        query = (
            select(Envelope)
            .where(and_(*_conditions(tenant, flt)))
            .options(selectinload(Envelope.signers))
            .order_by(_when().desc(), Envelope.id.desc())
        )
        if limit:
            query = query.limit(limit)
        rows = [
            {
                "envelope": env.id,
                "contract": env.contract_id,
                "document": env.document_name,
                "status": env.status,
                "pending": env.status in PENDING,
                "signers_signed": sum(1 for s in env.signers if s.status in SIGNER_DONE),
                "signers_total": len(env.signers),
                "provider": env.provider,
                "provider_envelope_id": env.provider_envelope_id,
                "sent_at": _iso(env.sent_at),
                "completed_at": _iso(env.completed_at),
            }
            for env in session.scalars(query)
        ]
    return EnvelopeList(tenant, flt, sum(counts.values()), counts, rows)

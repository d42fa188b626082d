"""The envelope package: what the developer bought, what was used, and the notices as it runs out.

Consumption is the ledger (``package_ledger``): one +1 row per envelope the provider actually
created, written in the same transaction as the envelope row and keyed by the envelope's idempotency
key, so a retry or a replay can never count an envelope twice. Sending stops with a clear error when
the package is used up or outside its validity; the responsible e-mails hear at 80 %, 95 % and 100 %
(``warn_at_percent``): one notice per threshold, lowest first, each through the outbox under its own key
(:func:`notice_key`, sent by ``DispatchRun._warn_package``), so a later run or a rerun after a crash
never sends it again. :func:`summary` is
the package as ``ponte tenant package`` and the Dagster check show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pipelines.store.db import Store
from pipelines.store.models import OutboxItem, PackageLedgerEntry, utcnow
from ponte import ConfigurationError, get_logger
from schemas import EnvelopePackage, TenantConfig

log = get_logger("dispatch.package")
#: the package's dates are the developer's calendar days
LOCAL_TZ = ZoneInfo("America/Sao_Paulo")


class PackageError(ConfigurationError):
    """The envelope package does not allow another envelope (used up, expired, not yet valid, none)."""


@dataclass(frozen=True)
class PackageState:
    package_id: str | None
    size: int | None  # None = unlimited
    used: int
    valid_from: date | None
    valid_until: date | None

    @property
    def remaining(self) -> int | None:
        return None if self.size is None else max(0, self.size - self.used)

    @property
    def percent(self) -> float | None:
        return None if not self.size else 100.0 * self.used / self.size

    def as_dict(self) -> dict[str, Any]:
        return {
            "package": self.package_id,
            "size": self.size or "unlimited",
            "used": self.used,
            "remaining": "unlimited" if self.remaining is None else self.remaining,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def used(session: Session, tenant: str, package_id: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(PackageLedgerEntry.delta), 0)).where(
            PackageLedgerEntry.tenant == tenant, PackageLedgerEntry.package_id == package_id
        )
    )
    return int(total or 0)


def state(store: Store, tenant: TenantConfig) -> PackageState:
    package = tenant.options.envelope_package
    if package is None:
        return PackageState(None, None, 0, None, None)
    with store.session() as session:
        count = used(session, tenant.id, package.id)
    size = None if package.size == "unlimited" else int(package.size)
    return PackageState(package.id, size, count, package.valid_from, package.valid_until)


def _package(tenant: TenantConfig) -> EnvelopePackage:
    package = tenant.options.envelope_package
    if package is None:
        raise PackageError(
            "the tenant has no envelope package, so no envelope may be sent",
            tenant=tenant.id,
            field="options.envelope_package",
            hint="add options.envelope_package (id, size, valid_from, valid_until) to the tenant file",
        )
    return package


def ensure_available(store: Store, tenant: TenantConfig, on: date | None = None) -> PackageState:
    """Raise PackageError unless one more envelope fits in a package valid ``on`` (today)."""
    package = _package(tenant)
    day = on or today()
    if day < package.valid_from:
        raise PackageError(
            f"envelope package {package.id} is valid only from {package.valid_from.isoformat()}",
            tenant=tenant.id,
            field="options.envelope_package.valid_from",
            hint="wait for the package to start or correct its dates",
        )
    if day > package.valid_until:
        raise PackageError(
            f"envelope package {package.id} expired on {package.valid_until.isoformat()}; nothing was sent",
            tenant=tenant.id,
            field="options.envelope_package.valid_until",
            hint="buy a new envelope package and put it in the tenant file",
        )
    current = state(store, tenant)
    if current.size is not None and current.used >= current.size:
        raise PackageError(
            f"envelope package {package.id} is used up ({current.used} of {current.size} envelopes);"
            " nothing was sent",
            tenant=tenant.id,
            field="options.envelope_package.size",
            hint="buy a larger package (or 'unlimited') and update the tenant file",
        )
    return current


def consume(session: Session, store: Store, tenant: TenantConfig, envelope_key: str) -> bool:
    """Count one envelope (in the caller's transaction); False when this key was already counted."""
    package = _package(tenant)
    insert = postgresql.insert if store.is_postgres else sqlite.insert
    result = session.execute(
        insert(PackageLedgerEntry)
        .values(tenant=tenant.id, package_id=package.id, envelope_key=envelope_key, delta=1, at=utcnow())
        .on_conflict_do_nothing(index_elements=["tenant", "envelope_key", "delta"])
    )
    return bool(result.rowcount)


def thresholds(package: EnvelopePackage | None) -> list[int]:
    """The package's warning percentages, lowest first, each once (a repeated or non-positive one in the
    tenant file changes nothing)."""
    return sorted({p for p in package.warn_at_percent if p > 0}) if package is not None else []


def thresholds_reached(tenant: TenantConfig, current: PackageState) -> list[int]:
    """The warning percentages (80, 95, 100 by default) the package has reached, lowest first."""
    package = tenant.options.envelope_package
    if package is None or current.size is None:
        return []
    return [p for p in thresholds(package) if current.used * 100 >= p * current.size]


def warning_text(tenant: TenantConfig, current: PackageState, percent: int) -> tuple[str, str]:
    subject = f"Pacote de envelopes {current.package_id}: {percent}% utilizado"
    body = (
        f"O pacote de envelopes {current.package_id} de {tenant.name} atingiu {percent}% de uso: "
        f"{current.used} de {current.size} envelopes enviados; restam {current.remaining}.\n"
        f"Validade: até {current.valid_until.isoformat() if current.valid_until else '-'}.\n"
    )
    if percent >= 100:
        body += "Nenhum envelope novo será enviado até que um novo pacote seja configurado.\n"
    return subject, body


# ------------------------------------------------------------------------------- consumption notices

NOTICE_ACTION = "package_warning"


def notice_key(tenant_id: str, package_id: str, percent: int) -> str:
    """The outbox key of one threshold's notice: one per tenant, package and threshold, ever."""
    return f"{tenant_id}:package:{package_id}:warn:{percent}"


def notice_status(store: Store, key: str) -> str | None:
    """The outbox status of a notice's key (None: never tried), read before write_once claims it."""
    with store.session() as session:
        return session.scalar(select(OutboxItem.status).where(OutboxItem.idempotency_key == key))


def notice_finder(
    prior: str | None, key: str, facts: dict[str, Any]
) -> Callable[[], tuple[str | None, dict[str, Any]] | None]:
    """The outbox ``find`` of a notice: at most once.

    write_once asks it only after an attempt that set ``sent_at``. After a clean failure (``failed``,
    ``dead``: the SMTP server refused or could not be reached) the notice is sent again. An attempt
    whose process died while sending (the row still ``in_flight``) counts as sent: an SMTP server cannot
    be asked whether it took a message, and a threshold is notified once, never twice. The Dagster check
    ``envelope_package`` and the run's stop at 100 % are the backstop for that rare lost notice.
    """

    def find() -> tuple[str | None, dict[str, Any]] | None:
        if prior != "in_flight":
            return None
        log.warning("package notice %s: an earlier attempt died while sending; not sent again", key)
        return None, {**facts, "unsure": True, "at": utcnow().isoformat()}

    return find


def notices(store: Store, tenant_id: str, package_id: str) -> list[dict[str, Any]]:
    """The consumption notices of one package: threshold, state (sent, unsure, failed...) and when."""
    prefix = notice_key(tenant_id, package_id, 0)[:-1]
    with store.session() as session:
        rows = list(
            session.scalars(
                select(OutboxItem).where(
                    OutboxItem.tenant == tenant_id,
                    OutboxItem.action == NOTICE_ACTION,
                    OutboxItem.idempotency_key.startswith(prefix, autoescape=True),
                )
            )
        )
    found = []
    for row in rows:
        result = row.result or {}
        if row.status == "done":
            how = "unsure" if result.get("unsure") else "sent"
        else:
            how = {"in_flight": "sending", "pending": "pending"}.get(row.status, "failed")
        found.append({
            "percent": int((row.payload or {}).get("percent") or row.idempotency_key.rsplit(":", 1)[-1]),
            "status": how,
            "at": result.get("at") or (row.updated_at.isoformat() if row.updated_at else None),
            "error": row.last_error if how == "failed" else None,
        })
    return sorted(found, key=lambda n: n["percent"])


def summary(store: Store, tenant: TenantConfig, on: date | None = None) -> dict[str, Any]:
    """The tenant's package as a person reads it: size, used, remaining, percent, dates, days left,
    whether it can send today (``status``), the thresholds and the notices already sent."""
    package = tenant.options.envelope_package
    if package is None:
        return {"tenant": tenant.id, "package": None, "status": "none", "notices": []}
    day = on or today()
    current = state(store, tenant)
    percent = None if current.percent is None else round(current.percent, 1)
    expired, not_yet_valid = day > package.valid_until, day < package.valid_from
    used_up = current.size is not None and current.used >= current.size
    status = "expired" if expired else "not_yet_valid" if not_yet_valid else "used_up" if used_up else "ok"
    levels = thresholds(package)
    return {
        "tenant": tenant.id,
        "package": package.id,
        "size": "unlimited" if current.size is None else current.size,
        "used": current.used,
        "remaining": "unlimited" if current.remaining is None else current.remaining,
        "percent": percent,
        "valid_from": package.valid_from.isoformat(),
        "valid_until": package.valid_until.isoformat(),
        # days the package can still be used, today included (0 once expired)
        "days_left": 0 if expired else (package.valid_until - max(day, package.valid_from)).days + 1,
        "starts_in_days": (package.valid_from - day).days if not_yet_valid else 0,
        "expired": expired,
        "not_yet_valid": not_yet_valid,
        "used_up": used_up,
        "status": status,
        "warn_at_percent": levels,
        "reached": thresholds_reached(tenant, current),
        "notices": notices(store, tenant.id, package.id),
    }

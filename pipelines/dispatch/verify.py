"""Contract-manager e-mail verification: nothing is sent for a tenant until one manager proved the
address is theirs, by reading a code Ponte sent by SMTP.

Only the code's hash is stored (with the tenant and e-mail in the hash, so a code is useless
elsewhere), and it expires; confirming compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select

from connectors import Email, SmtpConnector
from pipelines.store.db import Store
from pipelines.store.models import VerifiedEmail, utcnow
from ponte import ConfigurationError, DataError, get_logger
from schemas import TenantConfig

log = get_logger("dispatch.verify")
CODE_TTL = timedelta(minutes=30)


class UnverifiedEmailError(ConfigurationError):
    """No contract-manager e-mail of the tenant is verified, so nothing may be sent."""


def _hash(tenant: str, email: str, code: str) -> str:
    return hashlib.sha256(f"{tenant}\x00{email.lower()}\x00{code}".encode()).hexdigest()


def _manager(tenant: TenantConfig, email: str) -> str:
    wanted = email.strip().lower()
    managers = [str(m).lower() for m in tenant.options.contract_managers]
    if wanted not in managers:
        raise ConfigurationError(
            f"{email} is not a contract manager of this tenant",
            tenant=tenant.id,
            field="options.contract_managers",
            hint=f"add it to options.contract_managers (now: {', '.join(managers) or 'none'})",
        )
    return wanted


def send_code(store: Store, tenant: TenantConfig, email: str, smtp: SmtpConnector) -> str:
    """E-mail a fresh 6-digit code to a contract manager; returns the code (for the caller's tests)."""
    address = _manager(tenant, email)
    code = f"{secrets.randbelow(1_000_000):06d}"
    with store.session() as session:
        row = session.scalars(
            select(VerifiedEmail).where(VerifiedEmail.tenant == tenant.id, VerifiedEmail.email == address)
        ).one_or_none()
        if row is None:
            row = VerifiedEmail(tenant=tenant.id, email=address)
            session.add(row)
        row.code_hash = _hash(tenant.id, address, code)
        row.code_expires_at = utcnow() + CODE_TTL
    smtp.send(
        Email(
            to=[address],
            subject=f"Ponte: código de verificação {code}",
            text=(
                f"Seu código de verificação para enviar contratos de {tenant.name} é {code}.\n"
                f"Ele vale por {int(CODE_TTL.total_seconds() // 60)} minutos.\n"
                "Se você não pediu este código, ignore esta mensagem.\n"
            ),
        )
    )
    log.info("verification code sent to %s for tenant %s", address, tenant.id)
    return code


def confirm_code(store: Store, tenant: TenantConfig, email: str, code: str) -> None:
    """Mark the e-mail verified if ``code`` is the last one sent and still valid; else DataError."""
    address = _manager(tenant, email)
    with store.session() as session:
        row = session.scalars(
            select(VerifiedEmail).where(VerifiedEmail.tenant == tenant.id, VerifiedEmail.email == address)
        ).one_or_none()
        if row is None or row.code_hash is None:
            raise DataError(
                f"no code was sent to {address}",
                tenant=tenant.id,
                hint="run `ponte tenant verify-email` without --code first",
            )
        if row.code_expires_at is None or row.code_expires_at < utcnow():
            raise DataError(
                f"the code sent to {address} has expired", tenant=tenant.id, hint="ask for a new code"
            )
        if not hmac.compare_digest(row.code_hash, _hash(tenant.id, address, code.strip())):
            raise DataError(f"wrong code for {address}", tenant=tenant.id, hint="check the latest e-mail")
        row.verified_at = utcnow()
        row.code_hash = None
        row.code_expires_at = None


def verified_managers(store: Store, tenant: TenantConfig) -> list[str]:
    managers = {str(m).lower() for m in tenant.options.contract_managers}
    with store.session() as session:
        rows = session.scalars(
            select(VerifiedEmail.email).where(
                VerifiedEmail.tenant == tenant.id, VerifiedEmail.verified_at.is_not(None)
            )
        ).all()
    return sorted(e for e in rows if e in managers)


def require_verified_manager(store: Store, tenant: TenantConfig) -> None:
    if not verified_managers(store, tenant):
        raise UnverifiedEmailError(
            "no contract-manager e-mail is verified, so no envelope may be sent",
            tenant=tenant.id,
            field="options.contract_managers",
            hint=f"run `ponte tenant verify-email --tenant {tenant.id} --email <manager>` and confirm the code",
        )

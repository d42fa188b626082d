"""Invitations Ponte sends itself (tenant ``notifications.by: ponte``): e-mail by SMTP or WhatsApp.

Chained signing means each signer is invited only when every earlier routing order has signed.
:func:`notify_next_signers` is called right after dispatch (for the first order) and by back-sync after
it applies a signature event (for the next ones). It is idempotent: a signer is invited once
(``notified_at``), and each invitation is an outbox write keyed by envelope, role and order, so two
workers racing on the same event, or a replayed webhook, never invite twice.

The link in an invitation is one that exists (``pipelines/dispatch/signing_links.py``): for DocuSign
the gateway's ``/sign/<token>``, which opens a fresh recipient view of the embedded signer on each
click; for a provider without such a link (Clicksign) no invitation is sent and the contract gets a
dead letter saying so.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from connectors.smtp import Email
from mappings import MappingContext, load_mapping
from pipelines.dispatch.connections import ConnectorSet
from pipelines.dispatch.signers import ChainMember, due_for_invitation
from pipelines.dispatch.signing_links import signing_link
from pipelines.outbox import write_once
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import Envelope, EnvelopeSigner, utcnow
from pipelines.store.repos import audit
from ponte.errors import ConfigurationError, DataError
from ponte.logging import get_logger
from schemas.canonical.notification import Notification
from schemas.tenant import TenantConfig

log = get_logger("dispatch.notify")
FLOW = "dispatch"
LIVE_ENVELOPE = frozenset({"sent", "delivered"})

#: what notify_next_signers accepts as "connectors": a ConnectorSet, a mapping key -> connector, a
#: callable key -> connector, or None (opened from the tenant and closed afterwards)
Connectors = ConnectorSet | Mapping[str, Any] | Callable[[str], Any] | None


@dataclass(frozen=True)
class Invitation:
    envelope_id: int
    role: str
    routing_order: int
    channel: str
    #: "sent" (now), "already_done" (an earlier call sent it)
    how: str
    provider_message_id: str | None = None


def _brl(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{amount:,.2f}"
    return "R$ " + text.replace(",", "_").replace(".", ",").replace("_", ".")


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """Amount, monthly fee and duration, when the contract has them (some notifications want them)."""
    lines = []
    if summary.get("value") not in (None, ""):
        lines.append(f"Valor do contrato: {_brl(summary['value'])}")
    if summary.get("monthly_fee") not in (None, ""):
        lines.append(f"Parcela mensal: {_brl(summary['monthly_fee'])}")
    if summary.get("duration_months") not in (None, ""):
        lines.append(f"Prazo: {summary['duration_months']} meses")
    return lines


def _getter(
    connectors: Connectors, tenant: TenantConfig, store: Store
) -> tuple[Callable[[str], Any], Callable[[], None]]:
    if connectors is None:
        owned = ConnectorSet(tenant, store)
        return owned.get, owned.close
    if isinstance(connectors, ConnectorSet):
        return connectors.get, lambda: None
    if isinstance(connectors, Mapping):
        return connectors.__getitem__, lambda: None
    return connectors, lambda: None


def _email(
    tenant: TenantConfig, envelope: Envelope, signer: EnvelopeSigner, link: str, until: datetime | None = None
) -> Email:
    document = envelope.document_name.removesuffix(".pdf")
    subject = tenant.options.notifications.email_subject.replace("{document}", document)
    lines = [
        f"Olá, {signer.name}.",
        "",
        f'{tenant.name} enviou o documento "{document}" para você assinar eletronicamente.',
        *summary_lines(envelope.details.get("summary") or {}),
        "",
        f"Assine em: {link}",
        "",
        f"Este convite vale até {(until or envelope.expires_at):%d/%m/%Y}."
        if (until or envelope.expires_at)
        else "",
    ]
    return Email(
        to=[signer.email or ""],
        subject=subject,
        text="\n".join(lines).rstrip() + "\n",
        headers={"X-Ponte-Envelope": envelope.idempotency_key},
    )


def _whatsapp_record(tenant: TenantConfig, signer: EnvelopeSigner, link: str) -> dict[str, Any]:
    notification = Notification(
        tenant=tenant.id,
        channel="whatsapp",
        purpose="signing_invitation",
        to_phone=signer.phone,
        template=tenant.options.notifications.whatsapp_template,
        parameters={"nome": signer.name, "link": link},
    )
    ctx = MappingContext(tenant=tenant)
    return dict(
        load_mapping("whatsapp/notification_to_template").apply(notification.model_dump(mode="json"), ctx)
    )


def _no_link(store: Store, tenant: TenantConfig, envelope: Envelope, exc: DataError, run_id: str | None) -> None:
    """No link exists for this envelope's signers: a dead letter on the contract, no invitation."""
    exc.context(tenant=tenant.id, record=f"contract:{envelope.contract_id}")
    deadletters.put(
        store,
        tenant=tenant.id,
        flow=FLOW,
        record_key=f"contract:{envelope.contract_id}",
        error=exc,
        payload={"idreserva": (envelope.details or {}).get("reservation_id"), "envelope": envelope.id},
        run_id=run_id,
    )
    log.warning("envelope %s: nobody invited: %s", envelope.id, exc)


def notify_next_signers(
    store: Store,
    tenant: TenantConfig,
    envelope_id: int,
    connectors: Connectors = None,
    *,
    run_id: str | None = None,
) -> list[Invitation]:
    """Invite the signers whose turn it is (every earlier order signed) and who were not invited yet.

    Does nothing when the provider invites (``notifications.by: provider``), when the envelope is not
    live (completed, declined, voided, expired) or when someone refused. Returns the invitations made.
    """
    if tenant.options.notifications.by != "ponte":
        return []
    with store.session() as session:
        envelope = session.get(Envelope, envelope_id)
        if envelope is None or envelope.tenant != tenant.id:
            raise ConfigurationError(f"no envelope {envelope_id} for tenant {tenant.id}", tenant=tenant.id)
        if envelope.status not in LIVE_ENVELOPE:
            return []
        signers = list(
            session.scalars(select(EnvelopeSigner).where(EnvelopeSigner.envelope_id == envelope_id))
        )
        members = [ChainMember(s.id, s.routing_order, s.status, s.notified_at is not None) for s in signers]
        due_ids = set(due_for_invitation(members))
        due = [s for s in signers if s.id in due_ids]
        session.expunge_all()
    if not due:
        return []
    get, close = _getter(connectors, tenant, store)
    worker = f"{socket.gethostname()}:notify"
    made: list[Invitation] = []
    try:
        for signer in sorted(due, key=lambda s: (s.routing_order, s.role)):
            try:
                link, until = signing_link(tenant, envelope, signer)
            except DataError as exc:  # the provider has no link Ponte could send: never make one up
                _no_link(store, tenant, envelope, exc, run_id)
                break
            key = f"{envelope.idempotency_key}:invite:{signer.role}:{signer.routing_order}"
            if signer.channel == "whatsapp":
                record = _whatsapp_record(tenant, signer, link)
                whatsapp = get("whatsapp")

                def send(
                    record: dict[str, Any] = record, whatsapp: Any = whatsapp
                ) -> tuple[str | None, dict[str, Any]]:
                    result = whatsapp.call("send_template", record)
                    return result.id, {}

                connector = "whatsapp"
            else:
                email = _email(tenant, envelope, signer, link, until)
                smtp = get("smtp")

                def send(email: Email = email, smtp: Any = smtp) -> tuple[str | None, dict[str, Any]]:  # type: ignore[misc]
                    return str(smtp.send(email)), {}

                connector = "smtp"
            outcome = write_once(
                store,
                tenant=tenant.id,
                connector=connector,
                action="signing_invitation",
                key=key,
                payload={"envelope": envelope.id, "role": signer.role},
                send=send,
                find=None,
                worker=worker,
                run_id=run_id,
            )
            with store.session() as session:
                row = session.get(EnvelopeSigner, signer.id)
                if row is not None and row.notified_at is None:
                    row.notified_at = utcnow()
                audit(
                    session,
                    tenant=tenant.id,
                    flow=FLOW,
                    action="signer_invited",
                    entity="envelope",
                    entity_id=str(envelope.id),
                    source_record=f"contract:{envelope.contract_id}",
                    run_id=run_id,
                    details={
                        "role": signer.role,
                        "routing_order": signer.routing_order,
                        "channel": signer.channel,
                        "how": outcome.how,
                        "message_id": outcome.external_id,
                    },
                )
            made.append(
                Invitation(
                    envelope.id,
                    signer.role,
                    signer.routing_order,
                    signer.channel,
                    outcome.how,
                    outcome.external_id,
                )
            )
            log.info(
                "invited %s (order %d) of envelope %s by %s",
                signer.role,
                signer.routing_order,
                envelope.id,
                signer.channel,
            )
    finally:
        close()
    return made

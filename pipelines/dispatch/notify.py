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

Each invitation carries the sale's summary (amount, monthly instalment, duration: the envelope's
``details["summary"]``) in the tenant's words (``notifications.summary_text``) when the contract has
all of it; otherwise no summary line at all. WhatsApp templates take a fixed number of parameters, so a
summary goes out only through the tenant's ``whatsapp_summary_template`` (docs/dispatch.md).

Copy recipients (interaction ``receive_copy``) are not in the signing chain: Ponte never invites them
and never waits on them (the provider delivers their copy), and an approval counts as done like a
signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from connectors import Email
from mappings import MappingContext, load_mapping
from pipelines.connections import TenantConnectors
from pipelines.dispatch.signers import ChainMember, due_for_invitation
from pipelines.dispatch.signing_links import signing_link
from pipelines.outbox import WriteOutcome, write_once
from pipelines.store import deadletters
from pipelines.store.claims import worker_name
from pipelines.store.db import Store
from pipelines.store.models import Envelope, EnvelopeSigner, utcnow
from pipelines.store.repos import audit
from ponte import ConfigurationError, DataError, get_logger
from schemas import TenantConfig
from schemas.canonical import Notification

log = get_logger("dispatch.notify")
FLOW = "dispatch"
LIVE_ENVELOPE = frozenset({"sent", "delivered"})

#: what notify_next_signers accepts as "connectors": a TenantConnectors, a mapping key -> connector, a
#: callable key -> connector, or None (opened from the tenant and closed afterwards)
ConnectorsArg = TenantConnectors | Mapping[str, Any] | Callable[[str], Any] | None


@dataclass(frozen=True)
class Invitation:
    envelope_id: int
    role: str
    routing_order: int
    channel: str
    #: "sent" (now), "already_done" (an earlier call sent it)
    how: str
    provider_message_id: str | None = None


#: the summary's keys, in the order a summary WhatsApp template takes them (after name and link)
SUMMARY_KEYS = ("valor_total", "parcela", "prazo_meses")
#: the interaction of a recipient who only receives a copy (schemas.tenant.Interaction)
RECEIVE_COPY = "receive_copy"


#: keys of the summary envelopes recorded before it was formatted at dispatch -> (key now, formatter)
_LEGACY_SUMMARY: dict[str, tuple[str, Callable[[str], str]]] = {
    "value": ("valor_total", lambda v: _brl(v)),
    "monthly_fee": ("parcela", lambda v: _brl(v)),
    "duration_months": ("prazo_meses", str),
}


def _brl(value: str) -> str:
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return value
    return "R$ " + f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def _summary(envelope: Envelope) -> dict[str, str]:
    """The envelope's summary (valor_total, parcela, prazo_meses, already formatted), blanks left out;
    an envelope recorded by an earlier release (value, monthly_fee, duration_months) is read too."""
    raw = (envelope.details or {}).get("summary") or {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        text = str(value).strip() if value is not None else ""
        if not text:
            continue
        if key in _LEGACY_SUMMARY:
            new_key, formatter = _LEGACY_SUMMARY[key]
            out.setdefault(new_key, formatter(text))
        else:
            out[str(key)] = text
    return out


def summary_line(tenant: TenantConfig, envelope: Envelope) -> str | None:
    """The invitation's summary line in the tenant's words, or None (no summary, or part of it missing)."""
    return tenant.options.notifications.summary_line(_summary(envelope))


def chain_members(signers: list[EnvelopeSigner]) -> list[ChainMember]:
    """The signing chain as the invitation rules see it (signers.due_for_invitation: copy recipients
    neither sign nor hold anyone up; an approval or a delivered copy counts as done)."""
    return [
        ChainMember(s.id, s.routing_order, s.status, s.notified_at is not None, s.interaction or "sign")
        for s in signers
    ]


def _getter(
    connectors: ConnectorsArg, tenant: TenantConfig, store: Store
) -> tuple[Callable[[str], Any], Callable[[], None]]:
    if connectors is None:
        owned = TenantConnectors(tenant, store)
        return owned.get, owned.close
    if isinstance(connectors, TenantConnectors):
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
        f'{tenant.name} enviou o documento "{document}" para você {_verb(signer)} eletronicamente.',
        *([line] if (line := summary_line(tenant, envelope)) else []),
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


def _verb(signer: EnvelopeSigner) -> str:
    return "aprovar" if signer.interaction == "approve" else "assinar"


def _whatsapp_record(
    tenant: TenantConfig, envelope: Envelope, signer: EnvelopeSigner, link: str
) -> dict[str, Any]:
    """The template message: the tenant's summary template (name, link, valor_total, parcela,
    prazo_meses) when it has one and the contract has the whole summary, else the plain one (name,
    link). Each is a fixed list of body text parameters, as the approved template declares them."""
    settings = tenant.options.notifications
    summary = _summary(envelope)
    parameters: dict[str, str] = {"nome": signer.name, "link": link}
    template = settings.whatsapp_template
    if settings.whatsapp_summary_template and all(summary.get(k) for k in SUMMARY_KEYS):
        template = settings.whatsapp_summary_template
        parameters.update({k: summary[k] for k in SUMMARY_KEYS})
    notification = Notification(
        tenant=tenant.id,
        channel="whatsapp",
        purpose="signing_invitation",
        to_phone=signer.phone,
        template=template,
        parameters=parameters,
    )
    ctx = MappingContext(tenant=tenant)
    return dict(
        load_mapping("whatsapp/notification_to_template").apply(notification.model_dump(mode="json"), ctx)
    )


def _no_link(
    store: Store, tenant: TenantConfig, envelope: Envelope, exc: DataError, run_id: str | None
) -> None:
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
    connectors: ConnectorsArg = None,
    *,
    run_id: str | None = None,
) -> list[Invitation]:
    """Invite the signers whose turn it is (every earlier order signed) and who were not invited yet.

    Does nothing when the provider invites (``notifications.by: provider``), when the envelope is not
    live (completed, declined, voided, expired) or when someone refused. Returns the invitations made.
    """
    if tenant.options.notifications.by != "ponte":
        return []
    found = _due_signers(store, tenant, envelope_id)
    if found is None:
        return []
    envelope, due = found
    get, close = _getter(connectors, tenant, store)
    worker = worker_name()
    made: list[Invitation] = []
    try:
        for signer in sorted(due, key=lambda s: (s.routing_order, s.role)):
            try:
                link, until = signing_link(tenant, envelope, signer)
            except DataError as exc:  # the provider has no link Ponte could send: never make one up
                _no_link(store, tenant, envelope, exc, run_id)
                break
            connector, send = _invitation_sender(tenant, envelope, signer, link, until, get)
            outcome = write_once(
                store,
                tenant=tenant.id,
                connector=connector,
                action="signing_invitation",
                key=f"{envelope.idempotency_key}:invite:{signer.role}:{signer.routing_order}",
                payload={"envelope": envelope.id, "role": signer.role},
                send=send,
                find=None,
                worker=worker,
                run_id=run_id,
            )
            _mark_invited(store, tenant, envelope, signer, outcome, run_id)
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


def _due_signers(
    store: Store, tenant: TenantConfig, envelope_id: int
) -> tuple[Envelope, list[EnvelopeSigner]] | None:
    """The live envelope and its signers due for an invitation (detached), or None when nobody is due."""
    with store.session() as session:
        envelope = session.get(Envelope, envelope_id)
        if envelope is None or envelope.tenant != tenant.id:
            raise ConfigurationError(f"no envelope {envelope_id} for tenant {tenant.id}", tenant=tenant.id)
        if envelope.status not in LIVE_ENVELOPE:
            return None
        signers = list(
            session.scalars(select(EnvelopeSigner).where(EnvelopeSigner.envelope_id == envelope_id))
        )
        due_ids = set(due_for_invitation(chain_members(signers)))
        due = [s for s in signers if s.id in due_ids]
        session.expunge_all()
    return (envelope, due) if due else None


def _invitation_sender(
    tenant: TenantConfig,
    envelope: Envelope,
    signer: EnvelopeSigner,
    link: str,
    until: datetime | None,
    get: Callable[[str], Any],
) -> tuple[str, Callable[[], tuple[str | None, dict[str, Any]]]]:
    """The connector key and the send of one invitation: a WhatsApp template or an e-mail by SMTP."""
    if signer.channel == "whatsapp":
        record = _whatsapp_record(tenant, envelope, signer, link)
        whatsapp = get("whatsapp")

        def send_template() -> tuple[str | None, dict[str, Any]]:
            result = whatsapp.call("send_template", record)
            return result.id, {}

        return "whatsapp", send_template
    email = _email(tenant, envelope, signer, link, until)
    smtp = get("smtp")

    def send_email() -> tuple[str | None, dict[str, Any]]:
        return str(smtp.send(email)), {}

    return "smtp", send_email


def _mark_invited(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    signer: EnvelopeSigner,
    outcome: WriteOutcome,
    run_id: str | None,
) -> None:
    """Record the invitation: the signer's ``notified_at`` (first time only) and an audit row."""
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


#: signer statuses that mean "this person already signed (or approved) the document"
ALREADY_SIGNED = frozenset({"signed", "approved"})


def _changed_email(tenant: TenantConfig, old: Envelope, signer: EnvelopeSigner, version: str) -> Email:
    document = old.document_name.removesuffix(".pdf")
    text = "\n".join(
        [
            f"Olá, {signer.name}.",
            "",
            f'O documento "{document}" que você {"aprovou" if signer.interaction == "approve" else "assinou"} '
            f"eletronicamente foi alterado por {tenant.name} depois do envio.",
            f"A versão anterior foi cancelada e não tem mais validade; a nova versão ({version}) será enviada "
            "para assinatura na mesma ordem, e você receberá um novo convite quando for a sua vez.",
        ]
    )
    return Email(
        to=[signer.email or ""],
        subject=f"Documento alterado: {document}",
        text=text + "\n",
        headers={"X-Ponte-Envelope": old.idempotency_key},
    )


def notify_document_changed(
    store: Store,
    tenant: TenantConfig,
    old_envelope_id: int,
    version: str,
    connectors: ConnectorsArg = None,
    *,
    run_id: str | None = None,
) -> list[Invitation]:
    """Tell the signers who already signed a replaced envelope that its document changed (an e-mail).

    Each notice is an outbox write keyed ``<old key>:changed:<role>:<order>``, so it goes once however
    often this is called (dispatch calls it after the new version is recorded, and again on a later run
    in case SMTP was down). Only signers Ponte recorded as signed are told (back-sync's record); one
    without an e-mail (a WhatsApp-only signer) is logged and skipped: no approved WhatsApp template says
    this (docs/dispatch.md, "Document versions"). ``version`` is the new version's short hash.
    """
    with store.session() as session:
        old = session.get(Envelope, old_envelope_id)
        if old is None or old.tenant != tenant.id:
            raise ConfigurationError(f"no envelope {old_envelope_id} for tenant {tenant.id}", tenant=tenant.id)
        signed = [s for s in old.signers if s.status in ALREADY_SIGNED]
        session.expunge_all()
    if not signed:
        return []
    get, close = _getter(connectors, tenant, store)
    worker = worker_name()
    made: list[Invitation] = []
    try:
        for signer in sorted(signed, key=lambda s: (s.routing_order, s.role)):
            if not signer.email:
                log.warning("envelope %s: %s signed the replaced version but has no e-mail; not told",
                            old.id, signer.role)
                continue
            email = _changed_email(tenant, old, signer, version)
            smtp = get("smtp")

            def send(email: Email = email, smtp: Any = smtp) -> tuple[str | None, dict[str, Any]]:
                return str(smtp.send(email)), {}

            outcome = write_once(
                store,
                tenant=tenant.id,
                connector="smtp",
                action="document_changed_notice",
                key=f"{old.idempotency_key}:changed:{signer.role}:{signer.routing_order}",
                payload={"envelope": old.id, "role": signer.role, "version": version},
                send=send,
                find=None,
                worker=worker,
                run_id=run_id,
            )
            if outcome.how == "sent":
                with store.session() as session:
                    audit(
                        session,
                        tenant=tenant.id,
                        flow=FLOW,
                        action="document_changed_notice",
                        entity="envelope",
                        entity_id=str(old.id),
                        source_record=f"contract:{old.contract_id}",
                        run_id=run_id,
                        details={"role": signer.role, "routing_order": signer.routing_order,
                                 "version": version, "message_id": outcome.external_id},
                    )
            made.append(Invitation(old.id, signer.role, signer.routing_order, "email", outcome.how,
                                   outcome.external_id))
    finally:
        close()
    return made

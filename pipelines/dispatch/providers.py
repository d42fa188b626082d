"""The canonical envelope sent through DocuSign or Clicksign, exactly once.

Each provider's create goes through the outbox (``write_once``) keyed by the envelope's idempotency
key; before anything is sent again after a crash or an unsure timeout, the envelope is looked up at the
provider by that key. DocuSign: the ``ponte_key`` custom field and ``GET /envelopes?custom_field=``,
both in the eSignature swagger. Clicksign: the envelope ``metadata`` and ``GET /envelopes?filter[name]=``,
neither in Clicksign's Postman collection (UNCONFIRMED), so that lookup trusts "not there" only when
the listing shows it can tell; otherwise the contract is dead-lettered for a person to check, never
sent a second time (:func:`find_clicksign_envelope`, docs/dispatch.md).
Clicksign builds an envelope in several calls (document, signers, requirements, activation): each is
its own outbox step, so a crash in the middle resumes where it stopped instead of starting over.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from connectors.runtime.client import Connector
from connectors.runtime.errors import AmbiguousWriteError
from mappings import MappingContext, load_mapping
from pipelines.dispatch.documents import Document
from pipelines.outbox import write_once
from pipelines.store.db import Store
from pipelines.store.models import OutboxItem
from ponte.errors import ConfigurationError, DataError, NotFoundError, TransientError
from schemas.canonical.signing import Envelope
from schemas.tenant import TenantConfig, docusign_idv_hint


@dataclass
class Created:
    """What the provider holds after dispatch."""

    provider_envelope_id: str
    #: role -> the provider's id of that signer
    recipient_ids: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)
    #: "sent" (created now), "found" (existed at the provider), "already_done" (outbox had it)
    how: str = "sent"


#: a hook the crash test uses to die at precise points ("after_provider_call", ...)
CrashHook = Callable[[str], None]


def _noop(_: str) -> None:
    return None


#: the field of the dead letter for a DocuSign contract whose signers must show a document or a selfie
#: while the tenant names no ID Verification workflow
IDV_FIELD = "options.evidence.docusign_idv_workflow_id"


def require_identity_verification(tenant: TenantConfig, envelope: Envelope) -> None:
    """Refuse a DocuSign envelope whose signers must show a document photo or a selfie when the tenant
    names no ID Verification workflow: DocuSign checks those only through one, and an envelope without
    the check would drop the requirement silently. Clicksign takes them as requirements of its own."""
    connector = tenant.connectors.get(tenant.options.signing_provider)
    if connector is None or connector.spec != "docusign" or tenant.options.evidence.docusign_idv_workflow_id:
        return
    asked: dict[str, list[str]] = {}
    for signer in envelope.signers:
        for wanted, what in ((signer.document_photo_required, "a document photo"),
                             (signer.selfie_required, "a selfie")):
            if wanted:
                asked.setdefault(what, []).append(signer.role)
    if not asked:
        return
    needs = "; ".join(f"{', '.join(roles)} must show {what}" for what, roles in asked.items())
    raise DataError(
        f"{needs} (the tenant's default or the contract's override), which DocuSign checks only through "
        "an ID Verification workflow, and the tenant's DocuSign account has none configured; nothing was "
        "sent",
        record=f"contract {envelope.contract_id}",
        field=IDV_FIELD,
        hint=f"{docusign_idv_hint(tenant.id)}; then `ponte deadletter replay` the contract",
    )


def docusign_definition(envelope: Envelope, document: Document, ctx: MappingContext) -> dict[str, Any]:
    """The mapping's envelope definition with the computed positions as sign-here tabs.

    The mapping places signatures by anchor text; Ponte knows the exact positions (bottom of the
    chosen pages, right to left), so each signer's tabs are replaced by positioned ones (DocuSign
    positions are pixels at 72 dpi from the top-left corner, i.e. PDF points).
    """
    b64 = base64.b64encode(document.content).decode()
    definition = dict(
        load_mapping("docusign/envelope_to_definition").apply(
            envelope.model_dump(mode="json"), ctx.with_params(document_base64=b64)
        )
    )
    by_role: dict[str, list[dict[str, str]]] = {}
    for pos in envelope.positions:
        by_role.setdefault(pos.role, []).append(
            {
                "documentId": "1",
                "pageNumber": str(pos.page),
                "xPosition": str(round(pos.x)),
                "yPosition": str(round(pos.y)),
            }
        )
    for signer in definition["recipients"]["signers"]:
        tabs = by_role.get(signer["roleName"])
        if tabs:
            signer["tabs"] = {"signHereTabs": tabs}
    return definition


def send_docusign(
    store: Store,
    conn: Connector,
    envelope: Envelope,
    document: Document,
    ctx: MappingContext,
    *,
    worker: str,
    run_id: str | None = None,
    crash: CrashHook = _noop,
    lease_seconds: float = 120,
) -> Created:
    definition = docusign_definition(envelope, document, ctx)
    key = envelope.idempotency_key

    def send() -> tuple[str | None, dict[str, Any]]:
        result = conn.call("create_envelope", definition, idempotency_key=key)
        crash("after_provider_call")
        return result.id, {"status": (result.data or {}).get("status"), "existing": result.existing}

    def find() -> tuple[str | None, dict[str, Any]] | None:
        found = conn.find_existing("create_envelope", definition, idempotency_key=key)
        return (
            None
            if found is None
            else (found.id, {"status": (found.data or {}).get("status"), "existing": True})
        )

    outcome = write_once(
        store,
        tenant=envelope.tenant,
        connector=conn.name,
        action="create_envelope",
        key=key,
        payload={"contract_id": envelope.contract_id, "document_sha256": envelope.document_sha256},
        send=send,
        find=find,
        worker=worker,
        run_id=run_id,
        lease_seconds=lease_seconds,
    )
    crash("after_outbox_done")
    if not outcome.external_id:
        raise ConfigurationError("DocuSign answered without an envelopeId", tenant=envelope.tenant)
    recipients = {s["roleName"]: str(s["recipientId"]) for s in definition["recipients"]["signers"]}
    return Created(
        outcome.external_id,
        recipients,
        {
            "tabs": sum(
                len(s.get("tabs", {}).get("signHereTabs", [])) for s in definition["recipients"]["signers"]
            )
        },
        how=outcome.how,
    )


def clicksign_auths(signer: dict[str, Any]) -> list[str]:
    """Clicksign authentication requirements of one canonical signer (channel + evidence)."""
    auths = ["whatsapp" if signer.get("channel") == "whatsapp" else "email"]
    if signer.get("selfie_required"):
        auths.append("selfie")
    if signer.get("document_photo_required"):
        auths.append("official_document")
    return auths


def send_clicksign(
    store: Store,
    conn: Connector,
    envelope: Envelope,
    document: Document,
    ctx: MappingContext,
    *,
    provider_notifies: bool,
    worker: str,
    run_id: str | None = None,
    crash: CrashHook = _noop,
    lease_seconds: float = 120,
    person_checked: bool = False,
) -> Created:
    """``person_checked``: a person looked at Clicksign after a dead letter said an earlier create was
    unsure and the lookup could not tell (the replay of that letter); see :func:`find_clicksign_envelope`."""
    b64 = base64.b64encode(document.content).decode()
    canonical = envelope.model_dump(mode="json")
    requests = load_mapping("clicksign/envelope_to_requests").apply(
        canonical, ctx.with_params(document_base64=b64)
    )
    key = envelope.idempotency_key
    tenant = envelope.tenant
    body = dict(requests["envelope"]["data"]["attributes"])
    body["metadata"] = {**body.get("metadata", {}), "ponte_key": key}

    def step(
        action: str, step_key: str, record: dict[str, Any], find: Callable[[], Any] | None = None
    ) -> str:
        def send() -> tuple[str | None, dict[str, Any]]:
            result = conn.call(action, record)
            return result.id, {}

        outcome = write_once(
            store,
            tenant=tenant,
            connector=conn.name,
            action=action,
            key=step_key,
            payload={"contract_id": envelope.contract_id},
            send=send,
            find=find,
            worker=worker,
            run_id=run_id,
            lease_seconds=lease_seconds,
        )
        return str(outcome.external_id or "")

    def find_envelope() -> tuple[str | None, dict[str, Any]] | None:
        return find_clicksign_envelope(
            store, conn, tenant, key, body["name"], person_checked=person_checked
        )

    def send_envelope() -> tuple[str | None, dict[str, Any]]:
        # the spec gives create_envelope no lookup of its own (a name is not a key), so an unsure attempt
        # comes back as AmbiguousWriteError and is looked up here, by Ponte's key, before any resend
        for _attempt in range(3):
            try:
                result = conn.call("create_envelope", body)
            except AmbiguousWriteError:
                found = find_envelope()
                if found is not None:
                    return found
                continue
            crash("after_provider_call")
            return result.id, {}
        raise TransientError(
            "Clicksign's envelope create stayed unsure after 3 attempts (each looked up first)",
            tenant=tenant,
            hint="the next run looks it up again before anything is sent",
        )

    try:
        created = write_once(
            store,
            tenant=tenant,
            connector=conn.name,
            action="create_envelope",
            key=key,
            payload={"contract_id": envelope.contract_id, "document_sha256": envelope.document_sha256},
            send=send_envelope,
            find=find_envelope,
            worker=worker,
            run_id=run_id,
            lease_seconds=lease_seconds,
        )
    except CreateUnconfirmed as exc:
        _release(store, key, worker, exc.message)
        raise
    envelope_id = str(created.external_id)
    crash("after_outbox_done")

    def lookup(action: str, record: dict[str, Any]) -> Callable[[], Any]:
        def find() -> tuple[str | None, dict[str, Any]] | None:
            found = conn.find_existing(action, record)
            return None if found is None else (found.id, {})

        return find

    doc = {**requests["document"]["data"]["attributes"], "envelope_id": envelope_id}
    document_id = step("add_document", f"{key}:document", doc, lookup("add_document", doc))
    signer_ids: dict[str, str] = {}
    for raw, signer in zip(requests["signers"], canonical["signers"], strict=True):
        attrs = {**raw["data"]["attributes"], "envelope_id": envelope_id}
        if not provider_notifies:
            attrs["communicate_events"] = {
                **attrs.get("communicate_events", {}),
                "signature_request": "none",
                "signature_reminder": "none",
            }
        role = signer["role"]
        signer_ids[role] = step("add_signer", f"{key}:signer:{role}", attrs, lookup("add_signer", attrs))
        sid = signer_ids[role]
        base = {"envelope_id": envelope_id, "document_id": document_id, "signer_id": sid}
        agree = {**base, "action": "agree", "role": "sign"}
        step("add_requirement", f"{key}:req:{role}:agree", agree, lookup("add_requirement", agree))
        for auth in clicksign_auths(signer):
            evidence = {**base, "action": "provide_evidence", "auth": auth}
            step("add_requirement", f"{key}:req:{role}:{auth}", evidence, lookup("add_requirement", evidence))
    conn.call("activate_envelope", {"envelope_id": envelope_id, "deadline_at": body.get("deadline_at")})
    if provider_notifies:
        notice = {"envelope_id": envelope_id}
        step("notify", f"{key}:notify", notice, lookup("notify", notice))
    return Created(
        envelope_id,
        signer_ids,
        {"document_id": document_id, "signer_ids": signer_ids, "positions_in": "details"},
        how=created.how,
    )


#: the field of the dead letter for an unsure Clicksign create the lookup could not confirm or rule out;
#: replaying that letter is a person's confirmation (flow.replay_dispatch)
UNCONFIRMED_FIELD = "clicksign.create_envelope"
#: envelopes read, at most, to look one up (a listing that ignores the name filter lists them all)
LOOKUP_LIMIT = 1000


class CreateUnconfirmed(DataError):
    """An unsure Clicksign create that the lookup can neither confirm nor rule out: a person checks."""


def find_clicksign_envelope(
    store: Store,
    conn: Connector,
    tenant: str,
    key: str,
    name: str,
    *,
    person_checked: bool = False,
) -> tuple[str | None, dict[str, Any]] | None:
    """Find the Clicksign envelope an unsure create may have made, by Ponte's key; None when it is not there.

    The listing (``GET /envelopes?filter[name]=``) and envelope ``metadata`` are not in Clicksign's
    Postman collection (UNCONFIRMED), so the answer is trusted only as far as the listing shows it can
    be: an envelope whose metadata carries ``key`` is ours; "not there" holds when no draft with this
    name lacks a Ponte key (only a draft can be an unrecorded create: Ponte activates an envelope after
    recording its id; another version's envelope carries its own key) and the listing applied the name
    filter and ended within :data:`LOOKUP_LIMIT`. Anything else raises :class:`CreateUnconfirmed`, a
    dead letter, instead of risking a second envelope. ``person_checked`` (the replay of that letter)
    accepts "not there" from a listing that ignores the filter or is missing, never past a listed draft.
    """
    try:
        items = list(conn.read("envelopes", params={"name": name}, limit=LOOKUP_LIMIT))
    except (NotFoundError, DataError) as exc:  # no such listing, or it refuses the filter
        if person_checked:
            return None
        raise _unconfirmed(store, key, name, f"the envelope listing answered: {exc.message}") from None
    drafts: list[str] = []
    unfiltered = False
    for item in items:
        attributes = item.get("attributes") or {}
        metadata = attributes.get("metadata") if isinstance(attributes.get("metadata"), dict) else {}
        if key in (metadata.get("ponte_key"), metadata.get("ponte_idempotency_key")):
            return str(item["id"]), {"existing": True}
        if attributes.get("name") != name:
            unfiltered = True  # the name filter was not applied: this is not the whole answer
        elif not metadata.get("ponte_key") and attributes.get("status", "draft") == "draft":
            drafts.append(str(item.get("id")))
    if drafts:
        raise _unconfirmed(
            store, key, name,
            f"the listing shows draft envelope(s) named {name!r} without Ponte's key: {', '.join(drafts)}",
            drafts,
        )
    if person_checked:
        return None
    if unfiltered:
        raise _unconfirmed(store, key, name, "the listing ignored the name filter, so it may not show every "
                                             "envelope")
    if len(items) >= LOOKUP_LIMIT:
        raise _unconfirmed(store, key, name, f"the listing has {LOOKUP_LIMIT} or more envelopes by that name")
    return None


def _unconfirmed(
    store: Store, key: str, name: str, why: str, drafts: list[str] | None = None
) -> CreateUnconfirmed:
    with store.session() as session:
        sent_at = session.scalar(select(OutboxItem.sent_at).where(OutboxItem.idempotency_key == key))
    when = f" at {sent_at.isoformat(timespec='seconds')} UTC" if sent_at else ""
    return CreateUnconfirmed(
        f"Clicksign may already have created this contract's envelope: the create was sent{when} but its "
        f"answer never reached Ponte's records, and Clicksign's envelope lookup cannot tell ({why}); "
        "nothing more was sent",
        field=UNCONFIRMED_FIELD,
        hint=f"in Clicksign's panel, look for a draft envelope named {name!r} created{when or ' then'} (no "
        "document, no signer: nobody was invited to it) and delete it if it is there; then `ponte "
        "deadletter replay` this letter: the replay is your confirmation, and the envelope is created once",
        details={"idempotency_key": key, "envelope_name": name, "drafts": drafts or []},
    )


def _release(store: Store, key: str, worker: str, error: str) -> None:
    """Give up this worker's claim on the create's outbox row (kept unsure: the next try looks up again)."""
    with store.session() as session:
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.idempotency_key == key, OutboxItem.claimed_by == worker)
            .values(status="failed", claimed_by=None, claimed_until=None, last_error=error[:2000])
        )


def signing_link(provider: str, base_url: str, envelope_id: str, recipient_id: str) -> str:
    """Where a signer signs, for invitations Ponte sends itself.

    A provider-hosted signing page per signer; in production DocuSign needs an embedded recipient view
    (see docs/dispatch.md), which the sandbox does not model, so the link is built from the ids.
    """
    if provider == "clicksign":
        return f"{base_url.rstrip('/')}/sign/{envelope_id}/{recipient_id}"
    return f"{base_url.rstrip('/')}/signing/{envelope_id}?recipient={recipient_id}"

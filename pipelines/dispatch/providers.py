"""The canonical envelope sent through DocuSign or Clicksign, exactly once.

Each provider's create goes through the outbox (``write_once``) keyed by the envelope's idempotency
key; before anything is sent again after a crash or an unsure timeout, the envelope is looked up at the
provider by that key (DocuSign: the ``ponte_key`` custom field; Clicksign: the envelope metadata).
Clicksign builds an envelope in several calls (document, signers, requirements, activation): each is
its own outbox step, so a crash in the middle resumes where it stopped instead of starting over.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.runtime.client import Connector
from mappings import MappingContext, load_mapping
from pipelines.dispatch.documents import Document
from pipelines.outbox import write_once
from pipelines.store.db import Store
from ponte.errors import ConfigurationError
from schemas.canonical.signing import Envelope


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
) -> Created:
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
        for item in conn.read("envelopes", params={"name": body["name"]}):
            if (item.get("attributes", {}).get("metadata") or {}).get("ponte_key") == key:
                return str(item["id"]), {}
        return None

    def send_envelope() -> tuple[str | None, dict[str, Any]]:
        result = conn.call("create_envelope", body)
        crash("after_provider_call")
        return result.id, {}

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


def signing_link(provider: str, base_url: str, envelope_id: str, recipient_id: str) -> str:
    """Where a signer signs, for invitations Ponte sends itself.

    A provider-hosted signing page per signer; in production DocuSign needs an embedded recipient view
    (see docs/dispatch.md), which the sandbox does not model, so the link is built from the ids.
    """
    if provider == "clicksign":
        return f"{base_url.rstrip('/')}/sign/{envelope_id}/{recipient_id}"
    return f"{base_url.rstrip('/')}/signing/{envelope_id}?recipient={recipient_id}"

"""The canonical envelope sent through DocuSign or Clicksign, exactly once.

Each provider's create goes through :func:`pipelines.dispatch.identity.create_once` (the rule "never a
second envelope" and how it holds are stated there); this module says how each provider is asked.
DocuSign: the mapping ``docusign/envelope_to_definition`` builds the whole envelope definition
(:func:`docusign_definition` only gathers its inputs); the connector spec adds Ponte's key as the one
custom field ``ponte_key`` and looks it up with ``GET /envelopes?custom_field=``, both in the eSignature
swagger. Clicksign: the mapping ``clicksign/envelope_to_requests`` writes the key once, as the
envelope's ``metadata.ponte_key``, found again with ``GET /envelopes?filter[name]=``; neither the
metadata nor the listing is in Clicksign's Postman collection (UNCONFIRMED), so that lookup trusts "not
there" only when the listing shows it can tell; otherwise the contract is dead-lettered for a person to
check, never sent a second time (:func:`find_clicksign_envelope`, docs/dispatch.md).
Clicksign builds an envelope in several calls (document, signers, requirements, activation): each is
its own outbox step, so a crash in the middle resumes where it stopped instead of starting over.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from connectors.runtime import Connector
from mappings import MappingContext, load_mapping
from pipelines.dispatch import versions
from pipelines.dispatch.documents import Document
from pipelines.dispatch.identity import (
    UNCONFIRMED_FIELD,
    CrashHook,
    CreateUnconfirmed,
    create_once,
    no_crash,
    sent_when,
)
from pipelines.outbox import WriteOutcome, write_once
from pipelines.store.db import Store
from ponte import ConfigurationError, ConflictError, DataError, NotFoundError
from schemas import TenantConfig, docusign_idv_hint
from schemas.canonical import Envelope


@dataclass
class Created:
    """What the provider holds after dispatch."""

    provider_envelope_id: str
    #: role -> the provider's id of that signer
    recipient_ids: dict[str, str]
    details: dict[str, Any] = field(default_factory=dict)
    #: "sent" (created now), "found" (existed at the provider), "already_done" (outbox had it)
    how: str = "sent"




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
        for wanted, what in (
            (signer.document_photo_required, "a document photo"),
            (signer.selfie_required, "a selfie"),
        ):
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


#: DocuSign's recipient kinds (the swagger's EnvelopeRecipients); which signer goes to which kind is the
#: mapping's (sign, approve, receive_copy), read back from the definition here
DOCUSIGN_KINDS = ("signers", "certifiedDeliveries", "carbonCopies")


def summary_message(envelope: Envelope, ctx: MappingContext) -> str | None:
    """The sale's summary in the tenant's words, for the provider's own invitation (None: no summary)."""
    if ctx.tenant is None:
        return None
    return ctx.tenant.options.notifications.summary_line(envelope.summary)


def docusign_definition(envelope: Envelope, document: Document, ctx: MappingContext) -> dict[str, Any]:
    """The envelope definition DocuSign is sent, built whole by the mapping ``docusign/envelope_to_definition``.

    Dispatch only gathers the mapping's inputs: the canonical envelope (its signers with their
    interactions, and the signature positions computed when the document was made,
    pipelines/documents/placement.py), the document as base64 and the sale's summary in the tenant's
    words (``emailBlurb``; none when there is no summary). The mapping sorts the signers into DocuSign's
    recipient kinds and places their tabs. Ponte's idempotency key is not in the definition: the
    connector spec's ``create_envelope`` adds it as the one custom field ``ponte_key``, beside the lookup
    that searches for it.
    """
    params = ctx.with_params(
        document_base64=base64.b64encode(document.content).decode(),
        email_blurb=summary_message(envelope, ctx) or None,
    )
    mapping = load_mapping("docusign/envelope_to_definition")
    return dict(mapping.apply(envelope.model_dump(mode="json"), params))


def docusign_recipients(definition: dict[str, Any]) -> dict[str, str]:
    """role -> recipientId over every recipient kind of a definition."""
    return {
        r["roleName"]: str(r["recipientId"])
        for kind in DOCUSIGN_KINDS
        for r in definition["recipients"].get(kind) or []
    }


def docusign_kinds(definition: dict[str, Any]) -> dict[str, str]:
    """role -> the recipient kind the mapping put it in (signers, certifiedDeliveries, carbonCopies)."""
    return {r["roleName"]: kind for kind in DOCUSIGN_KINDS for r in definition["recipients"].get(kind) or []}


def send_docusign(
    store: Store,
    conn: Connector,
    envelope: Envelope,
    document: Document,
    ctx: MappingContext,
    *,
    worker: str,
    run_id: str | None = None,
    crash: CrashHook = no_crash,
    lease_seconds: float = 120,
) -> Created:
    definition = docusign_definition(envelope, document, ctx)
    key = envelope.idempotency_key

    def attempt() -> tuple[str | None, dict[str, Any]]:
        result = conn.call("create_envelope", definition, idempotency_key=key)
        return result.id, {"status": (result.data or {}).get("status"), "existing": result.existing}

    def find() -> tuple[str | None, dict[str, Any]] | None:
        found = conn.find_existing("create_envelope", definition, idempotency_key=key)
        return (
            None
            if found is None
            else (found.id, {"status": (found.data or {}).get("status"), "existing": True})
        )

    outcome = create_once(
        store,
        conn,
        tenant=envelope.tenant,
        key=key,
        action="create_envelope",
        payload={"contract_id": envelope.contract_id, "document_sha256": envelope.document_sha256},
        attempt=attempt,
        find=find,
        worker=worker,
        run_id=run_id,
        lease_seconds=lease_seconds,
        crash=crash,
    )
    if not outcome.external_id:
        raise ConfigurationError("DocuSign answered without an envelopeId", tenant=envelope.tenant)
    kinds = docusign_kinds(definition)
    return Created(
        outcome.external_id,
        docusign_recipients(definition),
        {
            "tabs": sum(
                len(s.get("tabs", {}).get("signHereTabs", [])) for s in definition["recipients"]["signers"]
            ),
            "recipient_kinds": {s.role: kinds[s.role] for s in envelope.signers if s.role in kinds},
        },
        how=outcome.how,
    )


#: the signature watcher kind for a copy recipient: the collection's only value ("Criar Observador da
#: Assinatura"); whether Clicksign also sends the watcher the signed copy at the end is UNCONFIRMED
CLICKSIGN_WATCHER_KIND = "all_steps"


def clicksign_positions(
    envelope: Envelope, role: str, page_size: tuple[float, float]
) -> list[dict[str, Any]]:
    """One position per chosen page for ``role``, as Clicksign's positioned requirement takes them.

    Ponte's positions are PDF points of the block's top-left corner, from the page's top-left
    (pipelines/documents/placement.py). Clicksign's are proportions of the page, x from the left edge and
    y from the top edge, each between 0 and 1, the page as a string from "1" (UNCONFIRMED: not in the
    Postman collection). Which point of the mark Clicksign puts there is not said either, so Ponte gives
    the centre of its block: the mark lands inside the block however Clicksign anchors a mark smaller
    than it.
    """
    width, height = page_size
    out = []
    for pos in envelope.positions:
        if pos.role != role:
            continue
        x = min(max((pos.x + pos.width / 2) / width, 0.0), 1.0)
        y = min(max((pos.y + pos.height / 2) / height, 0.0), 1.0)
        out.append({"page": str(pos.page), "position": [round(x, 4), round(y, 4)]})
    return out


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
    crash: CrashHook = no_crash,
    lease_seconds: float = 120,
    person_checked: bool = False,
) -> Created:
    """Create the envelope at Clicksign once, then its document, recipients and requirements, activate
    it and (when Clicksign invites) notify, each step once (:class:`_ClicksignSteps`).

    ``person_checked``: a person looked at Clicksign after a dead letter said an earlier create was
    unsure and the lookup could not tell (the replay of that letter); see :func:`find_clicksign_envelope`."""
    b64 = base64.b64encode(document.content).decode()
    canonical = envelope.model_dump(mode="json")
    requests = load_mapping("clicksign/envelope_to_requests").apply(
        canonical, ctx.with_params(document_base64=b64)
    )
    key = envelope.idempotency_key
    body = requests["envelope"]["data"]["attributes"]  # the mapping's metadata carries the key (ponte_key)
    created = _create_clicksign_envelope(
        store, conn, envelope, body, worker=worker, run_id=run_id, crash=crash, lease_seconds=lease_seconds,
        person_checked=person_checked,
    )
    envelope_id = str(created.external_id)
    steps = _ClicksignSteps(store, conn, envelope, worker, run_id, lease_seconds)
    doc = {**requests["document"]["data"]["attributes"], "envelope_id": envelope_id}
    document_id = steps.run("add_document", f"{key}:document", doc)
    positioned = conn.values.get("signature_positions", "none") == "coordinates"
    signer_ids: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for raw, signer in zip(requests["signers"], canonical["signers"], strict=True):
        ids = {"envelope_id": envelope_id, "document_id": document_id}
        signer_ids[signer["role"]], kinds[signer["role"]] = _add_clicksign_recipient(
            steps, raw, signer, ids, page_size=document.page_size, provider_notifies=provider_notifies,
            positioned=positioned,
        )
    conn.call("activate_envelope", {"envelope_id": envelope_id, "deadline_at": body.get("deadline_at")})
    if provider_notifies:
        notice: dict[str, Any] = {"envelope_id": envelope_id}
        message = summary_message(envelope, ctx)
        if message:  # "Notificar Envelope": {message} is the collection's notification text
            notice["message"] = message
        steps.run("notify", f"{key}:notify", notice)
    return Created(
        envelope_id,
        signer_ids,
        {
            "document_id": document_id,
            "signer_ids": signer_ids,
            "recipient_kinds": kinds,
            "positions_in": "clicksign" if positioned else "details",
        },
        how=created.how,
    )


def _create_clicksign_envelope(
    store: Store,
    conn: Connector,
    envelope: Envelope,
    body: dict[str, Any],
    *,
    worker: str,
    run_id: str | None,
    crash: CrashHook,
    lease_seconds: float,
    person_checked: bool,
) -> WriteOutcome:
    """The envelope itself, created once under the envelope's key (:func:`create_once`)."""
    key = envelope.idempotency_key
    tenant = envelope.tenant

    def find_envelope() -> tuple[str | None, dict[str, Any]] | None:
        return find_clicksign_envelope(store, conn, tenant, key, body["name"], person_checked=person_checked)

    def create_envelope() -> tuple[str | None, dict[str, Any]]:
        # the spec gives create_envelope no lookup of its own (a name is not a key): an unsure attempt
        # comes back as AmbiguousWriteError and create_once looks it up by Ponte's key before any resend
        result = conn.call("create_envelope", body)
        return result.id, {}

    return create_once(
        store,
        conn,
        tenant=tenant,
        key=key,
        action="create_envelope",
        payload={"contract_id": envelope.contract_id, "document_sha256": envelope.document_sha256},
        attempt=create_envelope,
        find=find_envelope,
        worker=worker,
        run_id=run_id,
        lease_seconds=lease_seconds,
        crash=crash,
    )


@dataclass
class _ClicksignSteps:
    """The steps after the create, each its own outbox write under ``<key>:<step>``, looked up at
    Clicksign (the spec's ``find_existing`` of the action) before it is sent again."""

    store: Store
    conn: Connector
    envelope: Envelope
    worker: str
    run_id: str | None
    lease_seconds: float

    def run(self, action: str, step_key: str, record: dict[str, Any]) -> str:
        """Call ``action`` with ``record`` once under ``step_key``; the provider's id of what it made."""
        conn = self.conn

        def send() -> tuple[str | None, dict[str, Any]]:
            result = conn.call(action, record)
            return result.id, {}

        def find() -> tuple[str | None, dict[str, Any]] | None:
            found = conn.find_existing(action, record)
            return None if found is None else (found.id, {})

        outcome = write_once(
            self.store,
            tenant=self.envelope.tenant,
            connector=conn.name,
            action=action,
            key=step_key,
            payload={"contract_id": self.envelope.contract_id},
            send=send,
            find=find,
            worker=self.worker,
            run_id=self.run_id,
            lease_seconds=self.lease_seconds,
        )
        return str(outcome.external_id or "")


def _add_clicksign_recipient(
    steps: _ClicksignSteps,
    raw: dict[str, Any],
    signer: dict[str, Any],
    ids: dict[str, str],
    *,
    page_size: tuple[float, float],
    provider_notifies: bool,
    positioned: bool,
) -> tuple[str, str]:
    """One canonical signer at Clicksign: a signature watcher for a copy recipient; otherwise a signer
    with its requirements (agree as signer or approver, each evidence, the positions when Clicksign
    takes them). ``raw`` is the mapping's signer request, ``ids`` the envelope's and the document's.
    Returns the provider's id of the recipient and its kind."""
    conn, key, envelope_id = steps.conn, steps.envelope.idempotency_key, ids["envelope_id"]
    role = signer["role"]
    interaction = signer.get("interaction") or "sign"
    if interaction == "receive_copy":
        # a copy recipient is a signature watcher, not a signer: no group, no requirement, nobody waits
        watcher = {"envelope_id": envelope_id, "email": signer["email"], "kind": CLICKSIGN_WATCHER_KIND}
        return steps.run("add_watcher", f"{key}:watcher:{role}", watcher), "signature_watcher"
    attrs = {**raw["data"]["attributes"], "envelope_id": envelope_id}
    if not provider_notifies:
        attrs["communicate_events"] = {
            **attrs.get("communicate_events", {}),
            "signature_request": "none",
            "signature_reminder": "none",
        }
    sid = steps.run("add_signer", f"{key}:signer:{role}", attrs)
    base = {"envelope_id": envelope_id, "document_id": ids["document_id"], "signer_id": sid}
    qualification = "sign" if interaction == "sign" else conn.values.get("approve_role", "approve")
    agree = {**base, "action": "agree", "role": qualification}
    steps.run("add_requirement", f"{key}:req:{role}:agree", agree)
    for auth in clicksign_auths(signer):
        evidence = {**base, "action": "provide_evidence", "auth": auth}
        steps.run("add_requirement", f"{key}:req:{role}:{auth}", evidence)
    places = clicksign_positions(steps.envelope, role, page_size) if interaction == "sign" else []
    if positioned and places:
        mark = {
            **base,
            "action": "rubricate",
            "kind": conn.values.get("position_kind", "manuscript"),
            "positions": places,
        }
        steps.run("add_requirement", f"{key}:req:{role}:position", mark)
    return sid, "signer"


#: envelopes read, at most, to look one up (a listing that ignores the name filter lists them all)
LOOKUP_LIMIT = 1000

#: where a Clicksign envelope's metadata carries Ponte's key: ``ponte_key``, the one name the mapping
#: ``clicksign/envelope_to_requests`` writes; envelopes sent before also carry ``ponte_idempotency_key``
CLICKSIGN_KEY_NAMES = ("ponte_key", "ponte_idempotency_key")


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
    be: an envelope whose metadata carries ``key`` (under either of :data:`CLICKSIGN_KEY_NAMES`) is
    ours; "not there" holds when no draft with this name lacks a Ponte key (only a draft can be an
    unrecorded create: Ponte activates an envelope after recording its id; another version's envelope
    carries its own key) and the listing applied the name filter and ended within :data:`LOOKUP_LIMIT`.
    Anything else raises :class:`CreateUnconfirmed`, a dead letter, instead of risking a second
    envelope. ``person_checked`` (the replay of that letter) accepts "not there" from a listing that
    ignores the filter or is missing, never past a listed draft.
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
        keys = [value for value in (metadata.get(n) for n in CLICKSIGN_KEY_NAMES) if value]
        if key in keys:
            return str(item["id"]), {"existing": True}
        if attributes.get("name") != name:
            unfiltered = True  # the name filter was not applied: this is not the whole answer
        elif not keys and attributes.get("status", "draft") == "draft":
            drafts.append(str(item.get("id")))
    if drafts:
        raise _unconfirmed(
            store,
            key,
            name,
            f"the listing shows draft envelope(s) named {name!r} without Ponte's key: {', '.join(drafts)}",
            drafts,
        )
    if person_checked:
        return None
    if unfiltered:
        raise _unconfirmed(
            store, key, name, "the listing ignored the name filter, so it may not show every envelope"
        )
    if len(items) >= LOOKUP_LIMIT:
        raise _unconfirmed(store, key, name, f"the listing has {LOOKUP_LIMIT} or more envelopes by that name")
    return None


def _unconfirmed(
    store: Store, key: str, name: str, why: str, drafts: list[str] | None = None
) -> CreateUnconfirmed:
    when = sent_when(store, key)
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


def signing_link(provider: str, base_url: str, envelope_id: str, recipient_id: str) -> str:
    """Where a signer signs, for invitations Ponte sends itself.

    A provider-hosted signing page per signer; in production DocuSign needs an embedded recipient view
    (see docs/dispatch.md), which the sandbox does not model, so the link is built from the ids.
    """
    if provider == "clicksign":
        return f"{base_url.rstrip('/')}/sign/{envelope_id}/{recipient_id}"
    return f"{base_url.rstrip('/')}/signing/{envelope_id}?recipient={recipient_id}"


# ------------------------------------------------------------------------------------------ voiding


class SignedVersionStands(DataError):
    """The provider says the envelope to replace is completed: the old version was signed, nothing new
    is sent (pipelines/dispatch/versions.py)."""


@dataclass
class Voided:
    """What the void step of a replaced envelope did."""

    #: "voided" (now), "already_done" (the outbox had it), "found" (the provider had it voided, declined,
    #: expired or gone: nothing to void)
    how: str
    provider_state: str
    reason: str


#: the void action of each hand-written provider, and whether Ponte's reason travels with it
VOID_ACTIONS = {"docusign": "void_envelope", "clicksign": "cancel_envelope"}


def void_action(conn: Connector) -> str | None:
    """The action that voids an envelope at ``conn``'s provider, or None when its spec has none."""
    if conn.name in VOID_ACTIONS:
        return VOID_ACTIONS[conn.name]
    signing = getattr(conn.spec, "signing", None)
    void = getattr(signing, "void", None) if signing is not None else None
    return void.action if void is not None else None


def provider_state(conn: Connector, provider_envelope_id: str) -> str:
    """What the provider holds for one envelope now (versions.ProviderState), read as back-sync reads
    it (DocuSign's envelope and recipients, Clicksign's envelope and event log, a YAML provider's
    ``signing.status``); an envelope the provider no longer has is "gone"."""
    # back-sync's reader, imported late: back-sync imports dispatch
    from pipelines.backsync.flow import read_provider

    try:
        events = read_provider(conn, provider_envelope_id)
    except NotFoundError:
        return "gone"
    return versions.provider_state(e.kind.value for e in events)


def void_once(
    store: Store,
    conn: Connector,
    *,
    tenant: str,
    old_key: str,
    provider_envelope_id: str,
    reason: str,
    contract_id: str,
    worker: str,
    deadline_at: str | None = None,
    run_id: str | None = None,
    crash: CrashHook = no_crash,
    lease_seconds: float = 120,
) -> Voided:
    """Void a replaced envelope at its provider exactly once (outbox key ``<old key>:void``).

    The provider is read first: completed raises :class:`SignedVersionStands` (the signed version
    stands); voided, declined, expired or gone needs no void. A void the provider refuses is read again
    to tell "already over" (fine) from "completed" (:class:`SignedVersionStands`) from anything else (a
    dead letter: a person voids it in the provider's panel, then replays). A transient failure
    propagates (the contract is deferred; nothing new is sent). After a crash the outbox finds a void
    that happened by reading the provider before voiding again.
    """
    action = void_action(conn)
    record = f"contract {contract_id}"
    before = provider_state(conn, provider_envelope_id)
    _check_voidable(conn, action, before, provider_envelope_id, record)

    def find() -> tuple[str | None, dict[str, Any]] | None:
        state = provider_state(conn, provider_envelope_id)
        return None if state in ("live", "completed") else (provider_envelope_id, {"provider_state": state})

    def send() -> tuple[str | None, dict[str, Any]]:
        if before != "live":  # over at the provider already: recorded as this version's void, no call
            return provider_envelope_id, {"provider_state": before, "called": False}
        return _call_void(conn, str(action), provider_envelope_id, reason, deadline_at, record, crash)

    outcome = write_once(
        store,
        tenant=tenant,
        connector=conn.name,
        action=str(action or "void"),
        key=f"{old_key}:void",
        payload={"contract_id": contract_id, "envelope": provider_envelope_id, "reason": reason},
        send=send,
        find=find,
        worker=worker,
        run_id=run_id,
        lease_seconds=lease_seconds,
    )
    state = str(outcome.result.get("provider_state") or "voided")
    how = "voided" if outcome.how == "sent" and outcome.result.get("called") else outcome.how
    if outcome.how == "sent" and not outcome.result.get("called"):
        how = "found"
    return Voided(how, state, reason)


def _check_voidable(
    conn: Connector, action: str | None, before: str, provider_envelope_id: str, record: str
) -> None:
    """Refuse, before anything is recorded, a void that cannot happen: the envelope is completed (the
    signed version stands), or it is live and the provider's spec declares no void."""
    if before == "completed":
        raise _signed(conn, provider_envelope_id, record)
    if action is None and before == "live":
        raise DataError(
            f"{conn.name}'s spec declares no signing.void, so Ponte cannot void envelope "
            f"{provider_envelope_id} of the contract's earlier document version; nothing new was sent",
            record=record,
            field="signing.void",
            hint=f"void (cancel) envelope {provider_envelope_id} in {conn.name}'s panel, or declare `signing.void` "
            "in the connector spec; then `ponte deadletter replay` the contract",
        )


def _call_void(
    conn: Connector,
    action: str,
    provider_envelope_id: str,
    reason: str,
    deadline_at: str | None,
    record: str,
    crash: CrashHook,
) -> tuple[str, dict[str, Any]]:
    """The void call of a live envelope, and what the outbox records of it. A refusal is read again:
    over at the provider is fine, completed is :class:`SignedVersionStands`, still live a dead letter."""
    try:
        # deadline_at: the envelope's own, for a provider whose update body carries it (Clicksign)
        conn.call(action, {"envelope_id": provider_envelope_id, "reason": reason, "deadline_at": deadline_at})
    except (DataError, NotFoundError, ConflictError) as exc:
        state = provider_state(conn, provider_envelope_id)
        if state == "completed":
            raise _signed(conn, provider_envelope_id, record) from None
        if state == "live":
            raise DataError(
                f"{conn.name} refused to void envelope {provider_envelope_id} of the contract's earlier "
                f"document version ({exc.message}); nothing new was sent",
                record=record,
                field="signing.void",
                hint=f"void (cancel) envelope {provider_envelope_id} in {conn.name}'s panel, then "
                "`ponte deadletter replay` the contract",
            ) from None
        return provider_envelope_id, {"provider_state": state, "called": True, "refused": exc.message}
    crash("after_void_call")
    return provider_envelope_id, {"provider_state": "voided", "called": True}


def _signed(conn: Connector, provider_envelope_id: str, record: str) -> SignedVersionStands:
    return SignedVersionStands(
        f"the contract's document changed, but {conn.name} says envelope {provider_envelope_id} of the earlier "
        "version is already completed: the signed version stands and the new one was not sent",
        record=record,
        field=versions.SIGNED_FIELD,
        hint="a person decides: keep the signed contract (restore its document in the CRM), or have it "
        "rescinded and a new contract issued; replaying this letter sends nothing while the signed one stands",
    )

"""A signing provider described in YAML alone: the connector spec's ``signing`` section, read here.

DocuSign and Clicksign have hand-written senders (:mod:`pipelines.dispatch.providers`); any other
provider whose spec declares ``signing`` (docs/dispatch.md, "Providers described in YAML") is sent
through :func:`send_spec`, with the same guarantee: the create goes through the outbox
(``write_once``) keyed by the envelope's idempotency key, and before anything is sent again after a
crash or an unsure create the envelope is looked up at the provider by that key
(``signing.lookup``). That lookup is trusted to say "not there" only when the listing shows it applied
the filter (it returned nothing, or only records carrying the key); otherwise the contract is
dead-lettered for a person to check, never sent a second time.

:func:`signing_gaps` is what ``ponte validate`` asks: can the tenant's signing provider serve
dispatch and back-sync?
"""

from __future__ import annotations

import base64
from typing import Any

from connectors.runtime import Connector, dig
from connectors.spec import HttpConnectorSpec, Signing, load_spec, render
from mappings import load_mapping
from pipelines.dispatch.documents import Document
from pipelines.dispatch.identity import (
    UNCONFIRMED_FIELD,
    CrashHook,
    CreateUnconfirmed,
    create_once,
    no_crash,
    sent_when,
)
from pipelines.dispatch.providers import Created
from pipelines.outbox import write_once
from pipelines.store.db import Store
from ponte import ConfigurationError, DataError, NotFoundError
from schemas import TenantConfig
from schemas.canonical import Envelope

#: specs whose providers are written in Python (pipelines/dispatch/providers.py): capable as they are
HAND_WRITTEN = frozenset({"docusign", "clicksign"})
#: what a signing mapping reads and produces
MAPPING_SOURCE = "signing/provider_payload"
MAPPING_TARGET = "canonical/signing_event"


def signing_of(conn: Connector) -> Signing:
    """The connector's signing section, or a ConfigurationError saying dispatch cannot use it."""
    signing = getattr(conn.spec, "signing", None)
    if signing is None:
        raise ConfigurationError(
            f"connector {conn.name} declares no signing section, so dispatch cannot send envelopes through it",
            tenant=conn.tenant,
            hint="use docusign or clicksign, or add `signing:` to the spec (docs/dispatch.md)",
        )
    return signing


def create_record(envelope: Envelope, document: Document) -> dict[str, Any]:
    """What ``signing.create``'s action is called with: the canonical envelope plus the document."""
    return {
        **envelope.model_dump(mode="json"),
        "name": envelope.document_name,
        "document_base64": base64.b64encode(document.content).decode(),
        "external_key": envelope.idempotency_key,
    }


def signer_ids(signing: Signing, envelope: Envelope, answer: Any) -> dict[str, str]:
    """Role -> the provider's signer id, from the signer list of a create answer or a listed envelope."""
    wanted = signing.create.signer_ids
    if wanted is None or signing.signers is None:
        return {}
    listed = [s for s in dig(answer, signing.signers) or [] if isinstance(s, dict)]
    ids: dict[str, str] = {}
    for position, signer in enumerate(envelope.signers):
        for how in wanted.match:
            hit: dict[str, Any] | None = None
            if how == "email" and signer.email:
                hits = [s for s in listed if str(s.get("email") or "").strip().lower() == signer.email.lower()]
                hit = hits[0] if len(hits) == 1 else None
            elif how == "order" and position < len(listed):
                hit = listed[position]
            found = dig(hit, wanted.id) if hit is not None else None
            if found not in (None, ""):
                ids[signer.role] = str(found)
                break
    return ids


def send_spec(
    store: Store,
    conn: Connector,
    envelope: Envelope,
    document: Document,
    *,
    worker: str,
    run_id: str | None = None,
    crash: CrashHook = no_crash,
    lease_seconds: float = 120,
    person_checked: bool = False,
) -> Created:
    """Create (and, if the spec says so, send) the envelope at a provider described by its spec, once.

    ``person_checked``: the replay of a dead letter that said an earlier create was unsure and the
    lookup could not tell; a person looked at the provider, so "not there" is taken from them.
    """
    signing = signing_of(conn)
    key = envelope.idempotency_key
    tenant = envelope.tenant
    record = create_record(envelope, document)
    create = signing.create

    def find() -> tuple[str | None, dict[str, Any]] | None:
        return find_spec_envelope(store, conn, signing, envelope, person_checked=person_checked)

    def attempt() -> tuple[str | None, dict[str, Any]]:
        result = conn.call(create.action, record, idempotency_key=key)
        ident = dig(result.data, create.envelope_id) if create.envelope_id else result.id
        if ident in (None, ""):
            raise DataError(
                f"{conn.name} answered the create without an envelope id at {create.envelope_id or 'the id'}",
                source=conn.name,
                hint="check the spec's signing.create.envelope_id against the provider's answer",
            )
        return str(ident), {"signer_ids": signer_ids(signing, envelope, result.data)}

    created = create_once(
        store,
        conn,
        tenant=tenant,
        key=key,
        action=create.action,
        payload={"contract_id": envelope.contract_id, "document_sha256": envelope.document_sha256},
        attempt=attempt,
        find=find,
        worker=worker,
        run_id=run_id,
        lease_seconds=lease_seconds,
        crash=crash,
    )
    envelope_id = str(created.external_id or "")
    if not envelope_id:
        raise DataError(f"{conn.name} gave no envelope id for {key}", source=conn.name)
    if signing.send is not None:
        action = signing.send.action

        def send_it() -> tuple[str | None, dict[str, Any]]:
            conn.call(action, {"envelope_id": envelope_id})
            return envelope_id, {}

        # no lookup: a send action must be idempotent at the provider (sending a sent envelope is a no-op)
        write_once(store, tenant=tenant, connector=conn.name, action=action, key=f"{key}:send",
                   payload={"contract_id": envelope.contract_id}, send=send_it, find=None, worker=worker,
                   run_id=run_id, lease_seconds=lease_seconds)
    ids = {str(k): str(v) for k, v in (created.result.get("signer_ids") or {}).items()}
    return Created(envelope_id, ids, {"signer_ids": ids, "provider_spec": conn.name}, how=created.how)


def find_spec_envelope(
    store: Store,
    conn: Connector,
    signing: Signing,
    envelope: Envelope,
    *,
    person_checked: bool = False,
) -> tuple[str | None, dict[str, Any]] | None:
    """The envelope an unsure create may have made, found by Ponte's key; None when it is not there.

    "Not there" holds only when the listing applied the filter: it returned no record, or every record
    it returned carries the key (then the first is ours), and it ended below ``lookup.limit``. A listing
    that is missing, refuses the filter, or returns records without the key cannot tell: that raises
    :class:`CreateUnconfirmed` (a dead letter for a person), unless ``person_checked``.
    """
    lookup = signing.lookup
    if lookup is None:
        if person_checked:
            return None
        raise _unconfirmed(store, conn, envelope, "the spec declares no signing.lookup")
    context = {"envelope": envelope.model_dump(mode="json")}
    params = render(lookup.params, context)
    expected = {str(k): str(v) for k, v in render(lookup.match, context).items()}
    try:
        items = list(conn.read(lookup.stream, params=params, limit=lookup.limit))
    except (NotFoundError, DataError) as exc:  # no such listing, or it refuses the filter
        if person_checked:
            return None
        raise _unconfirmed(store, conn, envelope, f"the listing answered: {exc.message}") from None
    for item in items:
        if all(str(dig(item, path)) == value for path, value in expected.items()):
            ident = dig(item, lookup.id or signing.create.envelope_id or "id")
            if ident not in (None, ""):
                return str(ident), {"existing": True, "signer_ids": signer_ids(signing, envelope, item)}
    if person_checked or not items:
        return None
    if len(items) >= lookup.limit:
        raise _unconfirmed(store, conn, envelope, f"the listing has {lookup.limit} or more records")
    raise _unconfirmed(store, conn, envelope, "the listing returned records without Ponte's key, so it ignored "
                                              "the filter and may not show every envelope")


def _unconfirmed(store: Store, conn: Connector, envelope: Envelope, why: str) -> CreateUnconfirmed:
    key = envelope.idempotency_key
    when = sent_when(store, key)
    return CreateUnconfirmed(
        f"{conn.name} may already have created this contract's envelope: the create was sent{when} but its "
        f"answer never reached Ponte's records, and the lookup by Ponte's key cannot tell ({why}); nothing "
        "more was sent",
        field=UNCONFIRMED_FIELD,
        hint=f"in {conn.name}'s panel, look for a document named {envelope.document_name!r} created"
        f"{when or ' then'} and delete it if it is there; then `ponte deadletter replay` this letter: the "
        "replay is your confirmation, and the envelope is created once",
        details={"idempotency_key": key, "provider": conn.name, "document_name": envelope.document_name},
    )


def _mapping_problem(name: str) -> str | None:
    try:
        mapping = load_mapping(name)
    except ConfigurationError as exc:
        return exc.message.splitlines()[0]
    if mapping.source != MAPPING_SOURCE or mapping.target != MAPPING_TARGET:
        return f"it maps {mapping.source} to {mapping.target}, not {MAPPING_SOURCE} to {MAPPING_TARGET}"
    return None


def signing_gaps(tenant: TenantConfig) -> list[str]:
    """What the tenant's signing provider lacks for the flows every tenant runs (dispatch, back-sync).

    DocuSign and Clicksign specs are capable (hand-written providers); any other spec must declare a
    ``signing`` section with what each flow needs, and the mappings it names must load.
    """
    key = tenant.options.signing_provider
    config = tenant.connectors.get(key)
    if config is None:
        return []  # the tenant schema names a missing signing_provider itself
    where = f"connector {key} (spec {config.spec})"
    if config.spec in HAND_WRITTEN:
        return []
    try:
        spec = load_spec(config.spec)
    except ConfigurationError as exc:
        return [f"{where} does not load: {exc.message.splitlines()[0]}"]
    if not isinstance(spec, HttpConnectorSpec) or spec.signing is None:
        return [f"{where} has no signing section, which dispatch and back-sync need"]
    signing = spec.signing
    gaps = []
    if signing.status is None:
        gaps.append(f"{where} has no signing.status, which back-sync needs (a completion is confirmed by "
                     "reading the provider)")
    if signing.download is None:
        gaps.append(f"{where} has no signing.download, which back-sync needs")
    if spec.webhooks and not signing.webhook_mappings:
        gaps.append(f"{where} has webhooks but no signing.webhook_mappings, which back-sync needs to read them")
    named = [("signing.status.mappings", n) for n in (signing.status.mappings if signing.status else [])]
    named += [("signing.webhook_mappings", n) for n in signing.webhook_mappings]
    for field, name in named:
        problem = _mapping_problem(name)
        if problem:
            gaps.append(f"{where}: {field} names {name}, which back-sync cannot use: {problem}")
    return gaps

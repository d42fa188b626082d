"""The back-sync flow, plain Python: provider news → envelope/signer state → the signed PDF in the CRM.

Three ways in, one way through:
- :func:`drain_inbox` processes stored webhooks (DocuSign Connect, Clicksign, WhatsApp statuses) in
  batches, claimed with a lease so several workers share the inbox and a crash loses nothing;
- :func:`poll_stale` re-reads envelopes that have had no news for a while (lost webhooks);
- :func:`sync_contract` is the operator's "sync signature" for one contract.
Each turns what the provider says into canonical events, applies them through the monotone state
machines (:mod:`pipelines.backsync.apply`) and finalizes completed envelopes
(:mod:`pipelines.backsync.completion`). Webhooks are hints; the provider's reads are the truth, so a
completion is always confirmed by reading the envelope before anything is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from connectors.runtime import Connector
from connectors.spec import load_spec
from mappings import MappingContext, load_mapping
from pipelines.backsync import crm_contract
from pipelines.backsync.apply import FLOW, ApplyOutcome, apply_events
from pipelines.backsync.completion import Finalized, finalize, reservation_of
from pipelines.backsync.translate import Translated, clicksign_read, docusign_read, spec_events, translate
from pipelines.connections import Opener, TenantConnectors
from pipelines.store import deadletters
from pipelines.store.claims import claim, release, worker_name
from pipelines.store.db import Store
from pipelines.store.inbox import load_events
from pipelines.store.models import Envelope, InboxEvent, utcnow
from pipelines.store.repos import audit
from ponte import ConfigurationError, DataError, PonteError, get_logger
from schemas import TenantConfig
from schemas.canonical import EnvelopeStatus, SignerStatus, SigningEvent

log = get_logger("backsync")

#: connectors whose inbox events this flow owns
PROVIDERS = ("docusign", "clicksign")
INBOX_CONNECTORS = (*PROVIDERS, "whatsapp")
OPEN_STATUSES = (EnvelopeStatus.sent, EnvelopeStatus.delivered, EnvelopeStatus.draft)
#: an event for an envelope we do not know yet (dispatch still committing) is retried this many times
UNKNOWN_ENVELOPE_ATTEMPTS = 5

ConnectorOpener = Opener  # key -> the tenant's open connector



@dataclass
class BacksyncReport:
    """Counts for the CLI and Dagster metadata."""

    tenant: str
    events: int = 0
    applied: int = 0
    unchanged: int = 0
    ignored: int = 0
    unknown: int = 0
    failed: int = 0
    notifications: int = 0
    envelopes_synced: int = 0
    completed: list[str] = field(default_factory=list)  # contract ids finalized now
    statuses: dict[str, str] = field(default_factory=dict)  # contract id -> envelope status

    def as_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "tenant"}


def _notify_next(store: Store, tenant: TenantConfig, outcome: ApplyOutcome, connectors: TenantConnectors) -> None:
    """Ponte-sent invitations: dispatch invites the next routing order (if dispatch is installed)."""
    if tenant.options.notifications.by != "ponte" or not outcome.newly_signed or outcome.envelope_id is None:
        return
    try:
        from pipelines.dispatch.notify import notify_next_signers  # type: ignore[import-not-found]
    except ImportError:
        log.info("dispatch's notify_next_signers is not available; next signers not invited by Ponte")
        return
    notify_next_signers(store, tenant, outcome.envelope_id, connectors)


def _confirm_and_finalize(
    store: Store,
    tenant: TenantConfig,
    outcome: ApplyOutcome,
    provider: str,
    provider_envelope_id: str,
    connectors: TenantConnectors,
    report: BacksyncReport,
    run_id: str | None,
    worker: str,
    fresh: bool = False,
) -> Finalized | None:
    """A completion (or every signer signed) is confirmed by reading the provider, then finalized; a
    refusal or an expiry is shown in the CRM (:func:`_show_stopped`)."""
    if outcome.envelope_id is None:
        return None
    if outcome.status in (EnvelopeStatus.declined, EnvelopeStatus.expired):
        _show_stopped(store, tenant, outcome.envelope_id, connectors, run_id, worker)
        return None
    if outcome.status != EnvelopeStatus.completed and not outcome.all_signed:
        return None
    with store.session() as session:
        env = session.get(Envelope, outcome.envelope_id)
        if env is None or not _needs_sync(env):
            return None  # already home
    # reads are truth: confirm the completion and pick up anything a lost or late webhook carried
    # (Clicksign's signer evidence comes with its sign events)
    if not fresh:
        outcome = _sync_one(store, tenant, provider, provider_envelope_id, connectors, run_id)
    if outcome.status != EnvelopeStatus.completed:
        return None
    done = finalize(
        store,
        tenant,
        outcome.envelope_id,
        connectors(provider),
        connectors("cvcrm"),
        worker=worker,
        run_id=run_id,
    )
    if done.how == "stamped":
        with store.session() as session:
            env = session.get(Envelope, outcome.envelope_id)
            if env is not None:
                report.completed.append(env.contract_id)
    return done


def _show_stopped(
    store: Store, tenant: TenantConfig, envelope_id: int, connectors: TenantConnectors, run_id: str | None, worker: str
) -> None:
    """A refused or expired envelope comes back to the CRM as its completion does: the original contract
    set back to not validated, once (crm_contract.mark_stopped)."""
    with store.session() as session:
        env = session.get(Envelope, envelope_id)
        if env is None or crm_contract.STOPPED_STEP in ((env.details or {}).get("completion") or {}):
            return
        session.expunge(env)
    reservation = reservation_of(env)
    if reservation is None:
        return
    crm_contract.mark_stopped(store, tenant, env, connectors("cvcrm"), reservation, worker, run_id)


# ------------------------------------------------------------------------------------------ inbox


def _whatsapp(store: Store, tenant: TenantConfig, event: InboxEvent, report: BacksyncReport) -> None:
    """Message statuses of Ponte-sent invitations: logged per message id (dispatch owns the sends)."""
    mapping = load_mapping("whatsapp/status_to_notification")
    items = mapping.run(json.loads(event.body), MappingContext(tenant=tenant)) or []
    with store.session() as session:
        for item in items if isinstance(items, list) else [items]:
            data = item.model_dump(mode="json")
            report.notifications += 1
            audit(
                session,
                tenant=tenant.id,
                flow=FLOW,
                action=f"notification_{data.get('status')}",
                entity="notification",
                entity_id=str(data.get("provider_message_id")),
                source_record=f"inbox:{event.id}",
                mapping_version=mapping.lineage,
                details={"status": data.get("status"), "error": data.get("error")},
            )


def drain_inbox(
    store: Store,
    tenant: TenantConfig,
    opener: ConnectorOpener,
    *,
    limit: int = 200,
    run_id: str | None = None,
    worker: str | None = None,
    lease_seconds: float = 300,
    event_ids: list[int] | None = None,
) -> BacksyncReport:
    """Process up to ``limit`` stored provider webhooks of ``tenant`` (repeat until it returns 0 events).

    ``event_ids`` processes only those stored events (a dead letter's replay).
    """
    worker = worker or worker_name()
    report = BacksyncReport(tenant.id)
    ids: list[int] = []
    for connector in (*INBOX_CONNECTORS, *spec_providers(tenant)):
        if connector in tenant.connectors:
            ids += claim(
                store,
                InboxEvent,
                worker=worker,
                limit=limit,
                tenant=tenant.id,
                connector=connector,
                lease_seconds=lease_seconds,
                ids=event_ids,
            )
    if not ids:
        return report
    events = load_events(store, ids)
    report.events = len(events)
    ctx = MappingContext(tenant=tenant)
    # group by envelope: one transaction applies a whole batch for one envelope
    batches: dict[tuple[str, str], list[tuple[InboxEvent, Translated]]] = {}
    with TenantConnectors(opener=opener) as connectors:
        for event in events:
            try:
                if event.connector == "whatsapp":
                    _whatsapp(store, tenant, event, report)
                    release(store, InboxEvent, event.id, worker=worker, status="done")
                    continue
                translated = translate(event.connector, event.body, ctx, _signing(tenant, event.connector))
            except PonteError as exc:
                _dead_letter(store, tenant, event, exc, run_id, worker, report)
                continue
            if not translated.events:
                report.ignored += 1
                release(store, InboxEvent, event.id, worker=worker, status="done")
                continue
            key = (event.connector, translated.events[0].provider_envelope_id)
            batches.setdefault(key, []).append((event, translated))
        for (provider, envelope_id), items in batches.items():
            _process_batch(store, tenant, provider, envelope_id, items, connectors, report, run_id, worker)
    return report


def _dead_letter(
    store: Store,
    tenant: TenantConfig,
    event: InboxEvent,
    exc: PonteError,
    run_id: str | None,
    worker: str,
    report: BacksyncReport,
) -> None:
    report.failed += 1
    deadletters.put(
        store,
        tenant=tenant.id,
        flow=FLOW,
        record_key=f"inbox:{event.id}",
        error=exc,
        payload={"inbox_id": event.id, "connector": event.connector, "event_type": event.event_type},
        run_id=run_id,
    )
    release(store, InboxEvent, event.id, worker=worker, status="dead", error=exc.message[:500])


def _process_batch(
    store: Store,
    tenant: TenantConfig,
    provider: str,
    provider_envelope_id: str,
    items: list[tuple[InboxEvent, Translated]],
    connectors: TenantConnectors,
    report: BacksyncReport,
    run_id: str | None,
    worker: str,
) -> None:
    signing: list[SigningEvent] = [e for _, t in items for e in t.events]
    urls = [u for _, t in items for u in t.download_urls]
    outcome: ApplyOutcome | None = None
    try:
        outcome = apply_events(
            store,
            tenant.id,
            provider,
            provider_envelope_id,
            signing,
            source=f"inbox:{','.join(str(e.id) for e, _ in items)}",
            mapping_version=items[0][1].mapping,
            run_id=run_id,
            advance_waiting=tenant.options.notifications.by == "provider",
        )
        if not outcome.found:
            report.unknown += len(items)
            _release_unknown(store, items, worker)
            return
        if urls:
            _remember_urls(store, outcome.envelope_id, urls)
        if outcome.changed:
            report.applied += len(items)
        else:
            report.unchanged += len(items)
        _notify_next(store, tenant, outcome, connectors)
        _confirm_and_finalize(
            store, tenant, outcome, provider, provider_envelope_id, connectors, report, run_id, worker
        )
        with store.session() as session:
            env = session.get(Envelope, outcome.envelope_id)
            if env is not None:
                report.statuses[env.contract_id] = env.status
        deadletters.resolve(store, tenant.id, FLOW, f"envelope:{outcome.envelope_id}")
    except PonteError as exc:
        _batch_failed(store, tenant, provider, provider_envelope_id, items, outcome, exc, report, run_id, worker)
        return
    for event, _ in items:
        release(store, InboxEvent, event.id, worker=worker, status="done")


def _release_unknown(store: Store, items: list[tuple[InboxEvent, Translated]], worker: str) -> None:
    """Events for an envelope Ponte has no row for: retried shortly (dispatch may still be committing
    it), then, after ``UNKNOWN_ENVELOPE_ATTEMPTS``, done with the reason."""
    for event, _ in items:
        if event.attempts >= UNKNOWN_ENVELOPE_ATTEMPTS:
            release(
                store,
                InboxEvent,
                event.id,
                worker=worker,
                status="done",
                error="no envelope with this provider id (not sent by Ponte?)",
            )
        else:  # dispatch may still be committing the envelope row: retry shortly
            release(
                store,
                InboxEvent,
                event.id,
                worker=worker,
                status="failed",
                error="envelope not found yet",
                retry_in_seconds=min(5 * 2**event.attempts, 300),
            )


def _batch_failed(
    store: Store,
    tenant: TenantConfig,
    provider: str,
    provider_envelope_id: str,
    items: list[tuple[InboxEvent, Translated]],
    outcome: ApplyOutcome | None,
    exc: PonteError,
    report: BacksyncReport,
    run_id: str | None,
    worker: str,
) -> None:
    """A batch failed: a dead letter on the envelope when retrying cannot help, and its events
    released (failed, offered again, when the error is retryable; else done)."""
    report.failed += len(items)
    if not exc.retryable and outcome is not None and outcome.envelope_id is not None:
        deadletters.put(
            store,
            tenant=tenant.id,
            flow=FLOW,
            record_key=f"envelope:{outcome.envelope_id}",
            error=exc,
            payload={"provider": provider, "provider_envelope_id": provider_envelope_id},
            run_id=run_id,
        )
    log.warning("back-sync of %s envelope %s failed: %s", provider, provider_envelope_id, exc)
    for event, _ in items:
        # the state already moved (monotone, so a retry is harmless); the finalization is retried by
        # the poll, so a non-retryable error does not keep the inbox event spinning
        release(
            store,
            InboxEvent,
            event.id,
            worker=worker,
            status="failed" if exc.retryable else "done",
            error=str(exc)[:500],
            retry_in_seconds=60 if exc.retryable else 0,
        )


def _remember_urls(store: Store, envelope_id: int | None, urls: list[str]) -> None:
    with store.session() as session:
        env = session.get(Envelope, envelope_id)
        if env is None:
            return
        details = dict(env.details or {})
        known = list(details.get("download_urls") or [])
        for url in urls:
            if url not in known:
                known.append(url)
        details["download_urls"] = known[-5:]
        env.details = details


# ------------------------------------------------------------------------------------------ reads


def read_provider(connector: Connector, provider_envelope_id: str) -> list[SigningEvent]:
    """The provider's current state of one envelope, as canonical events (reads are truth)."""
    if connector.name == "docusign":
        envelope = connector.read_one("envelopes", provider_envelope_id)
        signers = list(connector.read("recipients", params={"envelope_id": provider_envelope_id}))
        return docusign_read(envelope, signers)
    if connector.name == "clicksign":
        envelope = connector.read_one("envelopes", provider_envelope_id)
        log_items = list(connector.read("events", params={"envelope_id": provider_envelope_id}))
        return clicksign_read(envelope, log_items)
    signing = getattr(connector.spec, "signing", None)  # a provider described in YAML alone
    if signing is not None and signing.status is not None:
        body = connector.read_one(signing.status.stream, provider_envelope_id)
        return spec_events(connector.name, signing, body, signing.status.mappings)[0]
    raise ConfigurationError(f"back-sync cannot read envelopes from {connector.name}")


def _signing(tenant: TenantConfig, key: str) -> Any:
    """The signing section of the tenant connector ``key``'s spec (None for DocuSign, Clicksign and
    connectors that are not signing providers)."""
    config = tenant.connectors.get(key)
    if config is None or key in PROVIDERS or config.spec in PROVIDERS:
        return None
    try:
        spec = load_spec(config.spec)
    except ConfigurationError:
        return None
    return getattr(spec, "signing", None)


def spec_providers(tenant: TenantConfig) -> list[str]:
    """The tenant's connectors that are signing providers described in YAML alone (their webhooks are
    back-sync's too)."""
    return [key for key in tenant.connectors if key not in INBOX_CONNECTORS and _signing(tenant, key) is not None]


def inbox_connectors(tenants: Iterable[TenantConfig]) -> list[str]:
    """Every connector key whose stored webhooks back-sync applies, over ``tenants``: the hand-written
    providers' and WhatsApp's, and each signing provider described in YAML."""
    keys = set(INBOX_CONNECTORS)
    for tenant in tenants:
        keys.update(spec_providers(tenant))
    return sorted(keys)


def _sync_one(
    store: Store,
    tenant: TenantConfig,
    provider: str,
    provider_envelope_id: str,
    connectors: TenantConnectors,
    run_id: str | None,
) -> ApplyOutcome:
    events = read_provider(connectors(provider), provider_envelope_id)
    return apply_events(
        store,
        tenant.id,
        provider,
        provider_envelope_id,
        events,
        source=f"read:{provider}:{provider_envelope_id}",
        run_id=run_id,
        advance_waiting=tenant.options.notifications.by == "provider",
    )


def sync_envelope(
    store: Store,
    tenant: TenantConfig,
    envelope_id: int,
    connectors: TenantConnectors,
    report: BacksyncReport,
    *,
    run_id: str | None = None,
    worker: str | None = None,
) -> ApplyOutcome:
    """Re-read one envelope at its provider, apply what changed, finalize it if it is completed."""
    worker = worker or worker_name()
    with store.session() as session:
        env = session.get(Envelope, envelope_id)
        if env is None or not env.provider_envelope_id:
            raise DataError(f"envelope {envelope_id} was never sent (no provider id)")
        provider, pid = env.provider, env.provider_envelope_id
    outcome = _sync_one(store, tenant, provider, pid, connectors, run_id)
    report.envelopes_synced += 1
    _notify_next(store, tenant, outcome, connectors)
    _confirm_and_finalize(
        store, tenant, outcome, provider, pid, connectors, report, run_id, worker, fresh=True
    )
    return outcome


def _needs_sync(env: Envelope) -> bool:
    if env.status in OPEN_STATUSES:
        return True
    crm = (env.details or {}).get("crm") or {}
    return env.status == EnvelopeStatus.completed and (
        not env.signed_sha256 or crm.get("sha256") != env.signed_sha256
    )


@dataclass
class ContractSync:
    """The answer to "sync signature" for one contract."""

    contract_id: str
    report: BacksyncReport
    envelopes: list[dict[str, Any]]

    @property
    def pending(self) -> bool:
        return not any(e["status"] == EnvelopeStatus.completed for e in self.envelopes) and any(
            e["status"] in OPEN_STATUSES for e in self.envelopes
        )

    @property
    def message(self) -> str:
        if not self.envelopes:
            return f"contract {self.contract_id}: no envelope was ever sent"
        latest = self.envelopes[-1]
        if latest["status"] == EnvelopeStatus.completed:
            return f"contract {self.contract_id}: signed ({latest['signed']}/{latest['signers']} signers)"
        if latest["status"] in OPEN_STATUSES:
            return (
                f"contract {self.contract_id}: still pending ({latest['signed']}/{latest['signers']} "
                "signers signed)"
            )
        return f"contract {self.contract_id}: {latest['status']}"


def sync_contract(
    store: Store,
    tenant: TenantConfig,
    contract_id: str,
    opener: ConnectorOpener,
    *,
    run_id: str | None = None,
) -> ContractSync:
    """Manual "sync signature": fetch what the provider has for every open envelope of one contract."""
    report = BacksyncReport(tenant.id)
    with store.session() as session:
        envs = list(
            session.scalars(
                select(Envelope)
                .where(Envelope.tenant == tenant.id, Envelope.contract_id == str(contract_id))
                .order_by(Envelope.id)
            )
        )
    with TenantConnectors(opener=opener) as connectors:
        for env in envs:
            if env.provider_envelope_id and _needs_sync(env):
                sync_envelope(store, tenant, env.id, connectors, report, run_id=run_id)
    summary = []
    with store.session() as session:
        for env in session.scalars(
            select(Envelope)
            .where(Envelope.tenant == tenant.id, Envelope.contract_id == str(contract_id))
            .options(selectinload(Envelope.signers))
            .order_by(Envelope.id)
        ):
            report.statuses[env.contract_id] = env.status
            summary.append(
                {
                    "envelope": env.id,
                    "status": env.status,
                    "signers": len(env.signers),
                    "signed": sum(1 for s in env.signers if s.status == SignerStatus.signed),
                }
            )
    return ContractSync(str(contract_id), report, summary)


def poll_stale(
    store: Store,
    tenant: TenantConfig,
    opener: ConnectorOpener,
    *,
    quiet_for: timedelta = timedelta(minutes=30),
    limit: int = 100,
    run_id: str | None = None,
    now: datetime | None = None,
) -> BacksyncReport:
    """Polling fallback: re-read open envelopes with no news for ``quiet_for`` (and unfinished completions).

    Providers cap polling (DocuSign: per-envelope hourly limit), so only quiet envelopes are read, oldest
    news first, at most ``limit`` per run.
    """
    cutoff = (now or utcnow()) - quiet_for
    report = BacksyncReport(tenant.id)
    with store.session() as session:
        rows = list(
            session.scalars(
                select(Envelope)
                .where(
                    Envelope.tenant == tenant.id,
                    Envelope.provider_envelope_id.is_not(None),
                    Envelope.status.in_([*OPEN_STATUSES, EnvelopeStatus.completed]),
                )
                .order_by(Envelope.id)
            )
        )

    def last_news(env: Envelope) -> datetime:
        return env.last_event_at or env.sent_at or env.created_at

    due = sorted(
        (
            env
            for env in rows
            if _needs_sync(env) and (env.status == EnvelopeStatus.completed or last_news(env) <= cutoff)
        ),
        key=last_news,
    )
    due_ids = [env.id for env in due]
    with TenantConnectors(opener=opener) as connectors:
        for envelope_id in due_ids[:limit]:
            resync(store, tenant, envelope_id, connectors, report, run_id=run_id)
    return report


def resync(
    store: Store,
    tenant: TenantConfig,
    envelope_id: int,
    connectors: TenantConnectors,
    report: BacksyncReport,
    *,
    run_id: str | None = None,
) -> PonteError | None:
    """Re-read one envelope and finish what it needs; its dead letter closes on success, opens on a bad
    record (a transient failure is left to the next poll). The poll and a dead letter's replay both
    come through here. Returns the failure, if any."""
    try:
        outcome = sync_envelope(store, tenant, envelope_id, connectors, report, run_id=run_id)
        if outcome.envelope_id is not None and outcome.status:
            with store.session() as session:
                env = session.get(Envelope, envelope_id)
                if env is not None:
                    report.statuses[env.contract_id] = env.status
        deadletters.resolve(store, tenant.id, FLOW, f"envelope:{envelope_id}")
        return None
    except PonteError as exc:
        report.failed += 1
        log.warning("sync of envelope %s failed: %s", envelope_id, exc)
        if not exc.retryable:
            deadletters.put(
                store,
                tenant=tenant.id,
                flow=FLOW,
                record_key=f"envelope:{envelope_id}",
                error=exc,
                payload={"envelope_id": envelope_id},
                run_id=run_id,
            )
        return exc

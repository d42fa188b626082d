"""Never a second envelope: the one place dispatch applies that rule.

**The rule.** A contract's document version is sent for signature once, whatever crashes, timeouts or
replays happen. Its identity is the envelope's idempotency key, ``<tenant>:contract:<id>:<pdf sha256>``
(derived by the mapping ``cvcrm/contrato_to_envelope``, so a changed document is a new version and the
same bytes are never two envelopes). Every provider's create goes through :func:`create_once`:

1. the outbox (:func:`pipelines.outbox.write_once`) records the attempt under the key before the call
   and its answer after it, so a create that finished is never made again (``already_done``);
2. an attempt whose answer never arrived (a crash, an unsure timeout: ``AmbiguousWriteError``) is looked
   up at the provider *by the key* before anything is sent again (DocuSign's ``ponte_key`` custom
   field, Clicksign's envelope metadata, a YAML provider's ``signing.lookup``);
3. a lookup that cannot tell "not there" from "not shown" raises :class:`CreateUnconfirmed`: the
   contract becomes a dead letter for a person to check, and the replay of that letter
   (:data:`UNCONFIRMED_FIELDS`) is their confirmation. Nothing is sent a second time on a guess.

The store's unique index on ``envelopes.idempotency_key`` is the last line: an envelope row is
recorded once per key (``DispatchRun._record``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from connectors.runtime import AmbiguousWriteError, Connector
from pipelines.outbox import Finder, Sender, WriteOutcome, write_once
from pipelines.store.db import Store
from pipelines.store.models import OutboxItem
from ponte import DataError, TransientError

#: the field of the dead letter for an unsure create (Clicksign's, or a provider described in YAML) the
#: lookup could not confirm or rule out; replaying that letter is a person's confirmation
#: (flow.replay_dispatch). Letters written before the rename carry the old name, still honoured.
UNCONFIRMED_FIELD = "signing_provider.create_unconfirmed"
UNCONFIRMED_FIELDS = frozenset({UNCONFIRMED_FIELD, "clicksign.create_envelope"})
#: attempts of one create in one run, each unsure one looked up before the next
ATTEMPTS = 3

#: a hook the crash test uses to die at precise points ("after_provider_call", ...)
CrashHook = Callable[[str], None]


def no_crash(_: str) -> None:
    return None


class CreateUnconfirmed(DataError):
    """An unsure create that the provider's lookup can neither confirm nor rule out: a person checks."""


def create_once(
    store: Store,
    conn: Connector,
    *,
    tenant: str,
    key: str,
    action: str,
    payload: dict[str, Any],
    attempt: Sender,
    find: Finder | None,
    worker: str,
    run_id: str | None = None,
    lease_seconds: float = 120,
    crash: CrashHook = no_crash,
) -> WriteOutcome:
    """Create at the provider under ``key`` exactly once (the module's rule, steps 1–3).

    ``attempt`` makes the call and returns (provider id, details); ``find`` looks the create up by the
    key, returning None when it is surely not there (or raising :class:`CreateUnconfirmed`).
    """

    def send() -> tuple[str | None, dict[str, Any]]:
        for _ in range(ATTEMPTS):
            try:
                found = attempt()
            except AmbiguousWriteError:
                existing = find() if find is not None else None
                if existing is not None:
                    return existing
                continue
            crash("after_provider_call")
            return found
        raise TransientError(
            f"{conn.name}'s create stayed unsure after {ATTEMPTS} attempts (each looked up first)",
            tenant=tenant,
            hint="the next run looks it up again before anything is sent",
        )

    try:
        outcome = write_once(
            store,
            tenant=tenant,
            connector=conn.name,
            action=action,
            key=key,
            payload=payload,
            send=send,
            find=find,
            worker=worker,
            run_id=run_id,
            lease_seconds=lease_seconds,
        )
    except CreateUnconfirmed as exc:
        release(store, key, worker, exc.message)
        raise
    crash("after_outbox_done")
    return outcome


def sent_when(store: Store, key: str) -> str:
    """`` at <time> UTC`` of the create's recorded attempt (for a person looking at the provider)."""
    with store.session() as session:
        sent_at = session.scalar(select(OutboxItem.sent_at).where(OutboxItem.idempotency_key == key))
    return f" at {sent_at.isoformat(timespec='seconds')} UTC" if sent_at else ""


def release(store: Store, key: str, worker: str, error: str) -> None:
    """Give up this worker's claim on the create's outbox row (kept unsure: the next try looks up again)."""
    with store.session() as session:
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.idempotency_key == key, OutboxItem.claimed_by == worker)
            .values(status="failed", claimed_by=None, claimed_until=None, last_error=error[:2000])
        )

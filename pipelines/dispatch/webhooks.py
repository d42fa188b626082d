"""CV CRM webhooks as dispatch triggers: which deliveries mean "a contract is ready to be signed", and
how each one reaches exactly one dispatch run without ever being lost.

**Which deliveries.** CV CRM deliveries are stored by the gateway with the event type
``<funcionalidade>:<gatilho>`` and an ids-only body ``{idwebhook, funcionalidade, gatilho, id,
enviado_em}``. The tenant's CV CRM value ``dispatch_events`` (spec default ``CV:*``) lists the types
that trigger dispatch: ``CV:*`` (any situation of a sale contract; the delivery's ``id`` is the contract),
``RS:14`` (the reservation entered situation 14; the ``id`` is the reservation, and each of its ready
contracts is dispatched), or ``FUNC:GATILHO=contract|reservation`` to say what the ``id`` names. These
names are UNCONFIRMED (CV documents neither the bodies nor fixed gatilhos: they are per-tenant
situation ids), which is why they are configuration. ``AS`` belongs to the assistance flow and is
refused here. A trigger is only a hint: the run re-reads the contract and sends it only when the CRM
says it is validated and unsigned (``DispatchRequest.ready_only``).

**Handing events over without losing or doubling them.** The inbox row is the single record of the
event's progress; Dagster's run is only the worker:

1. The sensor *leases* a tenant's pending trigger events (``hand_over``): one transaction marks them
   ``processing``, claimed by a token derived from their ids and attempt numbers, for
   ``LAUNCH_LEASE_SECONDS``; the run key is made of that token. Leased events are invisible to the next
   evaluation, so an event is in exactly one run request. (A tenant with a dispatch run queued or going
   is leased nothing new until it ends: fewer, fuller runs.)
2. The run, when it starts, confirms its lease (``dispatch_claimed``): only the events still held by its
   token are dispatched, and the lease is renewed after every contract. It marks each event ``done``
   once its contract has an outcome (sent, found, already sent, skipped, dead-lettered: dead letters
   are replayable on their own), or ``failed`` with a delay when its contract was deferred by a
   transient failure; if the run itself fails, the lease is shortened so the events come back soon.
3. Whatever dies in between (a sensor tick whose request was never submitted, a run that crashed or was
   never launched), the lease runs out and the sensor leases the events again under a new token, so a
   new run key. Before that, the sensor asks Dagster whether the run holding an expired lease is still
   queued or running (the sensor starts one dispatch run per tenant at a time) and, if so, renews the lease instead:
   a waiting run is not doubled. A run that starts after its events were handed to another run finds
   nothing held and dispatches nothing.

Nothing is marked processed before a run has dispatched it, and an event whose run never happened
comes back: no event is lost, and none is dispatched by two runs (the outbox would make even that
harmless). After ``MAX_ATTEMPTS`` leases an event is given up (``dead``, with the last error); the
10-minute poll still sends every ready contract.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update

from connectors.spec.loader import load_spec
from pipelines.dispatch.connections import ConnectorSet
from pipelines.dispatch.flow import DispatchReport, DispatchRequest, run_dispatch
from pipelines.store.claims import claimable, release
from pipelines.store.db import Store
from pipelines.store.models import InboxEvent, utcnow
from ponte.errors import ConfigurationError
from ponte.logging import get_logger
from schemas.tenant import TenantConfig

log = get_logger("dispatch.webhooks")

#: the tenant connector key dispatch reads contracts through (and the gateway stores CV deliveries under)
CONNECTOR = "cvcrm"
#: the CV CRM spec value naming the trigger event types
VALUE = "dispatch_events"
#: claimed_by of events leased to a dispatch run: this prefix and the run's token
CLAIM_PREFIX = "dispatch-run:"
#: sensor -> run start (launch, plus waiting in the run queue; the sensor renews it while the run waits)
LAUNCH_LEASE_SECONDS = 900
#: renewed when the run starts and after every contract
RUN_LEASE_SECONDS = 900
#: when a run fails, its events come back after this long (unless the run retries first)
FAILURE_RETRY_SECONDS = 300
#: a deferred contract's event is offered again after this long
DEFERRED_RETRY_SECONDS = 60
#: leases before an event is given up (the poll still covers its contract)
MAX_ATTEMPTS = 10
#: events per run
BATCH = 100

Subject = Literal["contract", "reservation"]
#: what the delivery's id names, per funcionalidade, when the entry does not say
DEFAULT_SUBJECT: dict[str, Subject] = {"CV": "contract", "RS": "reservation"}
#: funcionalidades other flows consume from the same inbox
RESERVED = {"AS": "the assistance flow"}
_ENTRY = re.compile(r"^(?P<func>[A-Z]{2}):(?P<gatilho>\d+|\*)(?:=(?P<subject>contract|reservation))?$")


@dataclass(frozen=True)
class Trigger:
    """One event type that means "a contract is ready to be signed"."""

    funcionalidade: str
    gatilho: str | None  # None: any situation
    subject: Subject

    @property
    def event_type(self) -> str:
        return f"{self.funcionalidade}:{self.gatilho or '*'}"

    def matches(self, event_type: str | None) -> bool:
        if self.gatilho is None:
            return str(event_type or "").startswith(f"{self.funcionalidade}:")
        return event_type == f"{self.funcionalidade}:{self.gatilho}"


def parse_triggers(text: str, *, tenant: str | None = None) -> list[Trigger]:
    """``"CV:*, RS:14=reservation"`` -> triggers; a malformed entry is a ConfigurationError naming it."""
    where = f"connectors.{CONNECTOR}.values.{VALUE}"
    triggers: list[Trigger] = []
    for raw in re.split(r"[,\s]+", text.strip()):
        if not raw:
            continue
        entry = raw.upper().replace("=CONTRACT", "=contract").replace("=RESERVATION", "=reservation")
        match = _ENTRY.match(entry)
        if match is None:
            raise ConfigurationError(
                f"dispatch trigger {raw!r} is not FUNCIONALIDADE:GATILHO (e.g. CV:* or RS:14=reservation)",
                tenant=tenant,
                field=where,
                hint="gatilho is the numeric situation id, or * for any",
            )
        func = match.group("func")
        if func in RESERVED:
            raise ConfigurationError(
                f"dispatch trigger {raw!r}: {func} deliveries belong to {RESERVED[func]}",
                tenant=tenant,
                field=where,
                hint="use the sale contract (CV) or reservation (RS) events",
            )
        subject = match.group("subject") or DEFAULT_SUBJECT.get(func)
        if subject is None:
            raise ConfigurationError(
                f"dispatch trigger {raw!r}: say whether its id names a contract or a reservation",
                tenant=tenant,
                field=where,
                hint=f"write {func}:{match.group('gatilho')}=contract or ...=reservation",
            )
        gatilho = None if match.group("gatilho") == "*" else match.group("gatilho")
        triggers.append(Trigger(func, gatilho, subject))  # type: ignore[arg-type]
    return triggers


def tenant_triggers(tenant: TenantConfig) -> list[Trigger]:
    """The tenant's trigger events (its ``dispatch_events`` value, else the spec's default); [] without CV CRM."""
    config = tenant.connectors.get(CONNECTOR)
    if config is None:
        return []
    text = config.values.get(VALUE)
    if text is None:
        declared = getattr(load_spec(config.spec), "values", {}).get(VALUE)
        text = declared.default if declared is not None else None
    return parse_triggers(str(text or ""), tenant=tenant.id)


def _type_filter(triggers: Iterable[Trigger]) -> Any:
    return or_(
        *(
            InboxEvent.event_type.startswith(f"{t.funcionalidade}:")
            if t.gatilho is None
            else InboxEvent.event_type == t.event_type
            for t in triggers
        )
    )


def _subject(body: bytes) -> str | None:
    """The delivery's ``id`` (the contract or reservation it is about), if it names one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def _match(triggers: list[Trigger], event_type: str | None) -> Trigger | None:
    return next((t for t in triggers if t.matches(event_type)), None)


def run_key(tenant: str, token: str) -> str:
    """The Dagster run key of the run holding ``token`` (one per lease, so one per run request)."""
    return f"dispatch-hooks-{tenant}-{token.removeprefix(CLAIM_PREFIX)}"


@dataclass(frozen=True)
class Handover:
    """Events leased to one dispatch run, and what the run should dispatch."""

    tenant: str
    token: str
    event_ids: list[int]
    contracts: list[str]
    reservations: list[str]

    @property
    def run_key(self) -> str:
        return run_key(self.tenant, self.token)


def hand_over(
    store: Store,
    tenant: str,
    triggers: list[Trigger],
    *,
    limit: int = BATCH,
    lease_seconds: float = LAUNCH_LEASE_SECONDS,
    now: datetime | None = None,
) -> Handover | None:
    """Lease the tenant's pending trigger events to a new run token (None when there are none).

    Pending: ``new``, or ``failed`` and due, or ``processing`` with an expired lease. Events that name
    nothing, or were leased ``MAX_ATTEMPTS`` times already, are given up (``dead``) here instead.
    """
    if not triggers:
        return None
    now = now or utcnow()
    query = (
        select(InboxEvent)
        .where(
            InboxEvent.tenant == tenant,
            InboxEvent.connector == CONNECTOR,
            _type_filter(triggers),
            claimable(InboxEvent, now),
        )
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    if store.is_postgres:
        query = query.with_for_update(skip_locked=True)
    with store.session() as session:
        rows = list(session.scalars(query))
        taken: list[InboxEvent] = []
        contracts: list[str] = []
        reservations: list[str] = []
        for row in rows:
            trigger = _match(triggers, row.event_type)
            subject = _subject(row.body)
            problem = None
            if trigger is None or subject is None:
                problem = "the delivery names no contract or reservation (no id in its body)"
            elif row.attempts >= MAX_ATTEMPTS:
                problem = f"given up after {row.attempts} dispatch runs: {row.last_error or 'no error recorded'}"
            if problem is not None:
                row.status, row.claimed_by, row.claimed_until = "dead", None, None
                row.last_error = problem[:500]
                log.warning("inbox event %s (%s) not dispatched: %s", row.id, row.event_type, problem)
                continue
            assert trigger is not None and subject is not None
            names = contracts if trigger.subject == "contract" else reservations
            if subject not in names:
                names.append(subject)
            taken.append(row)
        if not taken:
            return None
        attempts = [(row.id, row.attempts + 1) for row in taken]
        digest = hashlib.sha256(json.dumps(attempts).encode()).hexdigest()[:16]
        token = f"{CLAIM_PREFIX}{digest}"
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_([row.id for row in taken]))
            .values(
                status="processing",
                claimed_by=token,
                claimed_until=now + timedelta(seconds=lease_seconds),
                attempts=InboxEvent.attempts + 1,
            )
        )
    return Handover(tenant, token, [i for i, _ in attempts], contracts, reservations)


def expired_leases(store: Store, *, now: datetime | None = None) -> list[tuple[str, str]]:
    """``(tenant, token)`` of dispatch runs whose lease ran out with events still held."""
    now = now or utcnow()
    with store.session() as session:
        rows = session.execute(
            select(InboxEvent.tenant, InboxEvent.claimed_by)
            .where(
                InboxEvent.connector == CONNECTOR,
                InboxEvent.status == "processing",
                InboxEvent.claimed_by.startswith(CLAIM_PREFIX),
                InboxEvent.claimed_until < now,
            )
            .distinct()
        ).all()
    return [(tenant, str(token)) for tenant, token in rows]


def renew(store: Store, token: str, seconds: float = RUN_LEASE_SECONDS) -> list[int]:
    """Extend the lease of the events ``token`` still holds; returns their ids (none: taken over)."""
    with store.session() as session:
        ids = list(
            session.scalars(
                select(InboxEvent.id).where(InboxEvent.claimed_by == token, InboxEvent.status == "processing")
            )
        )
        if ids:
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(ids), InboxEvent.claimed_by == token)
                .values(claimed_until=utcnow() + timedelta(seconds=seconds))
            )
    return ids


@dataclass
class ClaimedRun:
    """What a webhook-started run did with the events its lease held."""

    token: str
    events: int = 0
    done: int = 0
    retry: int = 0
    contracts: list[str] = field(default_factory=list)
    reservations: list[str] = field(default_factory=list)
    report: DispatchReport | None = None

    @property
    def superseded(self) -> bool:
        """The lease was gone when the run started: another run has (or had) these events."""
        return self.events == 0

    def as_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = dict(self.report.as_metadata()) if self.report else {}
        meta.update({"inbox_events": self.events, "inbox_done": self.done, "inbox_retry": self.retry,
                     "superseded": self.superseded})
        return meta


def dispatch_claimed(
    store: Store,
    tenant: TenantConfig,
    token: str,
    request: DispatchRequest,
    connectors: ConnectorSet | None = None,
    *,
    dispatch: Callable[..., DispatchReport] = run_dispatch,
) -> ClaimedRun:
    """Dispatch what the events held by ``token`` name, then mark those events processed.

    ``request`` gives the run's id and document options; its contracts and reservations are replaced by
    the subjects of the events still held (never "every ready contract"). Each event is ``done`` once its
    contract has an outcome, or ``failed`` (offered again shortly) when the contract was deferred. If the
    dispatch raises (a tenant-wide stop, the CRM unreachable), the events stay leased to this run for
    ``FAILURE_RETRY_SECONDS`` (a step retry renews them) and the error is re-raised.
    """
    outcome = ClaimedRun(token)
    held = renew(store, token)
    if not held:
        log.info("dispatch run %s: its inbox events were handed to another run; nothing to do", token)
        return outcome
    triggers = tenant_triggers(tenant)
    with store.session() as session:
        events = [
            (row.id, row.event_type, row.body)
            for row in session.scalars(select(InboxEvent).where(InboxEvent.id.in_(held)).order_by(InboxEvent.id))
        ]
    subjects: dict[int, tuple[Subject, str] | None] = {}
    for event_id, event_type, body in events:
        trigger, subject = _match(triggers, event_type), _subject(body)
        subjects[event_id] = (trigger.subject, subject) if trigger and subject else None
        if trigger and subject:
            names = outcome.contracts if trigger.subject == "contract" else outcome.reservations
            if subject not in names:
                names.append(subject)
    outcome.events = len(events)
    request.contracts, request.reservations = list(outcome.contracts), list(outcome.reservations)
    request.all_ready, request.ready_only = False, True
    if request.contracts or request.reservations:
        try:
            outcome.report = dispatch(
                store, tenant, request, connectors, progress=lambda _cid, _result: renew(store, token)
            )
        except Exception as exc:
            _hold_for_retry(store, token, f"{type(exc).__name__}: {exc}")
            raise
    deferred: dict[tuple[str, str], str] = {}
    for o in outcome.report.outcomes if outcome.report is not None else []:
        if o.result == "deferred":
            reason = o.reason or "deferred by a transient failure"
            deferred.setdefault(("contract", o.contract_id), reason)
            if o.reservation_id:
                deferred.setdefault(("reservation", o.reservation_id), reason)
    for event_id, _type, _body in events:
        named = subjects[event_id]
        reason = deferred.get(named) if named is not None else None
        if reason is not None:
            if release(store, InboxEvent, event_id, worker=token, status="failed", error=reason[:500],
                       retry_in_seconds=DEFERRED_RETRY_SECONDS):
                outcome.retry += 1
        elif release(store, InboxEvent, event_id, worker=token, status="done"):
            outcome.done += 1
    return outcome


def _hold_for_retry(store: Store, token: str, error: str) -> None:
    with store.session() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.claimed_by == token, InboxEvent.status == "processing")
            .values(last_error=error[:500], claimed_until=utcnow() + timedelta(seconds=FAILURE_RETRY_SECONDS))
        )

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

**Rule-based triggers.** A tenant may instead declare ``options.dispatch_triggers`` (typed rules,
:class:`schemas.tenant.DispatchTrigger`): ``contract_saved`` (``CV:*``), ``contract_situation`` (``CV:<id>``
per situation), ``reservation_situation`` (``RS:<id>``), or ``webhook`` (any ``FUNC:GATILHO`` with what
its id names), each optionally limited to ``contract_types`` and, by default, to contracts validated and
unsigned (``when_validated``). Declaring both it and ``dispatch_events`` is refused (``ponte validate``
and the sensor's log name both fields): one source of truth. Under rules the run reads the CRM itself
(:func:`evaluate`): each contract an event names, or each contract of the reservation it names, is
judged by the event's matching rules on the CRM's record (:func:`decide`); the ones that pass are
dispatched, the others are ``skipped`` outcomes with their reason ("contract type X is not a trigger")
and the event is marked ``done`` with ``skipped: <reason>`` in its ``last_error``, and logged. Without
``dispatch_triggers`` nothing of this runs and ``dispatch_events`` works as before.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update

from connectors.spec import load_spec
from pipelines.connections import TenantConnectors
from pipelines.dispatch.flow import FLOW, ContractOutcome, DispatchReport, DispatchRequest, run_dispatch
from pipelines.dispatch.source import (
    ContractRef,
    contracts_of,
    enrich,
    is_ready,
    load_contract,
    not_ready_reason,
)
from pipelines.store import deadletters
from pipelines.store.claims import claimable, release
from pipelines.store.db import Store
from pipelines.store.models import InboxEvent, utcnow
from ponte import ConfigurationError, NotFoundError, get_logger
from schemas import DispatchTrigger, TenantConfig

log = get_logger("dispatch.webhooks")

#: the tenant connector key dispatch reads contracts through (and the gateway stores CV deliveries under)
CONNECTOR = "cvcrm"
#: the CV CRM spec value naming the trigger event types
VALUE = "dispatch_events"
#: the tenant option holding rule-based triggers (wins over nothing: both set is refused)
OPTION = "options.dispatch_triggers"
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
    """The tenant's trigger events: those of its ``options.dispatch_triggers`` when declared, else its
    ``dispatch_events`` value (else the spec's default); [] without CV CRM."""
    if tenant.options.dispatch_triggers is not None:
        return list(dict.fromkeys(rule.trigger for rule in tenant_rules(tenant)))
    config = tenant.connectors.get(CONNECTOR)
    if config is None:
        return []
    text = config.values.get(VALUE)
    if text is None:
        declared = getattr(load_spec(config.spec), "values", {}).get(VALUE)
        text = declared.default if declared is not None else None
    return parse_triggers(str(text or ""), tenant=tenant.id)


# ------------------------------------------------------------------------------------ rule-based triggers


def _type_key(value: Any) -> str:
    return " ".join(str(value).split()).casefold()


@dataclass(frozen=True)
class Rule:
    """One event type a rule listens to, and what it asks of the contract the CRM then shows."""

    trigger: Trigger
    #: contract types accepted (names casefolded, ids as ``#<id>``); empty: every type
    contract_types: frozenset[str] = frozenset()
    when_validated: bool = True
    #: where the rule is declared, for messages
    where: str = f"connectors.{CONNECTOR}.values.{VALUE}"

    def type_matches(self, contract: Mapping[str, Any]) -> bool:
        if not self.contract_types:
            return True
        name, type_id = contract.get("tipo"), contract.get("idtipo")
        keys = set()
        if name not in (None, ""):
            keys.add(_type_key(name))
        if type_id not in (None, ""):
            keys |= {f"#{_type_key(type_id)}", _type_key(type_id)}
        return bool(keys & self.contract_types)


def rules_of(triggers: Sequence[DispatchTrigger]) -> list[Rule]:
    """``options.dispatch_triggers`` as rules, one per event type each trigger listens to."""
    rules: list[Rule] = []
    for index, declared in enumerate(triggers):
        types = frozenset(f"#{t}" if isinstance(t, int) else _type_key(t) for t in declared.contract_types)
        where = f"{OPTION}.{index}"
        found: list[Trigger]
        if declared.on == "contract_saved":
            found = [Trigger("CV", None, "contract")]
        elif declared.on == "contract_situation":
            found = [Trigger("CV", str(s), "contract") for s in declared.situations]
        elif declared.on == "reservation_situation":
            found = [Trigger("RS", str(s), "reservation") for s in declared.situations]
        else:
            func, _, gatilho = str(declared.event).partition(":")
            found = [Trigger(func, None if gatilho == "*" else gatilho, declared.names or "contract")]
        rules += [Rule(t, types, declared.when_validated, where) for t in found]
    return rules


def declared_events(tenant: TenantConfig) -> str | None:
    """The tenant's own ``dispatch_events`` value (not the spec's default), if it wrote one."""
    config = tenant.connectors.get(CONNECTOR)
    return None if config is None else config.values.get(VALUE)


def tenant_rules(tenant: TenantConfig) -> list[Rule]:
    """The tenant's dispatch rules: its ``options.dispatch_triggers``, else one plain rule (every
    contract type, validated and unsigned) per ``dispatch_events`` entry.

    Declaring both is a ConfigurationError naming both fields, as is declaring rules without a CV CRM
    connector to receive their webhooks.
    """
    declared = tenant.options.dispatch_triggers
    if declared is None:
        return [Rule(t) for t in tenant_triggers(tenant)]
    if declared_events(tenant) is not None:
        raise ConfigurationError(
            f"both {OPTION} and connectors.{CONNECTOR}.values.{VALUE} say which events dispatch",
            tenant=tenant.id,
            field=OPTION,
            hint=f"keep one: remove connectors.{CONNECTOR}.values.{VALUE} (dispatch_triggers can say all it "
            "says: on: webhook for any FUNC:GATILHO)",
        )
    if declared and CONNECTOR not in tenant.connectors:
        raise ConfigurationError(
            f"{OPTION} needs CV CRM webhooks, but the tenant has no {CONNECTOR} connector",
            tenant=tenant.id,
            field=OPTION,
            hint=f"add connectors.{CONNECTOR}, or remove {OPTION} (the poll alone)",
        )
    return rules_of(declared)


def poll_refusal(tenant: TenantConfig, contract: Mapping[str, Any]) -> str | None:
    """Why the poll (and every automatic run) must not send ``contract`` under the tenant's rules, or
    None. When every rule of ``options.dispatch_triggers`` names contract types, only those types are
    dispatched automatically: the poll, the fallback for a missed webhook, applies the same flag. A
    contract named by hand (`ponte sync dispatch --contract`) is not filtered."""
    if not tenant.options.dispatch_triggers:
        return None
    rules = rules_of(tenant.options.dispatch_triggers)
    if any(not rule.contract_types for rule in rules) or any(rule.type_matches(contract) for rule in rules):
        return None
    return f"contract type {type_label(contract)} is not a trigger ({OPTION})"


@dataclass(frozen=True)
class TriggerProblem:
    """Why ``ponte validate`` refuses a tenant's dispatch triggers: the field (dotted) and what is wrong."""

    field: str
    message: str


_SECRET_REF = re.compile(r"\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\??\}")


def trigger_problems(tenant: TenantConfig) -> list[TriggerProblem]:
    """What the schema cannot see about a tenant's dispatch triggers (``ponte validate`` reports it).

    - ``dispatch_events`` that does not parse (named at that value);
    - ``options.dispatch_triggers`` and ``dispatch_events`` both set (refused: one source of truth);
    - rules without a CV CRM connector, or whose connector cannot verify CV's deliveries: its spec
      declares no webhook, or the webhook's verification needs a credential the connector lacks
      (``webhook_secret`` for CV CRM's URL secret), so the gateway would refuse every delivery;
    - two rules listening to the same event type but saying its id names different things.

    ``contract_types`` are checked for shape only (schema): CV CRM's API as our connector spec describes
    it (PROVIDERS.md §2) has no listing of contract types to check names against (UNCONFIRMED).
    """
    declared = tenant.options.dispatch_triggers
    if declared is None:
        try:
            tenant_triggers(tenant)
        except ConfigurationError as exc:
            return [TriggerProblem(f"connectors.{CONNECTOR}.values.{VALUE}", exc.message)]
        return []
    if declared_events(tenant) is not None:
        return [TriggerProblem(OPTION, f"both {OPTION} and connectors.{CONNECTOR}.values.{VALUE} say which "
                               f"events dispatch; keep one (remove connectors.{CONNECTOR}.values.{VALUE}: "
                               "on: webhook says anything it says)")]
    if not declared:
        return []
    config = tenant.connectors.get(CONNECTOR)
    if config is None:
        return [TriggerProblem(OPTION, f"the rules need CV CRM webhooks but the tenant has no {CONNECTOR} "
                               f"connector (add connectors.{CONNECTOR}, or remove {OPTION}: the poll alone)")]
    problems: list[TriggerProblem] = []
    try:
        hooks = dict(getattr(load_spec(config.spec), "webhooks", {}) or {})
    except ConfigurationError as exc:
        return [TriggerProblem(f"connectors.{CONNECTOR}.spec", exc.message)]
    if not hooks:
        problems.append(TriggerProblem(OPTION, f"the {CONNECTOR} connector's spec {config.spec!r} declares no "
                                       "webhook, so no CV CRM delivery can be received and verified; these "
                                       "rules would never fire (the poll alone sends ready contracts)"))
    for name, hook in hooks.items():
        verify = hook.verify.model_dump_json() if hasattr(hook.verify, "model_dump_json") else str(hook.verify)
        missing = sorted({ref for ref in _SECRET_REF.findall(verify) if ref not in config.credentials})
        if missing:
            creds = ", ".join(f"connectors.{CONNECTOR}.credentials.{ref}" for ref in missing)
            problems.append(TriggerProblem(OPTION, f"the rules need CV CRM's {name!r} webhook, which the "
                                           f"{CONNECTOR} connector cannot verify without {creds} (set it "
                                           "as {env: VARIABLE}), so the gateway would refuse every delivery"))
    rules = rules_of(declared)
    for index, rule in enumerate(rules):
        for other in rules[:index]:
            overlap = rule.trigger.matches(other.trigger.event_type) or other.trigger.matches(rule.trigger.event_type)
            if overlap and rule.trigger.subject != other.trigger.subject and rule.where != other.where:
                problems.append(TriggerProblem(rule.where, f"listens to {rule.trigger.event_type} as a "
                                               f"{rule.trigger.subject} id, but {other.where} reads "
                                               f"{other.trigger.event_type} as a {other.trigger.subject} id"))
                break
    return problems


def matching(rules: Sequence[Rule], event_type: str | None) -> list[Rule]:
    """The rules an event type starts; all of them name the same kind of subject (the first's)."""
    found = [rule for rule in rules if rule.trigger.matches(event_type)]
    return [rule for rule in found if rule.trigger.subject == found[0].trigger.subject] if found else []


@dataclass(frozen=True)
class Decision:
    """What the rules say of one contract as the CRM shows it."""

    #: dispatch | signed | not_ready | type
    kind: Literal["dispatch", "signed", "not_ready", "type"]
    reason: str | None = None

    @property
    def dispatch(self) -> bool:
        return self.kind == "dispatch"


def type_label(contract: Mapping[str, Any]) -> str:
    name, type_id = contract.get("tipo"), contract.get("idtipo")
    if name in (None, "") and type_id in (None, ""):
        return "(none given by the CRM)"
    if name in (None, ""):
        return f"#{type_id}"
    return f"{name!r}" + (f" (#{type_id})" if type_id not in (None, "") else "")


def decide(rules: Sequence[Rule], contract: Mapping[str, Any]) -> Decision:
    """Dispatch ``contract`` (the CRM's record) under the rules its event matched, or why not.

    Signed: never. Otherwise it goes when one rule accepts its type and either does not ask for
    validation or the CRM shows it validated. No rule: nothing accepts it (``type``, as no type is a
    trigger then).
    """
    if str(contract.get("assinado", "")).upper() == "S":
        return Decision("signed", "already signed in the CRM")
    typed = [rule for rule in rules if rule.type_matches(contract)]
    if not typed:
        return Decision("type", f"contract type {type_label(contract)} is not a trigger")
    if any(not rule.when_validated or is_ready(contract) for rule in typed):
        return Decision("dispatch")
    return Decision("not_ready", not_ready_reason(contract))


@dataclass
class Evaluation:
    """What the rules made of a run's events: the records to dispatch, and the contracts they skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[ContractOutcome] = field(default_factory=list)
    #: per subject (kind, id): why contracts it named were not dispatched, for the inbox row
    notes: dict[tuple[Subject, str], list[str]] = field(default_factory=dict)


def evaluate(
    cvcrm: Any,
    wanted: Sequence[tuple[Subject, str, Sequence[Rule]]],
    *,
    store: Store | None = None,
    tenant: str = "",
    run_id: str | None = None,
    progress: Callable[[], Any] = lambda: None,
) -> Evaluation:
    """Re-read what each event names and judge it by the event's rules (a webhook is only a hint).

    A named contract is dispatched or skipped with its reason; a named reservation contributes its
    contracts that pass, and those that fail only by their type are skipped with that reason (the ones
    not ready or signed are no reservation's ready contracts, as without rules). A contract named twice
    is judged by all the rules that named it. A contract the CRM does not have is dead-lettered (as a
    named contract is without rules); a reservation it does not have is logged and noted.
    """
    result = Evaluation()
    rules_by_contract: dict[str, list[Rule]] = {}
    #: contract id -> its record (named contracts come enriched; a reservation's are enriched only if sent)
    records: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    named_by: dict[str, list[tuple[Subject, str]]] = {}
    explicit: set[str] = set()
    for kind, subject, rules in wanted:
        found: list[tuple[dict[str, Any], dict[str, Any] | None]]
        if kind == "contract":
            ref = ContractRef.parse(subject)
            try:
                found = [records.get(ref.contract_id) or (load_contract(cvcrm, ref), None)]
            except NotFoundError as exc:
                exc.context(tenant=tenant)
                if store is not None:
                    deadletters.put(store, tenant=tenant, flow=FLOW, record_key=ref.record_key, error=exc,
                                    payload={"contract": subject}, run_id=run_id)
                result.skipped.append(ContractOutcome(ref.contract_id, "dead_lettered", reason=str(exc)))
                result.notes.setdefault((kind, subject), []).append(f"dead-lettered: {exc.message}")
                continue
            explicit.add(str(found[0][0].get("idreservacontrato")))
        else:
            try:
                reserva = cvcrm.read_one("reservas", subject)
            except NotFoundError as exc:
                log.warning("reservation %s not read, nothing dispatched from it: %s", subject, exc)
                result.notes.setdefault((kind, subject), []).append(f"reservation not read: {exc.message}")
                continue
            found = [(contrato, reserva) for contrato in contracts_of(cvcrm, reserva)]
        for record, reserva in found:
            cid = str(record.get("idreservacontrato"))
            records.setdefault(cid, (record, reserva))
            rules_by_contract.setdefault(cid, []).extend(rules)
            named_by.setdefault(cid, []).append((kind, subject))
        progress()
    for cid, (record, reserva) in records.items():
        decision = decide(rules_by_contract[cid], record)
        if decision.dispatch:
            result.records.append(record if reserva is None else enrich(cvcrm, reserva, record))
            continue
        if cid not in explicit and decision.kind != "type":
            continue  # a reservation's contract that is signed or not ready: none of its ready contracts
        reservation = str(record.get("idreserva") or (reserva or {}).get("idreserva") or "") or None
        result.skipped.append(ContractOutcome(cid, "skipped", reason=decision.reason, reservation_id=reservation))
        for named in named_by[cid]:
            note = f"skipped: {decision.reason}" + (f" (contract {cid})" if named[0] == "reservation" else "")
            result.notes.setdefault(named, []).append(note)
            log.info("CV CRM %s %s: contract %s %s", named[0], named[1], cid, note)
    return result


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
    #: under rule-based triggers: event id -> why what it named was not dispatched ("skipped: ...")
    notes: dict[int, str] = field(default_factory=dict)

    @property
    def superseded(self) -> bool:
        """The lease was gone when the run started: another run has (or had) these events."""
        return self.events == 0

    def as_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = dict(self.report.as_metadata()) if self.report else {}
        meta.update({"inbox_events": self.events, "inbox_done": self.done, "inbox_retry": self.retry,
                     "superseded": self.superseded})
        if self.notes:
            meta["inbox_notes"] = [f"event {event_id}: {note}" for event_id, note in sorted(self.notes.items())][:50]
        return meta


def dispatch_claimed(
    store: Store,
    tenant: TenantConfig,
    token: str,
    request: DispatchRequest,
    connectors: TenantConnectors | None = None,
    *,
    dispatch: Callable[..., DispatchReport] = run_dispatch,
) -> ClaimedRun:
    """Dispatch what the events held by ``token`` name, then mark those events processed.

    ``request`` gives the run's id and document options; its contracts and reservations are replaced by
    the subjects of the events still held (never "every ready contract"). Each event is ``done`` once its
    contract has an outcome, or ``failed`` (offered again shortly) when the contract was deferred. If the
    dispatch raises (a tenant-wide stop, the CRM unreachable), the events stay leased to this run for
    ``FAILURE_RETRY_SECONDS`` (a step retry renews them) and the error is re-raised.

    Under ``options.dispatch_triggers`` the run reads the CRM here (:func:`evaluate`) and hands
    ``dispatch`` the records that pass (``records=``); an event whose contracts were skipped is marked
    ``done`` with ``skipped: <reason>`` as its note (``last_error``).
    """
    outcome = ClaimedRun(token)
    held = renew(store, token)
    if not held:
        log.info("dispatch run %s: its inbox events were handed to another run; nothing to do", token)
        return outcome
    rules = tenant_rules(tenant)
    events = _held_events(store, held)
    subjects, wanted = _subjects(rules, events, outcome)
    outcome.events = len(events)
    request.contracts, request.reservations = list(outcome.contracts), list(outcome.reservations)
    request.all_ready, request.ready_only = False, True
    evaluation: Evaluation | None = None
    if request.contracts or request.reservations:
        try:
            if tenant.options.dispatch_triggers is None:
                outcome.report = dispatch(
                    store, tenant, request, connectors, progress=lambda _cid, _result: renew(store, token)
                )
            else:
                outcome.report, evaluation = _dispatch_by_rules(store, tenant, token, request, connectors,
                                                                wanted, dispatch)
        except Exception as exc:
            _hold_for_retry(store, token, f"{type(exc).__name__}: {exc}")
            raise
    _release_held(store, token, events, subjects, outcome, evaluation)
    return outcome


#: a held event as dispatch_claimed reads it: (id, event type, body)
HeldEvent = tuple[int, str | None, Any]


def _held_events(store: Store, held: list[int]) -> list[HeldEvent]:
    with store.session() as session:
        return [
            (row.id, row.event_type, row.body)
            for row in session.scalars(select(InboxEvent).where(InboxEvent.id.in_(held)).order_by(InboxEvent.id))
        ]


def _subjects(
    rules: list[Rule], events: list[HeldEvent], outcome: ClaimedRun
) -> tuple[dict[int, tuple[Subject, str] | None], dict[tuple[Subject, str], list[Rule]]]:
    """What each event names (None: no rule matched, or no subject in its body) and, per subject, the
    rules that matched it. The contracts and reservations named are added to ``outcome`` in order."""
    subjects: dict[int, tuple[Subject, str] | None] = {}
    wanted: dict[tuple[Subject, str], list[Rule]] = {}
    for event_id, event_type, body in events:
        matched, subject = matching(rules, event_type), _subject(body)
        trigger = matched[0].trigger if matched else None
        subjects[event_id] = (trigger.subject, subject) if trigger and subject else None
        if trigger and subject:
            names = outcome.contracts if trigger.subject == "contract" else outcome.reservations
            if subject not in names:
                names.append(subject)
            wanted.setdefault((trigger.subject, subject), []).extend(matched)
    return subjects, wanted


def _release_held(
    store: Store,
    token: str,
    events: list[HeldEvent],
    subjects: Mapping[int, tuple[Subject, str] | None],
    outcome: ClaimedRun,
    evaluation: Evaluation | None,
) -> None:
    """Release each event: ``failed`` (offered again shortly) when what it named was deferred, else
    ``done`` with the rules' notes on it, if any. Counts land in ``outcome``."""
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
        else:
            notes = evaluation.notes.get(named, []) if evaluation is not None and named is not None else []
            note = "; ".join(dict.fromkeys(notes))[:500] or None
            if release(store, InboxEvent, event_id, worker=token, status="done", error=note):
                outcome.done += 1
                if note:
                    outcome.notes[event_id] = note


def _dispatch_by_rules(
    store: Store,
    tenant: TenantConfig,
    token: str,
    request: DispatchRequest,
    connectors: TenantConnectors | None,
    wanted: Mapping[tuple[Subject, str], list[Rule]],
    dispatch: Callable[..., DispatchReport],
) -> tuple[DispatchReport, Evaluation]:
    """Judge what the events name by their rules on the CRM's records, dispatch the ones that pass."""
    conns = connectors or TenantConnectors(tenant, store)
    try:
        evaluation = evaluate(
            conns.get(CONNECTOR),
            [(kind, subject, rules) for (kind, subject), rules in wanted.items()],
            store=store,
            tenant=tenant.id,
            run_id=request.run_id,
            progress=lambda: renew(store, token),
        )
        if evaluation.records:
            report = dispatch(store, tenant, request, conns, records=evaluation.records,
                              progress=lambda _cid, _result: renew(store, token))
        else:
            report = DispatchReport(tenant=tenant.id, plan=request.plan)
        report.outcomes[:0] = evaluation.skipped
        return report, evaluation
    finally:
        if connectors is None:
            conns.close()


def _hold_for_retry(store: Store, token: str, error: str) -> None:
    with store.session() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.claimed_by == token, InboxEvent.status == "processing")
            .values(last_error=error[:500], claimed_until=utcnow() + timedelta(seconds=FAILURE_RETRY_SECONDS))
        )

"""The import flow, plain Python: read Sienge incrementally, map, skip unchanged, upsert into CV CRM.

Order matters: enterprises → units → customers (the spouse inside the CV cliente) → sales, so a sale
always finds its buyers and units. Per record: map to canonical (validated), map to the CRM payload
(its field limits checked), hash it; an equal hash in the id map means nothing changed and nothing is
read from or written to the CRM. A bad record becomes a dead letter with its reason and the batch goes
on.

A record that changed and is already in the CRM is read back by its CV id first (one GET, only then):
its fields the CRM owns (the mapping's ``ownership`` section) are merged into what is sent
(``merge_owned``), so they survive whether CV's write keeps or drops the fields a body leaves out; and a
person whose CPF/CNPJ (or spouse's CPF) changed in Sienge is never upserted under the new document,
which CV would take for a second person: it becomes a dead letter saying what to change in the CRM.

The cursor of each stream advances only when the stream was read to the end, in the same transaction
as the last id-map rows, so a crash means re-reading (and skipping by hash), never missing a record.
"""

from __future__ import annotations

import contextlib
import itertools
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.runtime import Connector
from mappings import merge_owned
from pipelines.imports import hashing
from pipelines.imports.collector import bulk_collection
from pipelines.imports.parallel import Staged, StagingPool, staged_batches
from pipelines.imports.report import LOGGED_PER_REASON, EntityCounts, ImportReport
from pipelines.imports.translate import MAPPINGS, Translator
from pipelines.readahead import read_ahead
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.repos import (
    XrefRow,
    audit_many,
    get_cursor,
    get_xref,
    refresh_statistics,
    set_cursor,
    upsert_xrefs,
    xrefs_by_ids,
)
from ponte import (
    ConflictError,
    DataError,
    NotFoundError,
    PonteError,
    TransientError,
    get_logger,
    mask_document,
    settings,
)
from schemas import TenantConfig

log = get_logger("import")
FLOW = "import"
SOURCE, TARGET = "sienge", "cvcrm"
BATCH = 200
#: batches read ahead of the one being mapped (memory stays flat: a few hundred records)
READ_AHEAD = 2
LOOKUP_CACHE = 20_000
#: the id map's entity names (mappings look people up as "person")
XREF = {"enterprise": "enterprise", "unit": "unit", "customer": "person", "sale": "sale"}

Progress = Callable[[str, int], None]


class DeferredError(TransientError):
    """A record waits for another one that failed transiently in the same run."""


@dataclass
class ImportRequest:
    """What to import: incremental (default), everything, since a date, or given Sienge ids."""

    full: bool = False
    since: date | None = None
    #: entity -> Sienge ids (e.g. {"customer": ["42"]}); other entities are not read
    ids: dict[str, list[str]] = field(default_factory=dict)
    plan: bool = False
    run_id: str | None = None
    entities: tuple[str, ...] = ("enterprise", "unit", "customer", "sale")


def _unchanged(previous: XrefRow | None, digest: str, payload: Any) -> tuple[bool, bool]:
    """(unchanged, stored under the legacy hash) for a record's id-map row and its new hash."""
    if previous is None or previous[1] is None:
        return False, False
    if previous[1] == digest:
        return True, False
    return (True, True) if previous[1] == hashing.legacy_content_hash(payload) else (False, False)


@dataclass
class _Decision:
    record_id: str
    kind: str  # created | updated | unchanged | cancelled
    payload: dict[str, Any]
    hash: str
    target_id: str | None = None
    #: unchanged, but its id-map row still carries the legacy hash: rewrite the row (not the CRM)
    rehash: bool = False


class ImportRun:
    def __init__(
        self,
        store: Store,
        tenant: TenantConfig,
        sienge: Connector,
        cvcrm: Connector,
        request: ImportRequest,
        progress: Progress | None = None,
        translator: Translator | None = None,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.sienge = sienge
        self.cvcrm = cvcrm
        self.request = request
        self.progress = progress or (lambda _entity, _n: None)
        self.report = ImportReport(tenant=tenant.id, plan=request.plan)
        self.translate = translator or Translator(tenant, self._lookup)
        #: a bounded cache for mapping lookups
        self._lookups: dict[tuple[str, str], str | None] = {}
        #: worker processes for the translation of big stages, started when one needs them
        self._workers = settings.import_workers()
        self._pool: StagingPool | None = None
        #: stages whose bulk load already refreshed the store's planner statistics
        self._analyzed: set[str] = set()
        #: records that failed transiently this run, per id-map entity: they are retried, not dead-lettered
        self._deferred: dict[str, set[str]] = {}
        #: failed records (by record key) whose dead letters go out with their batch's writes, and the
        #: records whose open letters close with them
        self._letters: dict[str, deadletters.Letter] = {}
        self._resolved: set[str] = set()
        #: failures so far per reason code: the log shows the first few of each, then counts
        self._failures: dict[str, int] = {}

    # ----------------------------------------------------------------------------------- reading

    def _since(self, stream: str) -> datetime | None:
        if self.request.full:
            return None
        if self.request.since:
            return datetime.combine(self.request.since, datetime.min.time(), tzinfo=UTC)
        with self.store.session() as session:
            value = get_cursor(session, self.tenant.id, SOURCE, stream)
        if not value:
            return None
        return datetime.fromisoformat(value) - timedelta(minutes=self.tenant.options.lookback_minutes)

    def _records(self, entity: str, stream: str) -> Iterator[dict[str, Any]]:
        wanted = self.request.ids.get(entity)
        if self.request.ids and wanted is None:
            return
        if wanted is not None:
            for record_id in wanted:
                try:
                    yield self.sienge.read_one(stream, record_id)
                except NotFoundError as exc:
                    self._dead(entity, record_id, exc, {"id": record_id})
            return
        yield from self.sienge.read(stream, since=self._since(stream))

    # ----------------------------------------------------------------------------------- lookups

    def _lookup(self, entity: str, source_system: str, source_id: str, target_system: str) -> str | None:
        """Id-map lookups for mappings (e.g. a sale's buyer → CRM person), cached within bounds."""
        key = (entity, str(source_id))
        if str(source_id) in self._deferred.get(entity, ()):
            raise DeferredError(
                f"{entity} {source_id} failed transiently earlier in this run; this record waits for it",
                hint="nothing to do: the next run retries both",
            )
        if key in self._lookups and (source_system, target_system) == (SOURCE, TARGET):
            return self._lookups[key]
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, entity, source_system, str(source_id), target_system)
        target = row.target_id if row else None
        if (source_system, target_system) == (SOURCE, TARGET):
            self._remember(key, target)
        return target

    def _remember(self, key: tuple[str, str], target: str | None) -> None:
        """Cache a lookup, within bounds: a run writes one entry per imported record."""
        if len(self._lookups) >= LOOKUP_CACHE:
            self._lookups.clear()
        self._lookups[key] = target

    # ----------------------------------------------------------------------------------- failures

    def _dead(self, entity: str, record_id: str, error: PonteError, payload: dict[str, Any]) -> None:
        """A bad record: counted, logged (the first few of its reason) and dead-lettered with the
        batch's other writes (``_record``), in one statement for the batch."""
        counts = self.report.entities[entity]
        counts.failed += 1
        error.context(tenant=self.tenant.id, record=f"{entity} {record_id}")
        reason = deadletters.reason_code(error)
        self._log_failure(reason, "import %s %s failed: %s", entity, record_id, error)
        if self.request.plan:
            return
        key = f"{entity}:{record_id}"
        self._resolved.discard(key)
        self._letters[key] = deadletters.Letter(
            tenant=self.tenant.id,
            flow=FLOW,
            record_key=key,
            error=error,
            payload=payload,
            mapping_version=self.translate.version(entity),
            run_id=self.request.run_id,
        )
        counts.dead_lettered += 1
        self.report.note_dead_letter(reason)

    def _log_failure(self, reason: str, message: str, *args: Any) -> None:
        """One WARNING per failure for the first few of each reason; the others are counted and
        summarised when the run ends (``_summarise_failures``)."""
        seen = self._failures[reason] = self._failures.get(reason, 0) + 1
        if seen <= LOGGED_PER_REASON:
            log.warning(message, *args)

    def _summarise_failures(self) -> None:
        """At the run's end: how many failures of each reason the log did not show, and the dead
        letters by reason, with the commands to inspect and replay them."""
        for reason, seen in sorted(self._failures.items(), key=lambda item: -item[1]):
            if seen > LOGGED_PER_REASON:
                log.warning(
                    "import %s: %d more failure(s) not logged one by one, reason %s (%s)",
                    self.tenant.id, seen - LOGGED_PER_REASON, reason,
                    "plan: nothing dead-lettered" if self.request.plan else self.report.list_command(reason),
                )
        if self.report.dead_letters_by_reason:
            shown, others, letters = self.report.shown_reasons()
            table = "; ".join(f"{count} × {reason}" for reason, count in shown)
            more = f"; {letters} more in {others} other reason(s)" if others else ""
            log.warning(
                "import %s dead-lettered %d record(s) by reason: %s%s. Inspect: %s; replay after the fix: %s",
                self.tenant.id, self.report.total("dead_lettered"), table, more, self.report.list_command(),
                self.report.replay_command(),
            )

    # ----------------------------------------------------------------------------------- stages

    def run(self) -> ImportReport:
        stages = {
            "enterprise": ("enterprises", self._reference),
            "unit": ("units", self._reference),
            "customer": ("customers", self._customers),
            "sale": ("sales_contracts", self._sales),
        }
        try:
            with bulk_collection():
                for entity, (stream, handler) in stages.items():
                    if entity not in self.request.entities:
                        continue
                    handler(entity, stream)
        finally:
            if self._pool is not None:
                self._pool.close()
        self.report.api_calls = {"sienge": self.sienge.api_calls, "cvcrm": self.cvcrm.api_calls}
        self._summarise_failures()
        return self.report

    def _translated(
        self, entity: str, batches: Iterator[list[dict[str, Any]]]
    ) -> Iterator[tuple[list[dict[str, Any]], list[Staged] | None]]:
        """Each batch with its records' translations (None: the stage translates as it decides).
        Workers join only when the stage's first batch is full, so there is more to come."""
        if not self.translate.runs_alone(entity):
            for batch in batches:
                yield batch, None
            return
        first = next(batches, None)
        if first is None:
            return
        if self._pool is None and len(first) >= BATCH and self._workers > 0:
            try:
                self._pool = StagingPool(self.tenant, self._workers)
            except (OSError, RuntimeError, AssertionError) as exc:  # e.g. a daemonic process may not fork
                log.warning("import workers could not start (%s); translating in the run itself", exc)
                self._workers = 0
        yield from staged_batches(itertools.chain([first], batches), entity, self.translate, self._pool)

    def _batches(self, entity: str, stream: str) -> Generator[list[dict[str, Any]], None, None]:
        batches = _chunks(self._records(entity, stream), BATCH)
        if self.request.ids:
            return batches  # a few records by id: read here, where a missing one becomes a dead letter
        # the next pages are fetched while this one is mapped and stored (the Sienge connector is
        # used by nothing else during a stage)
        return read_ahead(batches, depth=READ_AHEAD, name=f"import-read-{self.tenant.id}-{stream}")

    def _commit(
        self,
        entity: str,
        stream: str,
        decisions: Iterable[_Decision],
        cursor: str | None,
        final: bool,
        next_ids: list[str] | None = None,
    ) -> dict[str, XrefRow]:
        """Record what was written, and on the stream's last batch, advance its cursor, in one transaction.

        The same transaction then reads the id-map rows of the next batch (``next_ids``), which sees
        what it just wrote: one transaction a batch instead of two (each costs a write lock on SQLite).
        """
        with self.store.session() as session:
            if not self.request.plan:
                self._record(session, entity, stream, decisions, cursor, final)
            if not next_ids:
                return {}
            return xrefs_by_ids(session, self.tenant.id, XREF[entity], SOURCE, TARGET, next_ids)

    def _record(
        self,
        session: Session,
        entity: str,
        stream: str,
        decisions: Iterable[_Decision],
        cursor: str | None,
        final: bool,
    ) -> None:
        version = self.translate.version(entity)
        changed = [d for d in decisions if d.kind != "unchanged"]
        upsert_xrefs(
            session,
            [
                {
                    "tenant": self.tenant.id,
                    "entity": XREF[entity],
                    "source_system": SOURCE,
                    "source_id": d.record_id,
                    "target_system": TARGET,
                    "target_id": d.target_id,
                    "content_hash": d.hash,
                    "mapping_version": version,
                }
                for d in decisions
                if d.kind != "unchanged" or d.rehash
            ],
        )
        for decision in changed:
            if decision.target_id is not None:
                self._remember((XREF[entity], decision.record_id), decision.target_id)
        audit_many(
            session,
            [
                {
                    "tenant": self.tenant.id,
                    "flow": FLOW,
                    "action": d.kind,
                    "entity": entity,
                    "entity_id": d.target_id or d.record_id,
                    "source_record": f"sienge:{entity}:{d.record_id}",
                    "mapping_version": version,
                    "run_id": self.request.run_id,
                }
                for d in changed
            ],
        )
        # the batch's dead letters and closed letters: one statement each, whatever the table holds
        if self._letters:
            deadletters.put_many(session, list(self._letters.values()))
            self._letters.clear()
        if self._resolved:
            deadletters.resolve_many(session, self.tenant.id, FLOW, self._resolved)
            self._resolved.clear()
        if final and cursor and not self.request.ids:
            set_cursor(session, self.tenant.id, SOURCE, stream, cursor)
            self.report.cursors[stream] = cursor

    def _stage(
        self,
        entity: str,
        stream: str,
        decide: Callable[[dict[str, Any], dict[str, Any], Staged | None], _Decision | None],
    ) -> None:
        counts: EntityCounts = self.report.entities[entity]
        cursor: str | None = None
        # one query a stage: the records with an open letter, closed with their batch when they succeed
        open_letters = (
            set() if self.request.plan
            else deadletters.open_keys(self.store, self.tenant.id, FLOW, prefix=f"{entity}:")
        )
        pending: list[_Decision] = []
        complete = True
        # closed on any error too, so the read-ahead thread stops at once
        with contextlib.closing(self._batches(entity, stream)) as batches:
            for batch, translations in self._translated(entity, batches):
                ids = [str(r.get("id")) for r in batch]
                known = self._commit(entity, stream, pending, cursor, final=False, next_ids=ids)
                if entity not in self._analyzed and _created(pending) >= BATCH // 2:
                    # a bulk load: PostgreSQL plans the id-map lookup from statistics, and a table
                    # that was empty has none (it then walked every row of the entity: 14-17 ms a batch
                    # at 50,000 customers instead of 2 ms); autovacuum comes too late for this run
                    self._analyzed.add(entity)
                    refresh_statistics(self.store)
                pending = []
                for index, raw in enumerate(batch):
                    counts.read += 1
                    record_id = str(raw.get("id"))
                    modified = raw.get("modifiedAt") or raw.get("modificationDate")
                    if modified and (cursor is None or str(modified) > cursor):
                        cursor = str(modified)
                    staged = translations[index] if translations is not None else None
                    try:
                        if isinstance(staged, PonteError):
                            raise staged
                        decision = decide(raw, known, staged)
                    except TransientError as exc:
                        # only delayed, not bad: count it, keep the cursor where it was, retry next run
                        counts.failed += 1
                        complete = False
                        self._deferred.setdefault(XREF[entity], set()).add(record_id)
                        self._log_failure(
                            deadletters.reason_code(exc), "import %s %s deferred: %s", entity, record_id, exc
                        )
                        continue
                    except PonteError as exc:
                        self._dead(entity, record_id, exc, raw)
                        continue
                    if decision is None:
                        continue
                    counts.note(decision.kind, record_id, self.request.plan)
                    pending.append(decision)
                    if self._letters:  # failed earlier in this batch (a record read twice): it stands now
                        self._letters.pop(f"{entity}:{record_id}", None)
                    if open_letters and f"{entity}:{record_id}" in open_letters:
                        self._resolved.add(f"{entity}:{record_id}")  # closed with the batch's writes
                self.progress(entity, len(batch))
        self._commit(entity, stream, pending, _cursor_value(cursor) if complete else None, final=True)

    # ------------------------------------------------------------------------------ per entity

    def _reference(self, entity: str, stream: str) -> None:
        """Enterprises and units: validated and kept as reference data; CV links them by Sienge id."""

        def decide(raw: dict[str, Any], known: dict[str, Any], staged: Staged | None) -> _Decision:
            record, digest = staged if isinstance(staged, tuple) else self.translate.staged(entity, raw)
            record_id = str(raw["id"])
            previous = known.get(record_id)
            same, rehash = _unchanged(previous, digest, record)
            kind = "unchanged" if same else ("updated" if previous else "created")
            return _Decision(record_id, kind, record, digest, target_id=record_id, rehash=rehash)

        self._stage(entity, stream, decide)

    def _customers(self, entity: str, stream: str) -> None:
        def decide(raw: dict[str, Any], known: dict[str, Any], staged: Staged | None) -> _Decision:
            payloads, digest = staged if isinstance(staged, tuple) else self.translate.staged(entity, raw)
            record_id = str(raw["id"])
            previous = known.get(record_id)
            same, rehash = _unchanged(previous, digest, payloads)
            if same:
                return _Decision(record_id, "unchanged", payloads[-1], digest, previous[0], rehash)
            kind = "updated" if previous else "created"
            target_id = previous[0] if previous else None
            if self.request.plan:  # a plan calls the CRM for nothing, reads included
                return _Decision(record_id, kind, payloads[-1], digest, target_id)
            payload = payloads[-1]  # the cliente, its spouse inside (CV's ``conjuge``)
            # the hash changed: only now is the CRM read (never on the unchanged path)
            if target_id is not None:
                stored = self._stored_person(idcliente=target_id)
            elif self._read_before_create:
                stored = self._stored_person(documento=payload["documento"])
            else:
                stored = None
            if stored is not None:
                if target_id is not None:
                    _same_documents(record_id, target_id, stored, payload)
                payload = self._with_crm_fields(stored, payload, "customer")
            result = self.cvcrm.call("upsert_cliente", payload)
            target_id = result.id or target_id
            return _Decision(record_id, kind, payloads[-1], digest, target_id)

        self._stage(entity, stream, decide)

    @property
    def _read_before_create(self) -> bool:
        """The tenant says CV's upsert drops what a body leaves out (connector value ``cliente_upsert``):
        a person the CRM registered before Sienge did is read by document before Ponte's first write."""
        values = getattr(self.cvcrm, "values", None) or {}
        return values.get("cliente_upsert") == "replace"

    def _stored_person(self, **key: str) -> dict[str, Any] | None:
        """The person CV CRM holds, by its CV id (``idcliente``) or ``documento``; None if there is none."""
        for person in self.cvcrm.read("clientes", params=key, limit=1):
            return person
        return None

    def _with_crm_fields(self, stored: dict[str, Any], payload: dict[str, Any], entity: str) -> dict[str, Any]:
        """What to send over a record CV holds: the mapped payload, plus the fields the mapping says the
        CRM owns as CV holds them (and the fields the mapping does not know), so a write keeps them
        whether CV merges it into the record or replaces the record with it."""
        mapping = self.translate.mapping(MAPPINGS[entity][1])
        return merge_owned(stored, payload, mapping)

    def _sales(self, entity: str, stream: str) -> None:
        def decide(raw: dict[str, Any], known: dict[str, Any], _staged: Staged | None) -> _Decision:
            sale, payload = self.translate.sale(raw)
            record_id = str(raw["id"])
            digest = hashing.content_hash(payload)
            previous = known.get(record_id)
            cancelled = sale.status.value == "cancelled"
            same, rehash = _unchanged(previous, digest, payload)
            if same:
                return _Decision(record_id, "unchanged", payload, digest, previous[0], rehash)
            if cancelled and not previous:
                # never reserved in the CRM: create it so the CRM shows the cancelled sale, then cancel
                kind = "cancelled"
            elif cancelled:
                kind = "cancelled"
            else:
                kind = "updated" if previous else "created"
            target_id = previous[0] if previous else None
            if self.request.plan:
                return _Decision(record_id, kind, payload, digest, target_id)
            if target_id is None:
                result = self.cvcrm.call(
                    "create_reserva", payload, idempotency_key=f"{self.tenant.id}:sale:{record_id}"
                )
                target_id = result.id
            elif not cancelled:
                # the sale changed: keep what the CRM team wrote on the reservation (notes, broker, an
                # associate they added such as a procurador) whether CV's PUT merges or replaces
                stored = self.cvcrm.read_one("reservas", target_id)
                body = _with_crm_associates(stored, self._with_crm_fields(stored, payload, "sale"), payload)
                self.cvcrm.call("update_reserva", {**body, "idreserva": target_id})
            if cancelled:
                # a 409 means already cancelled (an earlier run got this far): the goal state holds
                with contextlib.suppress(ConflictError):
                    self.cvcrm.call(
                        "cancel_reserva",
                        {"idreserva": target_id, "motivo": sale.cancellation_reason or "Cancelado no Sienge"},
                    )
            return _Decision(record_id, kind, payload, digest, target_id)

        self._stage(entity, stream, decide)


#: associate types the import writes on a reservation (mappings/cvcrm/sale_to_reserva.yaml); any other
#: type (a procurador, a fiador the CRM team added) is the CRM's and is kept
PONTE_ASSOCIATES = frozenset({"conjuge", "cocomprador"})


def _with_crm_associates(stored: dict[str, Any], body: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The reservation's associates: Sienge's buyers (the mapped ones) plus those of a type Ponte never
    writes, as CV holds them. A buyer Sienge dropped goes; an associate the CRM team added stays."""
    theirs = [
        {"idpessoa": a["idpessoa"], "tipo": a.get("tipo")}
        for a in stored.get("associados") or []
        if isinstance(a, dict) and a.get("idpessoa") and _folded(a.get("tipo")) not in PONTE_ASSOCIATES
    ]
    ours = list(payload.get("associados") or [])
    taken = {a.get("idpessoa") for a in ours}
    return {**body, "associados": ours + [a for a in theirs if a["idpessoa"] not in taken]}


def _folded(text: Any) -> str:
    """Lower case without accents: ``Cônjuge`` and ``conjuge`` are one associate type."""
    decomposed = unicodedata.normalize("NFKD", str(text or "").strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _document(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isalnum()).upper()


def _same_documents(record_id: str, target_id: str, stored: dict[str, Any], payload: dict[str, Any]) -> None:
    """Refuse to write a person whose CPF/CNPJ, or whose spouse's CPF, differs from what CV CRM holds.

    CV upserts by ``documento``: the new document would make a second person (or a second spouse),
    and CV CRM documents no call that changes a person's document by its CV id (PROVIDERS.md §2; the
    v3 ``PATCH /v3/cadastros/pessoas/{id}`` exists but its body is undocumented). A person changes it
    in the CRM by hand; the replay then finds the documents equal and updates that same person."""
    old, new = _document(stored.get("documento")), _document(payload.get("documento"))
    if old and new and old != new:
        kind = "CPF" if len(new) == 11 else "CNPJ"
        raise DataError(
            f"the {kind} of Sienge customer {record_id} changed from {mask_document(old)} to "
            f"{mask_document(new)}, and CV CRM person {target_id} still has the old one; CV CRM has no "
            f"documented call that changes a person's {kind} by its id, and upserting by the new one "
            "would make a second person, so nothing was sent",
            field="documento",
            hint=f"change the {kind} of person {target_id} in CV CRM by hand to the one Sienge now has for "
            f"customer {record_id} ({mask_document(new)}), then `ponte deadletter replay` this letter (it "
            "then updates that same person)",
        )
    stored_spouse, spouse = stored.get("conjuge"), payload.get("conjuge")
    if isinstance(stored_spouse, dict) and isinstance(spouse, dict):
        old, new = _document(stored_spouse.get("documento")), _document(spouse.get("documento"))
        if old and new and old != new:
            raise DataError(
                f"the spouse's CPF of Sienge customer {record_id} changed from {mask_document(old)} to "
                f"{mask_document(new)}, and CV CRM person {target_id} still has the old one as spouse; "
                "whether CV CRM keeps a spouse as a person of its own is undocumented, and a new CPF "
                "could make a second one, so nothing was sent",
                field="conjuge.documento",
                hint=f"change the spouse's CPF on person {target_id} in CV CRM by hand to the one Sienge "
                f"now has for customer {record_id}'s spouse ({mask_document(new)}), then `ponte "
                "deadletter replay` this letter",
            )


def _created(decisions: list[_Decision]) -> int:
    return sum(1 for d in decisions if d.kind == "created")


def _chunks(records: Iterable[dict[str, Any]], size: int) -> Generator[list[dict[str, Any]], None, None]:
    batch: list[dict[str, Any]] = []
    for raw in records:
        batch.append(raw)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _cursor_value(cursor: str | None) -> str | None:
    """Cursors are stored as ISO datetimes; Sienge sends dates or datetimes."""
    if not cursor:
        return None
    try:
        parsed = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"unreadable modification time {cursor!r} from Sienge") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def run_import(
    store: Store,
    tenant: TenantConfig,
    sienge: Connector,
    cvcrm: Connector,
    request: ImportRequest | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one tenant; returns the counts. Safe to run again at any time (it skips what is unchanged)."""
    return ImportRun(store, tenant, sienge, cvcrm, request or ImportRequest(), progress).run()

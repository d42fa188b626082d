"""Technical-assistance sync between CV CRM and Sienge, both directions, plain Python.

CRM -> Sienge: an assistência opened in the CRM (its ``AS`` webhook, a poll, or a reconciliation) is
re-read, mapped, checked (every maintenance item needs its minimum completion days, or nothing is sent),
its attachments downloaded (only from CV CRM's own hosts, see ``Connector.fetch_url``), and created
in Sienge exactly once through the outbox (key ``{tenant}:assistance:{crm id}``, looked up by
``externalId`` after an unsure attempt). Sienge's id is then written back on the CRM record and kept
in the id map (entity ``assistance``, cvcrm -> sienge).

Sienge -> CRM: a hook (``<prefix>_IN_PROGRESS|FINISHED|CANCELED|DELETED``) is only a hint: the request
is re-read from Sienge and the CRM record is moved by the state machine (``state.py``) to the tenant's
configured situation, never backwards. Duplicates and any delivery order therefore converge.

Reconciliation compares both sides, repairs what webhooks missed and reports the drift it found.
A bad record becomes a dead letter (flow ``assistance``) and never stops the batch; every write is
audited with the mapping that produced it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import or_, select

from connectors.runtime import ForeignHostError
from connectors.runtime.client import Connector
from mappings import MappingContext, load_mapping
from pipelines.assistance.report import AssistanceReport, Drift
from pipelines.assistance.state import (
    RANK,
    SIENGE_STATUS,
    crm_status,
    event_status,
    next_status,
    situation_ids,
)
from pipelines.outbox import write_once
from pipelines.store import deadletters
from pipelines.store.claims import claim, release, worker_name
from pipelines.store.db import Store
from pipelines.store.inbox import load_events
from pipelines.store.models import IdMap, InboxEvent
from pipelines.store.repos import audit, get_xref, put_xref
from ponte.errors import (
    ConfigurationError,
    DataError,
    NotFoundError,
    PonteError,
    TransientError,
)
from ponte.logging import get_logger
from schemas.canonical.assistance import TERMINAL_ASSISTANCE, Assistance, AssistanceStatus
from schemas.tenant import TenantConfig

log = get_logger("assistance")

FLOW = "assistance"
ENTITY = "assistance"
CRM, ERP = "cvcrm", "sienge"
#: CV CRM webhook event types are "<funcionalidade>:<gatilho>"; AS = assistência
CRM_EVENT_PREFIX = "AS:"
DEFAULT_EVENT_PREFIX = "TECHNICAL_ASSISTANCE"

TO_CANONICAL = "cvcrm/assistencia_to_assistance"
TO_SIENGE = "sienge/assistance_to_technical_assistance"
FROM_SIENGE = "sienge/technical_assistance_to_assistance"
TO_CRM_UPDATE = "cvcrm/assistance_to_assistencia_update"

#: downloads one attachment (CV CRM links are plain URLs); injectable for tests and other transports
Fetcher = Callable[[str], bytes]



def normalize_assistencia(raw: dict[str, Any]) -> dict[str, Any]:
    """CV CRM's list/detail shape -> the fields the mapping reads.

    The assistências endpoints nest the customer under ``cliente``, name the opening time
    ``data_abertura`` and an attachment's address ``link``; the mapping (and its schema) read the flat
    names. Values already flat are kept.
    """
    out = dict(raw)
    cliente = raw.get("cliente") if isinstance(raw.get("cliente"), dict) else {}
    for key in ("idpessoa", "documento"):
        if out.get(key) in (None, "") and cliente.get(key) not in (None, ""):
            out[key] = cliente[key]
    if not out.get("data_cadastro") and raw.get("data_abertura"):
        out["data_cadastro"] = raw["data_abertura"]
    out["anexos"] = [
        {**a, "url": a.get("url") or a.get("link")} if isinstance(a, dict) else a
        for a in raw.get("anexos") or []
    ]
    return out


def content_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _slim(body: Any) -> dict[str, Any]:
    """A body as the outbox keeps it: attachment bytes replaced by their size (rows stay small)."""
    if not isinstance(body, dict):
        return {"value": body}
    out = dict(body)
    if isinstance(out.get("attachments"), list):
        out["attachments"] = [
            {k: (len(v) if k == "contentBase64" else v) for k, v in a.items()} if isinstance(a, dict) else a
            for a in out["attachments"]
        ]
    return out


def missing_minimum_days(assistance: Assistance) -> DataError | None:
    """The documented error for items Sienge would reject, or None when every item has its days."""
    if not assistance.items:
        return DataError(
            f"assistance {assistance.crm_id} has no maintenance items; Sienge needs at least one",
            record=f"assistencia {assistance.crm_id}",
            field="itens",
            hint="add the maintenance items in CV CRM, then replay with `ponte deadletter replay`",
        )
    missing = [item for item in assistance.items if item.minimum_completion_days is None]
    if not missing:
        return None
    names = ", ".join(f"{item.source_id} ({item.description!r})" for item in missing)
    where = f"protocol {assistance.protocol}" if assistance.protocol else f"id {assistance.crm_id}"
    return DataError(
        f"maintenance item {names} of assistance {assistance.crm_id} has no minimum completion time in "
        "days; Sienge rejects an item without it, so nothing was sent",
        record=f"assistencia {assistance.crm_id}",
        field=f"itens[iditem={missing[0].source_id}].prazo_minimo_dias",
        hint=(
            f"in CV CRM open the assistance ({where}), set the item's minimum completion time "
            "('Prazo mínimo (dias)', field prazo_minimo_dias) on each item named, then run "
            "`ponte deadletter replay` or wait for the next sync"
        ),
        details={"items": [item.source_id for item in missing]},
    )


@dataclass
class AssistanceRequest:
    """What to do in one run. Default: process stored webhooks (the sensor's mode)."""

    events: bool = True
    #: also read the CRM for active assistências never sent (a poll, for tenants without webhooks)
    poll: bool = False
    #: compare both sides, repair and report drift
    reconcile: bool = False
    plan: bool = False
    crm_ids: list[str] = field(default_factory=list)
    sienge_ids: list[str] = field(default_factory=list)
    run_id: str | None = None


class AssistanceSync:
    """One run for one tenant. Connectors are opened by the caller (Dagster, CLI, tests)."""

    def __init__(
        self,
        store: Store,
        tenant: TenantConfig,
        sienge: Connector,
        cvcrm: Connector,
        request: AssistanceRequest | None = None,
        fetch: Fetcher | None = None,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.sienge = sienge
        self.cvcrm = cvcrm
        self.request = request or AssistanceRequest()
        #: the connector runtime's one download path: CV CRM's hosts only, on every redirect hop too, no
        #: credentials sent off the CRM's API origin, the tenant's size limit while the file streams
        self.fetch = fetch or partial(cvcrm.fetch_url, what="attachment", credentials=False)
        self.options = tenant.options.assistance
        self.report = AssistanceReport(tenant=tenant.id, plan=self.request.plan)
        self.context = MappingContext(lookup=self._lookup, tenant=tenant)
        self.worker = worker_name()
        self._mappings: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------ helpers

    @property
    def event_prefix(self) -> str:
        """The tenant's Sienge assistance event prefix (configurable: Sienge's public API has none)."""
        return str(self.sienge.values.get("assistance_event_prefix") or DEFAULT_EVENT_PREFIX)

    def _mapping(self, name: str) -> Any:
        if name not in self._mappings:
            self._mappings[name] = load_mapping(name)
        return self._mappings[name]

    def lineage(self, *names: str) -> str:
        """Mapping versions as the store keeps them (``1+1``, like the import; columns are short).

        The full ``name@version`` lineage goes into each audit row's details.
        """
        return "+".join(str(self._mapping(n).version) for n in names)

    def full_lineage(self, *names: str) -> list[str]:
        return [self._mapping(n).lineage for n in names]

    def _lookup(self, entity: str, source: str, source_id: str, target: str) -> str | None:
        """Id map lookup in both directions (the import stores people as sienge -> cvcrm)."""
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, entity, source, str(source_id), target)
            if row is not None and row.target_id:
                return row.target_id
            reverse = session.scalars(
                select(IdMap.source_id).where(
                    IdMap.tenant == self.tenant.id,
                    IdMap.entity == entity,
                    IdMap.source_system == target,
                    IdMap.target_system == source,
                    IdMap.target_id == str(source_id),
                )
            ).first()
        return reverse

    def _sienge_id_of(self, crm_id: str) -> str | None:
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, ENTITY, CRM, crm_id, ERP)
            return row.target_id if row else None

    def _crm_id_of(self, sienge_id: str) -> str | None:
        return self._lookup(ENTITY, ERP, sienge_id, CRM)

    def _dead(self, record_key: str, error: PonteError, payload: dict[str, Any], mapping: str | None) -> None:
        error.context(tenant=self.tenant.id)
        self.report.failed.append((record_key, str(error)))
        log.warning("assistance %s failed: %s", record_key, error)
        if self.request.plan or error.retryable:
            return
        deadletters.put(
            self.store,
            tenant=self.tenant.id,
            flow=FLOW,
            record_key=record_key,
            error=error,
            payload=payload,
            mapping_version=mapping,
            run_id=self.request.run_id,
        )

    def _resolved(self, record_key: str) -> None:
        if not self.request.plan:
            deadletters.resolve(self.store, self.tenant.id, FLOW, record_key)

    def _audit(self, action: str, entity_id: str, source: str, mapping: str | None, **details: Any) -> None:
        with self.store.session() as session:
            audit(
                session,
                tenant=self.tenant.id,
                flow=FLOW,
                action=action,
                entity=ENTITY,
                entity_id=entity_id,
                source_record=source,
                mapping_version=mapping,
                run_id=self.request.run_id,
                details=details,
            )

    # ------------------------------------------------------------------------------ CRM -> Sienge

    def canonical_from_crm(self, raw: dict[str, Any]) -> Assistance:
        """CRM record -> validated canonical assistance, with the Sienge customer id resolved."""
        assistance: Assistance = self._mapping(TO_CANONICAL).run(normalize_assistencia(raw), self.context)
        if not assistance.customer_source_id:
            customer = self._sienge_customer(raw, assistance)
            assistance = assistance.model_copy(update={"customer_source_id": customer})
        return assistance

    def _sienge_customer(self, raw: dict[str, Any], assistance: Assistance) -> str:
        """The buyer's Sienge id: CV CRM keeps it as the person's ``idpessoa_int``; else by CPF/CNPJ."""
        flat = normalize_assistencia(raw)
        idpessoa = flat.get("idpessoa")
        if idpessoa:
            for pessoa in self.cvcrm.read("clientes", params={"idcliente": idpessoa}, limit=1):
                value = str(pessoa.get("idpessoa_int") or "").strip()
                if value.isdigit():
                    return value
        document = assistance.customer_document
        if document:
            key = "cpf" if len(str(document)) == 11 else "cnpj"
            for customer in self.sienge.read("customers", params={key: str(document)}, limit=1):
                return str(customer["id"])
        raise DataError(
            f"the customer of assistance {assistance.crm_id} is not in Sienge",
            record=f"assistencia {assistance.crm_id}",
            field="cliente",
            hint="import the customer from Sienge first (ponte sync import), or correct the CPF/CNPJ in CV CRM",
        )

    def _with_files(self, assistance: Assistance) -> Assistance:
        files = []
        for attachment in assistance.attachments:
            if attachment.content_base64 is None and attachment.url:
                try:
                    content = self.fetch(attachment.url)
                except ForeignHostError as exc:
                    exc.hint = self._foreign_attachment_hint(assistance, attachment.name)
                    exc.context(record=f"assistencia {assistance.crm_id}", field=f"anexos[{attachment.name}]")
                    raise
                except PonteError as exc:
                    exc.context(record=f"assistencia {assistance.crm_id}", field=f"anexos[{attachment.name}]")
                    raise
                attachment = attachment.model_copy(
                    update={
                        "content_base64": base64.b64encode(content).decode(),
                        "sha256": hashlib.sha256(content).hexdigest(),
                    }
                )
            files.append(attachment)
        return assistance.model_copy(update={"attachments": files})

    @staticmethod
    def _foreign_attachment_hint(assistance: Assistance, name: str) -> str:
        where = f"protocol {assistance.protocol}" if assistance.protocol else f"id {assistance.crm_id}"
        return (
            f"in CV CRM open the assistance ({where}), remove the attachment {name!r} and attach the file "
            "itself (a link to another site is not downloaded), then run `ponte deadletter replay` or wait "
            "for the next sync; if that host really is where the customer's CV CRM keeps files, it must be "
            "added to the tenant's cvcrm connector file_hosts"
        )

    def send_to_sienge(self, crm_id: str, raw: dict[str, Any] | None = None) -> str:
        """Create one CRM assistência in Sienge (once) and write Sienge's id back.

        Returns what happened: created | already | skipped | planned, or failed (dead-lettered) /
        retry (a transient failure: the caller leaves its webhook to be taken again).
        """
        record_key = f"assistencia:{crm_id}"
        mapping = self.lineage(TO_CANONICAL, TO_SIENGE)
        try:
            raw = raw if raw is not None else self.cvcrm.read_one("assistencias", crm_id)
            outcome = self._send(crm_id, raw, mapping)
        except PonteError as exc:
            self._dead(record_key, exc, raw or {"idassistencia": crm_id}, mapping)
            return "retry" if exc.retryable else "failed"
        if outcome != "skipped":
            self._resolved(record_key)
        return outcome

    def _send(self, crm_id: str, raw: dict[str, Any], mapping: str) -> str:
        status = crm_status(raw, self.options)
        erp = str(raw.get("idassistencia_erp") or "").strip()
        if erp:
            self._remember(crm_id, erp, None, mapping)
            self.report.unchanged += 1
            return "already"
        if status in TERMINAL_ASSISTANCE:
            return "skipped"  # cancelled or deactivated in the CRM before it ever reached Sienge
        known = self._sienge_id_of(crm_id)
        assistance = self.canonical_from_crm(raw)
        problem = missing_minimum_days(assistance)
        if problem is not None:
            raise problem
        if self.request.plan:
            if known:
                self.report.linked.append(crm_id)
            else:
                self.report.created.append((crm_id, None))
            return "planned"
        if not known:
            assistance = self._with_files(assistance)
            body = self._mapping(TO_SIENGE).run(assistance.model_dump(mode="json"), self.context)
            payload = body.model_dump(mode="json", exclude_none=True)
            key = f"{self.tenant.id}:assistance:{crm_id}"

            def send() -> tuple[str | None, dict[str, Any]]:
                result = self.sienge.call("create_technical_assistance", payload, idempotency_key=key)
                return result.id, _slim(result.data)

            def find() -> tuple[str | None, dict[str, Any]] | None:
                found = self.sienge.find_existing("create_technical_assistance", payload, idempotency_key=key)
                return (found.id, _slim(found.data)) if found else None

            outcome = write_once(
                self.store,
                tenant=self.tenant.id,
                connector=ERP,
                action="create_technical_assistance",
                key=key,
                payload=_slim(payload),
                send=send,
                find=find,
                worker=self.worker,
                run_id=self.request.run_id,
            )
            if not outcome.external_id:
                raise TransientError(f"Sienge created assistance {crm_id} but returned no id", record=crm_id)
            known = outcome.external_id
            self._remember(crm_id, known, content_hash(_slim(payload)), mapping)
            self._audit(
                "created" if outcome.how == "sent" else f"created_{outcome.how}",
                known,
                f"cvcrm:assistencia:{crm_id}",
                mapping,
                crm_id=crm_id,
                mappings=self.full_lineage(TO_CANONICAL, TO_SIENGE),
                items=len(assistance.items),
                attachments=len(assistance.attachments),
            )
            self.report.created.append((crm_id, known))
        self._link(crm_id, known, mapping)
        return "created"

    def _remember(self, crm_id: str, sienge_id: str, digest: str | None, mapping: str) -> None:
        if self.request.plan:
            return
        with self.store.session() as session:
            row = get_xref(session, self.tenant.id, ENTITY, CRM, crm_id, ERP)
            if row is not None and row.target_id == sienge_id:
                return
            put_xref(session, self.tenant.id, ENTITY, CRM, crm_id, ERP, sienge_id, digest, mapping)

    def _link(self, crm_id: str, sienge_id: str, mapping: str) -> None:
        """Write Sienge's id on the CRM record ("assistance data"); a PUT, safe to repeat."""
        if self.request.plan:
            self.report.linked.append(crm_id)
            return
        self.cvcrm.call("update_assistencia", {"idassistencia": int(crm_id), "idassistencia_erp": sienge_id})
        self._remember(crm_id, sienge_id, None, mapping)
        self._audit(
            "linked", crm_id, f"sienge:technical_assistance:{sienge_id}", mapping, sienge_id=sienge_id
        )
        self.report.linked.append(crm_id)

    # ------------------------------------------------------------------------------ Sienge -> CRM

    def apply_sienge(self, sienge_id: str, hint: AssistanceStatus | None = None) -> str:
        """Bring the CRM record of one Sienge request to Sienge's current status (a re-read).

        ``hint`` is the status the hook announced; it is used only when Sienge no longer serves the
        request (a deleted one may answer 404). Returns updated | unchanged | linked | ignored, or
        failed / retry as :meth:`send_to_sienge` does.
        """
        record_key = f"technical_assistance:{sienge_id}"
        mapping = self.lineage(FROM_SIENGE, TO_CRM_UPDATE)
        raw: dict[str, Any] | None = None
        try:
            try:
                raw = self.sienge.read_one("technical_assistances", sienge_id)
            except NotFoundError:
                if hint != AssistanceStatus.deleted:
                    raise
            if raw is not None:
                canonical: Assistance = self._mapping(FROM_SIENGE).run(raw, self.context)
                crm_id: str | None = canonical.crm_id
                observed = canonical.status
            else:
                crm_id, observed = self._crm_id_of(sienge_id), AssistanceStatus.deleted
            if not crm_id:
                self.report.ignored += 1
                return "ignored"  # not a request Ponte sent (no external id, no id map row)
            crm_raw = self.cvcrm.read_one("assistencias", crm_id)
            outcome = self.converge(crm_id, crm_raw, sienge_id, observed, mapping)
        except PonteError as exc:
            self._dead(record_key, exc, raw or {"id": sienge_id}, mapping)
            return "retry" if exc.retryable else "failed"
        self._resolved(record_key)
        return outcome

    def converge(
        self,
        crm_id: str,
        crm_raw: dict[str, Any],
        sienge_id: str,
        observed: AssistanceStatus,
        mapping: str,
    ) -> str:
        """Move the CRM record forward to ``observed`` (state machine) and make sure it shows Sienge's id."""
        current = crm_status(crm_raw, self.options)
        target = next_status(current, observed)
        linked = str(crm_raw.get("idassistencia_erp") or "") == sienge_id
        if target is None:
            if not linked:
                self._link(crm_id, sienge_id, mapping)
            self._remember(crm_id, sienge_id, None, mapping)
            self.report.unchanged += int(linked)
            return "unchanged" if linked else "linked"
        if target != AssistanceStatus.deleted and target not in situation_ids(self.options):
            raise ConfigurationError(
                f"no CV CRM situation is configured for Sienge status {target.value!r}",
                record=f"assistencia {crm_id}",
                field=f"options.assistance.situation_{target.value}",
                hint="set it in the tenant file (the id from `ponte connector read TENANT cvcrm workflow_situacoes`)",
            )
        before = current.value if current else f"situation {crm_raw.get('idsituacao')}"
        self.report.updated.append((crm_id, before, target.value))
        if self.request.plan:
            return "updated"
        body = self._mapping(TO_CRM_UPDATE).run(
            {"crm_id": crm_id, "sienge_id": sienge_id, "status": target.value}, self.context
        )
        update = body.model_dump(mode="json", exclude_none=True)
        situation = update.pop("idsituacao", None)
        if situation is not None and str(crm_raw.get("idsituacao")) != str(situation):
            self.cvcrm.call(
                "alterar_situacao_assistencia",
                {
                    "idassistencia": int(crm_id),
                    "idsituacao": situation,
                    "comentario": f"Sienge: {target.value}",
                },
            )
        self.cvcrm.call("update_assistencia", update)
        self._remember(crm_id, sienge_id, None, mapping)
        self._audit(
            f"status_{target.value}",
            crm_id,
            f"sienge:technical_assistance:{sienge_id}",
            mapping,
            sienge_id=sienge_id,
            mappings=self.full_lineage(FROM_SIENGE, TO_CRM_UPDATE),
            before=before,
            after=target.value,
            situation=situation,
        )
        return "updated"

    # ------------------------------------------------------------------------------- webhooks

    def _pending_event_ids(self, connector: str, prefixes: tuple[str, ...]) -> list[int]:
        """Plan mode: the events a real run would take, without claiming them."""
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(InboxEvent.id)
                    .where(
                        InboxEvent.tenant == self.tenant.id,
                        InboxEvent.connector == connector,
                        InboxEvent.status.in_(("new", "failed")),
                        or_(*(InboxEvent.event_type.startswith(p) for p in prefixes)),
                    )
                    .order_by(InboxEvent.id)
                    .limit(500)
                )
            )

    def _take(self, connector: str, prefixes: tuple[str, ...]) -> list[InboxEvent]:
        if self.request.plan:
            ids = self._pending_event_ids(connector, prefixes)
        else:
            ids = claim(
                self.store,
                InboxEvent,
                worker=self.worker,
                limit=500,
                tenant=self.tenant.id,
                connector=connector,
                event_type_prefixes=prefixes,
            )
        return load_events(self.store, ids) if ids else []

    def _finish(self, events: list[InboxEvent], failed: set[int], error: str | None = None) -> None:
        if self.request.plan:
            return
        for event in events:
            if event.id in failed:
                release(
                    self.store,
                    InboxEvent,
                    event.id,
                    worker=self.worker,
                    status="failed",
                    error=(error or "transient failure")[:500],
                    retry_in_seconds=60,
                )
            else:
                release(self.store, InboxEvent, event.id, worker=self.worker, status="done")

    def process_events(self) -> None:
        """Stored webhooks: CV CRM ``AS`` (new assistência) first, then Sienge's assistance hooks.

        Several events about one request collapse into one re-read; a transient failure leaves its
        events to be claimed again in a minute, anything else is a dead letter (events done).
        """
        crm_events = self._take(CRM, (CRM_EVENT_PREFIX,))
        by_crm: dict[str, list[InboxEvent]] = {}
        ignored: list[InboxEvent] = []
        for event in crm_events:
            subject = _body(event).get("id")
            if subject in (None, ""):
                ignored.append(event)
            else:
                by_crm.setdefault(str(subject), []).append(event)
        failed: set[int] = set()
        for crm_id, events in by_crm.items():
            if self.send_to_sienge(crm_id) == "retry":
                failed.update(e.id for e in events)
        self._finish(crm_events, failed)

        prefix = self.event_prefix
        erp_events = self._take(ERP, (f"{prefix}_",))
        by_erp: dict[str, tuple[AssistanceStatus | None, list[InboxEvent]]] = {}
        for event in erp_events:
            status = event_status(event.event_type, prefix)
            subject = _body(event).get("technicalAssistanceId")
            if status is None or subject in (None, ""):
                ignored.append(event)
                continue
            hint, events = by_erp.get(str(subject), (None, []))
            if hint is None or RANK[status] > RANK[hint]:
                hint = status
            by_erp[str(subject)] = (hint, [*events, event])
        failed = set()
        for sienge_id, (hint, events) in by_erp.items():
            if self.apply_sienge(sienge_id, hint) == "retry":
                failed.update(e.id for e in events)
        self._finish(erp_events, failed)
        self.report.events += len(crm_events) + len(erp_events)
        self.report.ignored += len(ignored)
        if ignored and not self.request.plan:
            for event in ignored:
                self._audit(
                    "webhook_ignored", str(event.id), f"{event.connector}:inbox", None, type=event.event_type
                )

    # ------------------------------------------------------------------------------- poll, reconcile

    def poll(self) -> None:
        """Send every active CRM assistência that Sienge has not got yet (no webhook needed)."""
        for raw in self.cvcrm.read("assistencias"):
            crm_id = str(raw["idassistencia"])
            if str(raw.get("idassistencia_erp") or "").strip():
                continue
            if crm_status(raw, self.options) in TERMINAL_ASSISTANCE:
                continue
            self.send_to_sienge(crm_id, raw)

    def reconcile(self) -> Drift:
        """Compare every request on both sides, repair what webhooks missed, report what differed."""
        drift = Drift()
        sienge_rows = list(self.sienge.read("technical_assistances"))
        by_external = {str(r["externalId"]): r for r in sienge_rows if r.get("externalId") not in (None, "")}
        seen: set[str] = set()
        mapping = self.lineage(FROM_SIENGE, TO_CRM_UPDATE)
        for raw in self.cvcrm.read("assistencias"):
            crm_id = str(raw["idassistencia"])
            seen.add(crm_id)
            current = crm_status(raw, self.options)
            row = by_external.get(crm_id)
            if row is None:
                if current in TERMINAL_ASSISTANCE:
                    continue
                outcome = self.send_to_sienge(crm_id, raw)
                if outcome == "failed":
                    drift.blocked[crm_id] = self.report.failed[-1][1]
                    continue
                drift.missing_in_sienge.append(crm_id)
                if outcome == "retry":
                    drift.unrepaired[crm_id] = self.report.failed[-1][1]
                continue
            sienge_id = str(row["id"])
            observed = SIENGE_STATUS.get(str(row.get("status") or "OPEN").upper(), AssistanceStatus.open)
            unlinked = str(raw.get("idassistencia_erp") or "") != sienge_id
            behind = next_status(current, observed) is not None
            if unlinked:
                drift.unlinked_in_crm.append(crm_id)
            if behind:
                drift.status.append(crm_id)
                drift.details[crm_id] = (
                    f"{current.value if current else raw.get('idsituacao')} -> {observed.value}"
                )
            if not (unlinked or behind):
                self.report.unchanged += 1
                self._remember(crm_id, sienge_id, None, mapping)
                continue
            try:
                self.converge(crm_id, raw, sienge_id, observed, mapping)
                self._resolved(f"technical_assistance:{sienge_id}")
            except PonteError as exc:
                self._dead(f"technical_assistance:{sienge_id}", exc, row, mapping)
                drift.unrepaired[crm_id] = str(exc)
        for external, row in by_external.items():
            if external not in seen:
                drift.orphaned_in_sienge.append(str(row["id"]))
        self.report.drift = drift
        if not self.request.plan:
            self._audit(
                "reconciled",
                self.tenant.id,
                "cvcrm+sienge",
                mapping,
                counts=drift.counts(),
                ids=drift.ids(),
                unrepaired=sorted(drift.unrepaired),
                blocked=sorted(drift.blocked),
            )
        return drift

    # ------------------------------------------------------------------------------------- run

    def run(self) -> AssistanceReport:
        for crm_id in self.request.crm_ids:
            self.send_to_sienge(str(crm_id))
        for sienge_id in self.request.sienge_ids:
            self.apply_sienge(str(sienge_id))
        if self.request.events:
            self.process_events()
        if self.request.poll and not self.request.reconcile:
            self.poll()
        if self.request.reconcile:
            self.reconcile()
        self.report.api_calls = {"sienge": self.sienge.api_calls, "cvcrm": self.cvcrm.api_calls}
        return self.report


def _body(event: InboxEvent) -> dict[str, Any]:
    try:
        data = json.loads(event.body)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_assistance(
    store: Store,
    tenant: TenantConfig,
    sienge: Connector,
    cvcrm: Connector,
    request: AssistanceRequest | None = None,
    fetch: Fetcher | None = None,
) -> AssistanceReport:
    """One assistance run for one tenant; safe to repeat (creates are exactly-once, moves idempotent)."""
    return AssistanceSync(store, tenant, sienge, cvcrm, request, fetch).run()

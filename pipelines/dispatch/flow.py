"""Envelope dispatch, plain Python: a CRM contract becomes one envelope at the signing provider.

Per contract: map the CRM record to a canonical contract; get its PDF (the CRM's, or a template Ponte
fills); check every signer can be reached (CPF/CNPJ, e-mail, phone) and place the signatures; then,
unless planning, send it exactly once through the outbox and record the envelope, its signers, one
package-ledger entry and an audit row in one transaction. A bad contract is dead-lettered with its
reason and the batch goes on; a tenant-wide stop (no verified manager, package used up or expired)
stops the run with that error, because sending anything else would break the same rule.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update

from connectors import Email
from mappings import MappingContext, load_mapping
from pipelines.connections import TenantConnectors
from pipelines.dispatch import package as packages
from pipelines.dispatch import providers, versions
from pipelines.dispatch.documents import Document, Terms, contract_document, needs_sienge, templates_needed
from pipelines.dispatch.identity import UNCONFIRMED_FIELDS, CrashHook
from pipelines.dispatch.notify import notify_document_changed, notify_next_signers
from pipelines.dispatch.providers import (
    Created,
    Voided,
    require_identity_verification,
    send_clicksign,
    send_docusign,
    void_once,
)
from pipelines.dispatch.signers import chain_roles, check_people, initial_status, with_company_signers
from pipelines.dispatch.signing_links import require_links
from pipelines.dispatch.source import (
    ContractRef,
    is_ready,
    load_contract,
    not_ready_reason,
    ready_contracts,
    ready_in,
)
from pipelines.dispatch.variables import contract_context, read_sienge, summary
from pipelines.dispatch.verify import require_verified_manager
from pipelines.documents.placement import place
from pipelines.outbox import write_once
from pipelines.store import deadletters
from pipelines.store.claims import worker_name
from pipelines.store.db import Store
from pipelines.store.models import Envelope, EnvelopeSigner, OutboxItem, utcnow
from pipelines.store.repos import audit
from ponte import ConfigurationError, DataError, NotFoundError, PonteError, TransientError, get_logger
from schemas import TenantConfig
from schemas.canonical import Contract
from schemas.canonical import Envelope as CanonicalEnvelope

log = get_logger("dispatch")
FLOW = "dispatch"
MAPPING_VERSION_NAMES = ("cvcrm/contrato_to_contract", "cvcrm/contrato_to_envelope")
#: envelope statuses that mean "this contract is already out for signature or signed"
ACTIVE = frozenset({"sent", "delivered", "completed"})

Progress = Callable[[str, str], None]


@dataclass
class DispatchRequest:
    """What to dispatch: given contracts (``801`` or ``3001:801``), or every ready one (poll)."""

    contracts: list[str] = field(default_factory=list)
    all_ready: bool = False
    #: every ready contract of these reservations (a missing reservation is logged and skipped)
    reservations: list[str] = field(default_factory=list)
    #: named contracts that are not ready in the CRM (validated, unsigned) are skipped, not sent: for
    #: runs a webhook started, since a webhook is a hint and the CRM's record is the truth
    ready_only: bool = False
    plan: bool = False
    #: force Ponte's template rendering (e.g. "compra_e_venda") instead of the CRM's PDF
    template: str | None = None
    terms: Terms = "none"
    run_id: str | None = None
    #: how long a worker's claim on an envelope's creation lasts; after a crash, another worker takes
    #: over (looking the envelope up at the provider first) once it expires
    lease_seconds: float = 120
    #: a person checked the provider after a dead letter said a create was unsure and the lookup could
    #: not tell (set by the replay of that letter; providers.find_clicksign_envelope)
    person_checked: bool = False
    #: an operator asked to send the same document again (`ponte sync dispatch --contract X --resend`): a
    #: refused, expired or voided envelope gets a new one keyed with a resend counter (versions.py)
    resend: bool = False
    #: a person checked the provider after a dead letter said a create of another document version was
    #: sent but never recorded (versions.UNFINISHED_FIELD): those creates are given up
    abandon_unfinished: bool = False


@dataclass
class ContractOutcome:
    contract_id: str
    #: sent | found (existed at the provider) | already_sent | would_send | skipped | dead_lettered |
    #: deferred (an outside system failed transiently; the next run resumes where this one stopped)
    result: str
    envelope_id: int | None = None
    provider_envelope_id: str | None = None
    reason: str | None = None
    signers: list[dict[str, Any]] = field(default_factory=list)
    positions: int = 0
    document_sha256: str | None = None
    reservation_id: str | None = None
    #: the provider's id of the envelope of the earlier document version this one replaced (voided first)
    replaced_envelope_id: str | None = None


#: every result a contract of a run can end with
RESULTS = ("sent", "found", "already_sent", "would_send", "skipped", "dead_lettered", "deferred")


@dataclass
class DispatchReport:
    tenant: str
    plan: bool
    outcomes: list[ContractOutcome] = field(default_factory=list)
    package: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None
    api_calls: dict[str, int] = field(default_factory=dict)
    #: counts by result when ``outcomes`` holds only some of the run's contracts (a report read back
    #: from a run's metadata, whose table is capped); None: ``outcomes`` is every contract
    totals: dict[str, int] | None = None

    def count(self, result: str) -> int:
        if self.totals is not None:
            return int(self.totals.get(result, 0))
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def not_shown(self) -> int:
        """Contracts counted but not in ``outcomes`` (0 when every contract is there)."""
        return 0 if self.totals is None else max(0, sum(self.totals.values()) - len(self.outcomes))

    def as_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {k: self.count(k) for k in RESULTS}
        meta["package_used"] = self.package.get("used", 0)
        meta["package_remaining"] = str(self.package.get("remaining", ""))
        if self.stopped:
            meta["stopped"] = self.stopped
        return meta


def _crash_hook() -> CrashHook:
    """Test seam for the crash test: PONTE_DISPATCH_CRASH_AT=<point> kills the process right there."""
    point = os.environ.get("PONTE_DISPATCH_CRASH_AT")
    if not point:
        return lambda _where: None

    def crash(where: str) -> None:
        if where == point:
            os._exit(137)

    return crash


class DispatchRun:
    def __init__(
        self,
        store: Store,
        tenant: TenantConfig,
        connectors: TenantConnectors,
        request: DispatchRequest,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.tenant = tenant
        self.connectors = connectors
        self.request = request
        self.progress = progress or (lambda _cid, _result: None)
        self.report = DispatchReport(tenant=tenant.id, plan=request.plan)
        self.ctx = MappingContext(tenant=tenant)
        self.worker = worker_name()
        self.crash = _crash_hook()
        # short on purpose (the audit column is 50 characters): contrato_to_contract@1+contrato_to_envelope@1
        self.mapping_version = "+".join(
            f"{n.split('/')[-1]}@{load_mapping(n).version}" for n in MAPPING_VERSION_NAMES
        )

    # ---------------------------------------------------------------------------------- building

    def build(self, record: dict[str, Any]) -> tuple[Contract, Document, CanonicalEnvelope] | None:
        """The envelope for one CRM record, fully checked; None when the contract needs no signing."""
        record_key = f"contract {record.get('idreservacontrato')}"
        contract = load_mapping("cvcrm/contrato_to_contract").run(record, self.ctx)
        if contract is None:
            return None
        provider = self.tenant.options.signing_provider
        record = with_company_signers(record, self.tenant)
        problems = check_people(
            record.get("pessoas") or [], self.tenant.options, self.tenant.connector(provider).spec
        )
        if problems:
            raise DataError(
                "; ".join(p.message for p in problems),
                record=record_key,
                field=problems[0].field,
                hint="complete the person's data in CV CRM (or the company signers in the tenant file), "
                "then `ponte deadletter replay`",
                details={"problems": [p.__dict__ for p in problems]},
            )
        # every signer Ponte will invite gets a link that exists, or nothing is sent (docs/dispatch.md)
        require_links(self.tenant, record_key, secret=not self.request.plan)
        context = self.context(
            record, contract, templates_needed(contract, self.request.template, self.request.terms)
        )
        document = contract_document(
            record,
            contract,
            self.tenant,
            self._cvcrm_or_none(),
            context=context,
            template=self.request.template,
            terms=self.request.terms,
        )
        raw = dict(
            load_mapping("cvcrm/contrato_to_envelope").apply(
                record, self.ctx.with_params(document_sha256=document.sha256)
            )
        )
        raw["summary"] = summary(context["pagamento"])
        raw["document_name"] = document.name
        signers = sorted(raw.get("signers") or [], key=lambda s: (s["routing_order"], s["role"]))
        if not signers:
            raise DataError(
                "the contract has nobody in the tenant's signer chain",
                record=record_key,
                field="pessoas",
                hint="add the buyer (titular) to the reservation in CV CRM",
            )
        first = signers[0]["routing_order"]
        if first != 1:  # a chain whose first slot is absent still starts at order 1 for the provider
            for signer in signers:
                signer["routing_order"] -= first - 1
        raw["signers"] = chain_roles(signers, self.tenant.options)
        pages = contract.signature_pages or self.tenant.options.signature_pages
        try:
            raw["positions"] = [
                p.model_dump()
                # only who signs gets a block: an approver or a copy recipient leaves no mark on the page
                for p in place(
                    [s["role"] for s in raw["signers"] if s.get("interaction", "sign") == "sign"],
                    document.pages,
                    pages,
                    document.page_size,
                )
            ]
        except ConfigurationError as exc:
            raise DataError(exc.message, record=record_key, field="signature_pages", hint=exc.hint) from None
        try:
            envelope = CanonicalEnvelope.model_validate(raw)
        except ValidationError as exc:
            first_error = exc.errors()[0]
            raise DataError(
                first_error["msg"], record=record_key, field=".".join(str(p) for p in first_error["loc"])
            ) from None
        return contract, document, envelope

    def context(self, record: dict[str, Any], contract: Contract, templates: list[str]) -> dict[str, Any]:
        """What the contract's templates read; Sienge is read only when one of them declares it."""
        record_key = f"contract {contract.source_id}"
        facts = None
        if templates and needs_sienge(templates):
            facts = read_sienge(self._sienge(record_key), self.tenant, record, record_key)
        return contract_context(record, contract, self.tenant, facts=facts)

    def _sienge(self, record_key: str) -> Any:
        key = next((k for k, c in self.tenant.connectors.items() if c.spec == "sienge"), None)
        if key is None:
            raise ConfigurationError(
                f"the contract's template reads Sienge ({record_key}), but the tenant has no Sienge connector",
                tenant=self.tenant.id,
                field="connectors",
                hint="add the sienge connector to the tenant file, or use a template whose sources are "
                "the CRM's only (`ponte template list`)",
            )
        return self.connectors.get(key)

    def _cvcrm_or_none(self) -> Any:
        try:
            return self.connectors.get("cvcrm")
        except ConfigurationError:
            return None

    # ----------------------------------------------------------------------------------- sending

    def _history(self, envelope: CanonicalEnvelope) -> tuple[list[versions.Sent], list[str]]:
        """The contract's recorded envelopes (oldest first) and the keys of its creates that were sent
        but never recorded (a crash between the provider's answer and the record)."""
        prefix = f"{self.tenant.id}:contract:{envelope.contract_id}:"
        with self.store.session() as session:
            rows = session.execute(
                select(Envelope.id, Envelope.idempotency_key, Envelope.document_hash, Envelope.status)
                .where(Envelope.tenant == self.tenant.id, Envelope.contract_id == envelope.contract_id)
                .order_by(Envelope.id)
            ).all()
            attempts = session.scalars(
                select(OutboxItem.idempotency_key).where(
                    OutboxItem.tenant == self.tenant.id,
                    OutboxItem.idempotency_key.startswith(prefix, autoescape=True),
                    OutboxItem.sent_at.is_not(None),
                    OutboxItem.status != "dead",  # the provider refused it: nothing was created
                )
            ).all()
        history = [versions.Sent(key, sha, status, rid) for rid, key, sha, status in rows]
        recorded = {s.key for s in history}
        unrecorded = [k for k in attempts if k not in recorded and versions.base_of(k) is not None]
        return history, unrecorded

    def _decide(self, envelope: CanonicalEnvelope) -> versions.Decision:
        history, unrecorded = self._history(envelope)
        decision = versions.decide(
            history, envelope.document_sha256, envelope.idempotency_key,
            resend=self.request.resend, unrecorded=unrecorded,
        )
        if decision.action == "unfinished" and self.request.abandon_unfinished and not self.request.plan:
            with self.store.session() as session:
                session.execute(
                    update(OutboxItem)
                    .where(OutboxItem.idempotency_key.in_(decision.unfinished))
                    .values(status="dead", claimed_by=None, claimed_until=None,
                            last_error="given up: a person checked the provider (dead-letter replay)")
                )
            decision = versions.decide(
                history, envelope.document_sha256, envelope.idempotency_key,
                resend=self.request.resend,
                unrecorded=[k for k in unrecorded if k not in decision.unfinished],
            )
        return decision

    def _replace(self, old: versions.Sent, envelope: CanonicalEnvelope) -> tuple[str, Voided]:
        """Void the contract's live envelope of an earlier document version, exactly once, and record it
        (status voided, the reason, the version that replaced it) before the new version is created."""
        with self.store.session() as session:
            row = session.get(Envelope, old.id)
            assert row is not None
            provider, provider_id = row.provider, str(row.provider_envelope_id or "")
            deadline = row.expires_at.isoformat(timespec="milliseconds") if row.expires_at else None
        reason = versions.void_reason(envelope.document_sha256)
        voided = void_once(
            self.store,
            self.connectors.get(provider),
            tenant=self.tenant.id,
            old_key=old.key,
            provider_envelope_id=provider_id,
            reason=reason,
            contract_id=envelope.contract_id,
            worker=self.worker,
            deadline_at=deadline,
            run_id=self.request.run_id,
            crash=self.crash,
            lease_seconds=self.request.lease_seconds,
        )
        status = voided.provider_state if voided.provider_state in ("declined", "expired") else "voided"
        with self.store.session() as session:
            row = session.get(Envelope, old.id)
            assert row is not None
            if row.status in versions.LIVE:
                row.status = status
                row.details = {
                    **(row.details or {}),
                    "void": {
                        "reason": reason,
                        "replaced_by": envelope.idempotency_key,
                        "replaced_by_sha256": envelope.document_sha256,
                        "provider_state": voided.provider_state,
                        "how": voided.how,
                        "at": utcnow().isoformat(),
                    },
                }
                audit(
                    session,
                    tenant=self.tenant.id,
                    flow=FLOW,
                    action="envelope_voided",
                    entity="envelope",
                    entity_id=str(row.id),
                    source_record=f"cvcrm:contract:{envelope.contract_id}",
                    mapping_version=self.mapping_version,
                    run_id=self.request.run_id,
                    details={"provider": provider, "provider_envelope_id": provider_id, "reason": reason,
                             "status": status, "how": voided.how, "replaced_by": envelope.idempotency_key},
                )
        self.crash("after_void_recorded")
        return provider_id, voided

    def _tell_replaced(self, contract_id: str, new_key: str) -> None:
        """The signers who had signed the version ``new_key`` replaced hear that the document changed:
        Ponte's e-mail when Ponte invites, or when the provider's own void notice is not confirmed
        (anything but DocuSign); DocuSign's void notice otherwise. Idempotent; never fails the contract."""
        by_ponte = self.tenant.options.notifications.by == "ponte"
        provider = self.tenant.options.signing_provider
        if not by_ponte and self.tenant.connector(provider).spec == "docusign":
            return
        with self.store.session() as session:
            replaced = [
                (e.id, str(void.get("replaced_by_sha256") or ""))
                for e in session.scalars(
                    select(Envelope).where(Envelope.tenant == self.tenant.id, Envelope.contract_id == contract_id)
                )
                if (void := (e.details or {}).get("void") or {}).get("replaced_by") == new_key
            ]
        for old_id, sha in replaced:
            try:
                notify_document_changed(self.store, self.tenant, old_id, versions.sha8(sha),
                                        self.connectors, run_id=self.request.run_id)
            except PonteError as exc:
                log.warning("contract %s: the document-changed notice waits for the next run: %s", contract_id, exc)

    def _send(self, envelope: CanonicalEnvelope, document: Document) -> Created:
        provider = self.tenant.options.signing_provider
        spec = self.tenant.connector(provider).spec
        conn = self.connectors.get(provider)
        if spec == "docusign":
            return send_docusign(
                self.store,
                conn,
                envelope,
                document,
                self.ctx,
                worker=self.worker,
                run_id=self.request.run_id,
                crash=self.crash,
                lease_seconds=self.request.lease_seconds,
            )
        if spec == "clicksign":
            return send_clicksign(
                self.store,
                conn,
                envelope,
                document,
                self.ctx,
                provider_notifies=self.tenant.options.notifications.by == "provider",
                worker=self.worker,
                run_id=self.request.run_id,
                crash=self.crash,
                lease_seconds=self.request.lease_seconds,
                person_checked=self.request.person_checked,
            )
        # any other provider is described by its spec's `signing` section (docs/dispatch.md)
        from pipelines.dispatch.spec_provider import send_spec

        if getattr(conn.spec, "signing", None) is not None:
            return send_spec(
                self.store,
                conn,
                envelope,
                document,
                worker=self.worker,
                run_id=self.request.run_id,
                crash=self.crash,
                lease_seconds=self.request.lease_seconds,
                person_checked=self.request.person_checked,
            )
        raise ConfigurationError(
            f"the signing provider spec {spec!r} has no signing section, so dispatch cannot send through it",
            tenant=self.tenant.id,
            field="options.signing_provider",
            hint="use docusign or clicksign, or declare `signing:` in the connector spec (docs/dispatch.md)",
        )

    def _record(
        self, contract: Contract, document: Document, envelope: CanonicalEnvelope, created: Created
    ) -> int:
        """Envelope + signers + ledger + audit in one transaction; idempotent by the envelope key."""
        with self.store.session() as session:
            row = session.scalars(
                select(Envelope).where(Envelope.idempotency_key == envelope.idempotency_key)
            ).one_or_none()
            if row is not None:
                return row.id
            row = self._envelope_row(contract, document, envelope, created)
            session.add(row)
            session.flush()
            packages.consume(session, self.store, self.tenant, envelope.idempotency_key)
            audit(
                session,
                tenant=self.tenant.id,
                flow=FLOW,
                action="envelope_sent",
                entity="envelope",
                entity_id=str(row.id),
                source_record=f"cvcrm:contract:{envelope.contract_id}",
                mapping_version=self.mapping_version,
                run_id=self.request.run_id,
                details={
                    "provider": envelope.provider,
                    "provider_envelope_id": created.provider_envelope_id,
                    "how": created.how,
                    "document_sha256": envelope.document_sha256,
                    "signers": _chain(envelope),
                },
            )
            return row.id

    def _envelope_row(
        self, contract: Contract, document: Document, envelope: CanonicalEnvelope, created: Created
    ) -> Envelope:
        """The envelope as recorded (sent now), with its signers: the first routing order is due."""
        now = utcnow()
        row = Envelope(
            tenant=self.tenant.id,
            contract_id=envelope.contract_id,
            document_name=envelope.document_name,
            document_hash=envelope.document_sha256,
            idempotency_key=envelope.idempotency_key,
            provider=envelope.provider,
            provider_envelope_id=created.provider_envelope_id,
            status="sent",
            sent_at=now,
            expires_at=now + timedelta(days=envelope.expires_in_days),
            details={
                **created.details,
                "reservation_id": contract.reservation_id,
                "document_source": document.source,
                "pages": document.pages,
                "positions": [p.model_dump() for p in envelope.positions],
                "summary": {
                    "value": str(contract.value) if contract.value is not None else None,
                    "monthly_fee": str(contract.monthly_fee)
                    if contract.monthly_fee is not None
                    else None,
                    "duration_months": contract.duration_months,
                    "title": contract.title,
                    # formatted for invitations (valor_total, parcela, prazo_meses): variables.summary
                    **envelope.summary,
                },
            },
        )
        first = min(s.routing_order for s in envelope.signers)
        for signer in envelope.signers:
            row.signers.append(
                EnvelopeSigner(
                    role=signer.role,
                    routing_order=signer.routing_order,
                    name=signer.name,
                    email=signer.email,
                    document=signer.document,
                    phone=signer.phone,
                    channel=signer.channel,
                    interaction=signer.interaction,
                    provider_recipient_id=created.recipient_ids.get(signer.role),
                    status=initial_status(signer.routing_order, first),
                    evidence={
                        "selfie_required": signer.selfie_required,
                        "document_photo_required": signer.document_photo_required,
                        **_identity_verification(self.tenant, envelope.provider, signer),
                    },
                )
            )
        return row

    def _warn_package(self) -> None:
        """The package's consumption notices: every threshold reached and not yet notified gets its
        e-mail, lowest first, once ever (several in one call when one dispatch crosses several). A
        notice that cannot go now (SMTP down, another worker sending it) is logged and waits for the
        next dispatch, the higher ones behind it so the order holds; it never fails the contract, whose
        envelope is already sent. An attempt a crash interrupted counts as sent (packages.notice_finder).
        """
        current = packages.state(self.store, self.tenant)
        recipients = [str(e) for e in self.tenant.options.responsible_emails]
        if not recipients:
            return
        for percent in packages.thresholds_reached(self.tenant, current):
            key = packages.notice_key(self.tenant.id, str(current.package_id), percent)
            prior = packages.notice_status(self.store, key)
            if prior == "done":
                continue
            subject, text = packages.warning_text(self.tenant, current, percent)
            facts = {"percent": percent, "used": current.used, "size": current.size}

            def send(
                subject: str = subject, text: str = text, facts: dict[str, Any] = facts
            ) -> tuple[str | None, dict[str, Any]]:
                message_id = self.connectors.get("smtp").send(Email(to=recipients, subject=subject, text=text))
                self.crash("after_package_warning_sent")
                return str(message_id), {**facts, "at": utcnow().isoformat()}

            try:
                outcome = write_once(
                    self.store,
                    tenant=self.tenant.id,
                    connector="smtp",
                    action=packages.NOTICE_ACTION,
                    key=key,
                    payload={"percent": percent, "package": current.package_id},
                    send=send,
                    find=packages.notice_finder(prior, key, facts),
                    worker=self.worker,
                    lease_seconds=self.request.lease_seconds,
                    run_id=self.request.run_id,
                )
            except PonteError as exc:
                log.warning("package notice %s%% for %s not sent (%s); the next dispatch sends it first",
                            percent, self.tenant.id, exc)
                return
            if outcome.how == "sent":
                with self.store.session() as session:
                    audit(
                        session,
                        tenant=self.tenant.id,
                        flow=FLOW,
                        action=packages.NOTICE_ACTION,
                        entity="package",
                        entity_id=str(current.package_id),
                        run_id=self.request.run_id,
                        details=facts,
                    )

    # ------------------------------------------------------------------------------------ a contract

    def dispatch(self, record: dict[str, Any]) -> ContractOutcome:
        outcome = self._dispatch(record)
        if outcome.reservation_id is None and record.get("idreserva") not in (None, ""):
            outcome.reservation_id = str(record["idreserva"])
        return outcome

    def _dispatch(self, record: dict[str, Any]) -> ContractOutcome:
        """One contract: build and check its envelope, decide against what was sent before, then (unless
        planning) send it once and record it. A bad contract is dead-lettered, a transient failure
        deferred to the next run; after a send, the signers are invited and a replaced version told."""
        contract_id = str(record.get("idreservacontrato"))
        record_key = f"contract:{contract_id}"
        try:
            built = self.build(record)
            if built is None:
                return self._done(ContractOutcome(contract_id, "skipped", reason="already signed in the CRM"))
            contract, document, envelope = built
            decision = self._decide(envelope)
            if decision.action == "already_sent":
                return self._done(self._already_sent(contract_id, envelope, decision))
            _refuse_undecidable(decision)
            envelope = envelope.model_copy(update={"idempotency_key": decision.key})
            # a document photo or selfie DocuSign cannot be asked for is refused, never dropped
            require_identity_verification(self.tenant, envelope)
            if self.request.plan:
                return self._done(self._would_send(contract_id, envelope, decision))
            created, envelope_id, replaced_id = self._send_once(contract, document, envelope, decision)
        except (DataError, NotFoundError) as exc:
            return self._done(self._dead_letter(contract_id, record, exc))
        except TransientError as exc:
            # not the contract's fault: every write so far is in the outbox under its key, so the next
            # run (the schedule, or a retry) looks each unsure one up and carries on; the batch goes on
            exc.context(tenant=self.tenant.id, record=record_key)
            log.warning("contract %s deferred to the next run: %s", contract_id, exc)
            return self._done(ContractOutcome(contract_id, "deferred", reason=str(exc)))
        deadletters.resolve(self.store, self.tenant.id, FLOW, record_key)
        self._after_send(contract_id, envelope, envelope_id, replaced_id)
        return self._done(
            ContractOutcome(
                contract_id,
                "found" if created.how == "found" else "sent",
                envelope_id,
                created.provider_envelope_id,
                None,
                _chain(envelope),
                len(envelope.positions),
                envelope.document_sha256,
                replaced_envelope_id=replaced_id,
            )
        )

    def _already_sent(
        self, contract_id: str, envelope: CanonicalEnvelope, decision: versions.Decision
    ) -> ContractOutcome:
        """This document version is out already: catch up on what an earlier run may have left undone
        (inviting the first signers, telling those of a replaced version), send nothing."""
        existing = decision.current
        assert existing is not None
        if existing.status in versions.LIVE and self.tenant.options.notifications.by == "ponte":
            # an earlier run may have stopped between recording the envelope and inviting the
            # first signers; inviting is idempotent, so catch up here
            notify_next_signers(
                self.store, self.tenant, existing.id or 0, self.connectors, run_id=self.request.run_id
            )
        if existing.status in versions.LIVE:
            self._tell_replaced(contract_id, existing.key)  # and the notice of a replaced version
        return ContractOutcome(
            contract_id,
            "already_sent",
            existing.id,
            self._provider_id(existing.id),
            decision.reason,
            _chain(envelope),
            len(envelope.positions),
            envelope.document_sha256,
        )

    def _would_send(
        self, contract_id: str, envelope: CanonicalEnvelope, decision: versions.Decision
    ) -> ContractOutcome:
        """The plan's answer: what would be sent, and which envelope would be voided first."""
        replaced = decision.current if decision.action == "replace" else None
        return ContractOutcome(
            contract_id,
            "would_send",
            None,
            None,
            f"would void envelope {self._provider_id(replaced.id)} (version "
            f"{versions.sha8(replaced.sha256)}) first" if replaced else None,
            _chain(envelope),
            len(envelope.positions),
            envelope.document_sha256,
        )

    def _send_once(
        self, contract: Contract, document: Document, envelope: CanonicalEnvelope, decision: versions.Decision
    ) -> tuple[Created, int, str | None]:
        """Within the package, void the version this one replaces (if any), create the envelope at the
        provider once and record it; returns what was created, the envelope's id and the voided one's."""
        packages.ensure_available(self.store, self.tenant)
        replaced_id: str | None = None
        if decision.action == "replace":
            assert decision.current is not None
            replaced_id, _ = self._replace(decision.current, envelope)
        created = self._send(envelope, document)
        self.crash("before_record")
        envelope_id = self._record(contract, document, envelope, created)
        self.crash("after_record")
        return created, envelope_id, replaced_id

    def _dead_letter(
        self, contract_id: str, record: dict[str, Any], exc: DataError | NotFoundError
    ) -> ContractOutcome:
        """The contract cannot go as it is: a dead letter with the reason (none when planning)."""
        record_key = f"contract:{contract_id}"
        exc.context(tenant=self.tenant.id, record=record_key)
        if not self.request.plan:
            deadletters.put(
                self.store,
                tenant=self.tenant.id,
                flow=FLOW,
                record_key=record_key,
                error=exc,
                payload=record,
                mapping_version=self.mapping_version,
                run_id=self.request.run_id,
            )
        log.warning("contract %s not dispatched: %s", contract_id, exc)
        return ContractOutcome(contract_id, "dead_lettered", reason=str(exc))

    def _after_send(
        self, contract_id: str, envelope: CanonicalEnvelope, envelope_id: int, replaced_id: str | None
    ) -> None:
        """After the envelope is recorded: package notices, the first invitations (when Ponte invites;
        a transient failure waits for the next run) and the notice to signers of a replaced version."""
        self._warn_package()
        if self.tenant.options.notifications.by == "ponte":
            try:
                notify_next_signers(
                    self.store, self.tenant, envelope_id, self.connectors, run_id=self.request.run_id
                )
            except TransientError as exc:
                log.warning(
                    "contract %s: envelope sent, invitations deferred to the next run: %s", contract_id, exc
                )
        if replaced_id is not None:
            self._tell_replaced(contract_id, envelope.idempotency_key)

    def _provider_id(self, envelope_id: int | None) -> str | None:
        if envelope_id is None:
            return None
        with self.store.session() as session:
            row = session.get(Envelope, envelope_id)
            return row.provider_envelope_id if row is not None else None

    def _done(self, outcome: ContractOutcome) -> ContractOutcome:
        self.report.outcomes.append(outcome)
        self.progress(outcome.contract_id, outcome.result)
        return outcome

    # ---------------------------------------------------------------------------------------- a run

    def records(self) -> Iterable[dict[str, Any]]:
        cvcrm = self.connectors.get("cvcrm")
        for text in self.request.contracts:
            ref = ContractRef.parse(text)
            try:
                record = load_contract(cvcrm, ref)
            except NotFoundError as exc:
                exc.context(tenant=self.tenant.id)
                if not self.request.plan:
                    deadletters.put(
                        self.store,
                        tenant=self.tenant.id,
                        flow=FLOW,
                        record_key=ref.record_key,
                        error=exc,
                        payload={"contract": text},
                        run_id=self.request.run_id,
                    )
                self._done(ContractOutcome(ref.contract_id, "dead_lettered", reason=str(exc)))
                continue
            if self.request.ready_only and not is_ready(record):
                self._done(ContractOutcome(ref.contract_id, "skipped", reason=not_ready_reason(record),
                                           reservation_id=str(record.get("idreserva") or "") or None))
                continue
            yield record
        for rid in self.request.reservations:
            try:
                reserva = cvcrm.read_one("reservas", rid)
            except NotFoundError as exc:
                log.warning("reservation %s not read, nothing dispatched from it: %s", rid, exc)
                continue
            yield from self._triggered(ready_in(cvcrm, reserva))
        if self.request.all_ready and not self.request.reservations:
            yield from self._triggered(ready_contracts(cvcrm))

    def _triggered(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Ready contracts an automatic run found, less those the tenant's trigger rules leave out (a
        contract type no rule flags): each one skipped with its reason, never silently."""
        from pipelines.dispatch.webhooks import poll_refusal

        for record in records:
            refusal = poll_refusal(self.tenant, record)
            if refusal is None:
                yield record
            else:
                self._done(ContractOutcome(str(record.get("idreservacontrato")), "skipped", reason=refusal,
                                           reservation_id=str(record.get("idreserva") or "") or None))

    def run(self, records: Iterable[dict[str, Any]] | None = None) -> DispatchReport:
        if not self.request.plan:
            require_verified_manager(self.store, self.tenant)
        seen: set[str] = set()
        try:
            for record in records if records is not None else self.records():
                contract_id = str(record.get("idreservacontrato"))
                if contract_id in seen:  # named and also ready: once per run
                    continue
                seen.add(contract_id)
                self.dispatch(record)
            if not self.request.plan and self.tenant.options.envelope_package is not None:
                # a run that only found envelopes already sent (a rerun after a crash between recording
                # an envelope and its notices) still sends the notices that are due
                self._warn_package()
        except packages.PackageError as exc:
            self.report.stopped = str(exc)
            raise
        finally:
            self.report.package = packages.state(self.store, self.tenant).as_dict()
            self.report.api_calls = self.connectors.api_calls()
        return self.report


def _chain(envelope: CanonicalEnvelope) -> list[dict[str, Any]]:
    """The envelope's signers as outcomes and the audit list them: role, routing order, channel."""
    return [
        {"role": s.role, "routing_order": s.routing_order, "channel": s.channel} for s in envelope.signers
    ]


def _refuse_undecidable(decision: versions.Decision) -> None:
    """Raise when a person must decide first: a signed earlier version stands, or a create of another
    version was sent but never recorded (the provider may hold an envelope Ponte does not know)."""
    if decision.action == "signed_stands":
        raise providers.SignedVersionStands(
            str(decision.reason), field=versions.SIGNED_FIELD,
            hint="a person decides: keep the signed contract (restore its document in the CRM), or "
            "have it rescinded and a new contract issued; replaying this letter sends nothing while the "
            "signed one stands",
        )
    if decision.action == "unfinished":
        raise DataError(
            str(decision.reason), field=versions.UNFINISHED_FIELD,
            hint="at the provider, look for an envelope carrying one of these keys (DocuSign's ponte_key "
            "custom field, Clicksign's metadata, a YAML provider's external key) and void it if it is "
            "there; then `ponte deadletter replay` this letter: the replay is your word that you checked",
        )


def _identity_verification(tenant: TenantConfig, provider: str, signer: Any) -> dict[str, Any]:
    """What identity check the provider was asked to run on a signer (DocuSign's ID Verification)."""
    workflow = tenant.options.evidence.docusign_idv_workflow_id
    if tenant.connector(provider).spec != "docusign" or not workflow:
        return {}
    if not (signer.selfie_required or signer.document_photo_required):
        return {}
    return {"identity_verification": {"provider": "docusign", "workflow_id": workflow}}


def run_dispatch(
    store: Store,
    tenant: TenantConfig,
    request: DispatchRequest,
    connectors: TenantConnectors | None = None,
    *,
    records: Iterable[dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> DispatchReport:
    """Dispatch contracts for one tenant (the entry point of Dagster, the CLI and replays).

    ``records`` (already-enriched CRM contract records) bypass reading CV CRM; otherwise the request's
    contracts / all ready ones are read. Raises UnverifiedEmailError or PackageError for tenant-wide
    stops; each bad contract is a dead letter in the report instead.
    """
    owned = connectors is None
    conns = connectors or TenantConnectors(tenant, store)
    try:
        return DispatchRun(store, tenant, conns, request, progress).run(records)
    finally:
        if owned:
            conns.close()


def preview_context(store: Store, tenant: TenantConfig, contract: str, template: str) -> dict[str, Any]:
    """The variables ``template`` would get for a CRM contract (``801`` or ``3001:801``), read live:
    what ``ponte template render --contract`` shows. Nothing is sent or stored.

    A contract the CRM does not have is a :class:`NotFoundError` naming it and the tenant, whether the
    CRM had no such contract or (for ``3001:801``) no such reservation; a person the contract names
    that the CRM cannot find keeps its own error."""
    ref = ContractRef.parse(contract)
    with TenantConnectors(tenant, store) as connectors:
        run = DispatchRun(store, tenant, connectors, DispatchRequest(plan=True, template=template))
        try:
            found = load_contract(connectors.get("cvcrm"), ref)
        except NotFoundError as exc:
            # the reservation's 404 carries no record; the scan's miss names the contract's record key
            if exc.record not in (None, ref.record_key):
                exc.context(tenant=tenant.id)
                raise
            where = f" in reservation {ref.reservation_id}" if ref.reservation_id else ""
            raise NotFoundError(
                f"CV CRM has no contract {ref.contract_id}{where}", tenant=tenant.id, record=ref.record_key,
                hint="check the ids in CV CRM: --contract RESERVATION:CONTRACT (3001:801), or the "
                "contract id alone to search every reservation",
            ) from None
        record = with_company_signers(found, tenant)
        model = load_mapping("cvcrm/contrato_to_contract").run(record, run.ctx)
        if model is None:
            raise DataError(
                "the contract is already signed in the CRM", tenant=tenant.id, record=f"contract {contract}",
                hint="preview another contract, or `ponte template render NAME --sample`",
            )
        return run.context(record, model, [template])


def replay_dispatch(store: Store, letter: Any, run_id: str | None) -> None:
    """`ponte deadletter replay` for flow "dispatch": re-read the contract from the CRM and dispatch it."""
    from schemas import load_tenant

    contract = letter.record_key.partition(":")[2]
    reservation = (letter.payload or {}).get("idreserva")
    ref = f"{reservation}:{contract}" if reservation else contract
    # replaying an "unsure create" letter is the person's word that they checked the provider
    checked = letter.field in UNCONFIRMED_FIELDS
    # replaying an "unfinished create of another version" letter is the person's word that they checked
    abandon = letter.field == versions.UNFINISHED_FIELD
    run_dispatch(store, load_tenant(letter.tenant),
                 DispatchRequest(contracts=[ref], run_id=run_id, person_checked=checked, abandon_unfinished=abandon))


__all__ = [
    "ContractOutcome",
    "DispatchReport",
    "DispatchRequest",
    "DispatchRun",
    "PonteError",
    "replay_dispatch",
    "run_dispatch",
]

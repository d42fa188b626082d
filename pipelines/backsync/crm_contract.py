"""The CRM contract, complete: what back-sync does in CV CRM once every signer signed.

After the stamped PDF is attached to the reservation (:func:`pipelines.backsync.completion.upload_to_crm`),
three more steps finish the contract, in this order, each at most once:

1. ``original_contract``: the contract dispatch sent (``Envelope.contract_id``, CV's idreservacontrato) is
   marked ``assinado: S`` (and ``validado: S`` when ``options.on_signed.validate_contract``) through the
   connector's ``update_contrato``. CV CRM documents no route that changes a contract (PROVIDERS.md §2):
   the route is UNCONFIRMED, so a 400/404/405/409/422 answer, the connector value ``contrato_update: off``
   or a contract the CRM does not show leave the original as it is with a warning in the history; the
   stamped PDF attached with ``assinado: S`` is then the proof of signature.
2. ``evidence``: the evidence summary (signers, times, IP, device, geolocation, identity checks), rendered
   from ``mappings/templates/evidencias.html.j2``, stored next to the signed PDF (its SHA-256 committed
   before any upload, so a rerun sends the same bytes), then attached to the reservation as a document of
   type ``options.on_signed.evidence_document_type`` (``POST /v1/comercial/reservas/documentos``,
   PROVIDERS.md §2). A write left unsure is looked up by that SHA-256 among the reservation's documents.
   Unset type: Ponte keeps it and says so in the history.
3. ``reservation_situation``: the reservation moves to ``options.on_signed.reservation_situation``
   (activation) through ``alterar_situacao_reserva`` (route documented, body UNCONFIRMED); unset: no move.
   A refusal is the tenant's to fix (a situation id its workflow lacks): a data error, dead-lettered, the
   earlier steps stay done and the poll retries only the move.

Each step's outcome is committed in the envelope's ``details.completion`` with an audit row, and the
steps already there are skipped, so a rerun after a crash does only what is left. The writes go through
the outbox (each with a lookup that reads the CRM), so a crash between a call and its record does not
repeat it. ``details.crm`` is written last: until then the flow keeps the envelope "to sync" and the poll
comes back to finish.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from connectors.runtime import Connector, HttpError
from pipelines.documents.render import render_template
from pipelines.outbox import write_once
from pipelines.store.db import Store
from pipelines.store.models import AuditEntry, Envelope, utcnow
from pipelines.store.repos import audit
from ponte import DataError, get_logger, mask_document, mask_email
from schemas import TenantConfig

log = get_logger("backsync.crm_contract")
FLOW = "backsync"
#: the steps of a complete CRM contract, in order (``signed_pdf`` is completion.upload_to_crm's)
STEPS = ("signed_pdf", "original_contract", "evidence", "reservation_situation")
#: answers that mean "CV CRM does not take this call as Ponte shaped it" (not auth, not transient)
REFUSALS = frozenset({400, 404, 405, 409, 410, 422})
CRASH_ENV = "PONTE_BACKSYNC_CRASH_AT"
EVIDENCE_TEMPLATE = "evidencias"

ROLES = {
    "client": "comprador(a)",
    "spouse": "cônjuge",
    "witness": "testemunha",
    "company_representative": "representante da empresa",
    "company_witness": "testemunha da empresa",
}
STATUSES = {"signed": "assinou", "declined": "recusou", "expired": "expirou"}


def crash(where: str) -> None:
    """Test seam: ``PONTE_BACKSYNC_CRASH_AT=<point>`` kills the process right there (tests swap this
    function for one that raises). Points: ``signed_pdf_sent``, ``after_signed_pdf``,
    ``original_contract_sent``, ``after_original_contract``, ``evidence_stored``, ``evidence_sent``,
    ``after_evidence``, ``situation_sent``, ``after_situation``."""
    if os.environ.get(CRASH_ENV) == where:
        os._exit(137)


# ------------------------------------------------------------------------------------------ records


def completion_state(store: Store, envelope_id: int) -> dict[str, Any]:
    """The envelope's committed ``details.completion`` (fresh from the store)."""
    with store.session() as session:
        row = session.get(Envelope, envelope_id)
        return dict(((row.details or {}) if row is not None else {}).get("completion") or {})


def record_step(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    step: str,
    data: dict[str, Any],
    *,
    action: str,
    run_id: str | None,
    same: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Commit ``step``'s outcome in ``details.completion`` with its audit row, unless it is there already
    (``same`` says whether a recorded entry is this outcome; default: it is done)."""
    same = same or (lambda entry: bool(entry.get("done")))
    with store.session() as session:
        row = session.get(Envelope, envelope.id)
        assert row is not None
        details = dict(row.details or {})
        completion = dict(details.get("completion") or {})
        current = completion.get(step)
        if current and same(current):
            return dict(current)
        entry = {**data, "done": data.get("done", True), "at": utcnow().isoformat()}
        completion[step] = entry
        details["completion"] = completion
        row.details = details
        audit(
            session,
            tenant=tenant.id,
            flow=FLOW,
            action=action,
            entity="envelope",
            entity_id=str(envelope.id),
            run_id=run_id,
            details={"contract": envelope.contract_id, "step": step, **data},
        )
    if entry.get("warning"):
        log.warning("contract %s, %s: %s", envelope.contract_id, step, entry["warning"])
    return entry


def _refused(exc: Exception) -> bool:
    return isinstance(exc, HttpError) and exc.status in REFUSALS


def _as_id(value: str | int) -> int | str:
    text = str(value)
    return int(text) if text.isdigit() else text


# ------------------------------------------------------------------------ 1. the original contract


def _crm_contract(cvcrm: Connector, reservation: str, contract_id: str) -> dict[str, Any] | None:
    for item in cvcrm.read("contratos", params={"idreserva": reservation}):
        if str(item.get("idreservacontrato")) == str(contract_id):
            return item
    return None


def mark_original_signed(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    reservation: str,
    worker: str,
    run_id: str | None,
) -> dict[str, Any]:
    """The contract dispatch sent, marked signed (and validated if the tenant says so) in CV CRM."""
    want = {"assinado": "S", **({"validado": "S"} if tenant.options.on_signed.validate_contract else {})}
    return _update_original(
        store, tenant, envelope, cvcrm, reservation, worker, run_id,
        want=want, step="original_contract", suffix="crm-signed",
        actions=("crm_original_contract_signed", "crm_original_contract_not_marked"),
        fallback="the stamped PDF attached with assinado S is the proof of signature",
        crash_point="original_contract_sent",
    )


#: the step a refused or expired envelope records (not a completion step: it ends no completion)
STOPPED_STEP = "stopped"


def mark_stopped(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    reservation: str,
    worker: str,
    run_id: str | None,
) -> dict[str, Any]:
    """A refused or expired envelope shown in the CRM: the original contract is set back to not validated
    (``validado: N``), so the CRM team sees it needs them and dispatch's poll leaves it until they
    validate it again (a changed document then goes out as a new version; the same one with
    ``ponte sync dispatch --contract ... --resend``). Once per envelope; in the contract's history."""
    return _update_original(
        store, tenant, envelope, cvcrm, reservation, worker, run_id,
        want={"validado": "N"}, step=STOPPED_STEP, suffix=f"crm-stopped:{envelope.id}",
        actions=(f"crm_contract_{envelope.status}", "crm_contract_stop_not_marked"),
        fallback=f"the envelope's {envelope.status} status shows in Ponte's history and `ponte envelopes`",
        crash_point="stopped_sent",
    )


def _update_original(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    reservation: str,
    worker: str,
    run_id: str | None,
    *,
    want: dict[str, str],
    step: str,
    suffix: str,
    actions: tuple[str, str],
    fallback: str,
    crash_point: str,
) -> dict[str, Any]:
    """Set ``want`` on the contract dispatch sent, once (outbox key ``...:<suffix>``), through the
    UNCONFIRMED ``update_contrato`` route; a refusal or ``contrato_update: off`` leaves the contract as it
    is and records the warning with ``fallback`` (docs/backsync.md)."""
    cid = str(envelope.contract_id)
    base = {"idreservacontrato": cid, "reservation": reservation, **want}
    action_ok, action_warn = actions

    def matches(item: dict[str, Any] | None) -> bool:
        return item is not None and all(str(item.get(k) or "").upper() == v for k, v in want.items())

    if str(cvcrm.values.get("contrato_update") or "api") == "off":
        return record_step(store, tenant, envelope, step, {
            **base, "how": "off", "warning": f"contrato_update is off: contract {cid} left as it is; {fallback}",
        }, action=action_warn, run_id=run_id)
    current = _crm_contract(cvcrm, reservation, cid)
    if current is None:
        return record_step(store, tenant, envelope, step, {
            **base, "how": "not_found",
            "warning": f"CV CRM shows no contract {cid} on reservation {reservation}; {fallback}",
        }, action=action_warn, run_id=run_id)
    # already so (a CRM user, or our own call before a crash): nothing is sent, and an outbox item left
    # in flight by that crash is closed by its lookup
    already = matches(current)
    record = {"idreserva": _as_id(reservation), "idreservacontrato": _as_id(cid), **want}

    def send() -> tuple[str | None, dict[str, Any]]:
        if already:
            return cid, {"already": True, **want}
        result = cvcrm.call("update_contrato", record)
        crash(crash_point)
        return cid, {"status": result.status, **want}

    def find() -> tuple[str | None, dict[str, Any]] | None:
        return (cid, {"found": True, **want}) if matches(_crm_contract(cvcrm, reservation, cid)) else None

    key = f"{tenant.id}:contract:{cid}:{suffix}"
    if suffix == "crm-signed":  # the key every envelope completed so far was recorded under
        key = f"{key}:{''.join(sorted(want))}"
    try:
        outcome = write_once(
            store, tenant=tenant.id, connector="cvcrm", action="update_contrato", key=key,
            payload={"contract": cid, "reservation": reservation, **want},
            send=send, find=find, worker=worker, run_id=run_id,
        )
    except HttpError as exc:
        if not _refused(exc):
            raise
        # UNCONFIRMED route: CV CRM does not take it; the fallback holds (docs/backsync.md)
        return record_step(store, tenant, envelope, step, {
            **base, "how": "refused", "status": exc.status,
            "warning": f"CV CRM refused updating contract {cid} ({exc.status}: {exc.message[:200]}); "
            f"it is left as it is; {fallback}",
        }, action=action_warn, run_id=run_id)
    how = "already" if already and outcome.how == "sent" else outcome.how
    entry = record_step(store, tenant, envelope, step, {**base, "how": how}, action=action_ok, run_id=run_id)
    if step == "original_contract":
        crash("after_original_contract")
    return entry


# ------------------------------------------------------------------------------ 2. the evidence PDF


def _when(value: datetime | str | None, zone: ZoneInfo) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        return value.strftime("%d/%m/%Y %H:%M:%S")
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S") + f" ({zone.key})"


def signed_at_text(value: datetime | None, tenant: TenantConfig) -> str | None:
    """A time as the evidence summary prints it: the tenant's zone, ``dd/mm/aaaa HH:MM:SS (zone)``."""
    return _when(value, ZoneInfo(tenant.options.timezone))


def evidence_context(store: Store, tenant: TenantConfig, envelope_id: int) -> dict[str, Any]:
    """What the evidence template reads: the envelope, and each signer with the evidence back-sync
    recorded (the ``signer_evidence`` audit rows, which merged DocuSign's audit events, else the
    signer row's own). CPF and e-mail masked: the CRM shows this document to its staff."""
    zone = ZoneInfo(tenant.options.timezone)
    with store.session() as session:
        env = session.scalars(
            select(Envelope).where(Envelope.id == envelope_id).options(selectinload(Envelope.signers))
        ).one()
        ids = [str(s.id) for s in env.signers]
        recorded: dict[str, dict[str, Any]] = {}
        for row in session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.tenant == tenant.id,
                AuditEntry.action == "signer_evidence",
                AuditEntry.entity == "envelope_signer",
                AuditEntry.entity_id.in_(ids),
            )
            .order_by(AuditEntry.id)
        ):
            recorded[row.entity_id] = dict(row.details or {})  # the latest wins
        final = (env.details or {}).get("final") or {}
        signers = []
        for s in env.signers:
            got = recorded.get(str(s.id)) or {}
            collected = dict((s.evidence or {}).get("collected") or {})
            ip = got.get("ip") or collected.get("ip")
            device = got.get("device") or collected.get("device") or collected.get("user_agent")
            lat = got.get("latitude", collected.get("latitude"))
            lon = got.get("longitude", collected.get("longitude"))
            checks = got.get("identity_checks") or collected.get("identity_checks") or []
            signers.append({
                "ordem": s.routing_order,
                "papel": ROLES.get(s.role, s.role),
                "nome": s.name,
                "cpf": mask_document(s.document) if s.document else None,
                "email": mask_email(s.email) if s.email else None,
                "situacao": STATUSES.get(s.status, s.status),
                "assinado_em": _when(s.signed_at, zone),
                "ip": ip,
                "dispositivo": device,
                "geolocalizacao": f"{lat}, {lon}" if lat is not None and lon is not None else None,
                "selfie": bool(got.get("selfie_ref") or collected.get("selfie_ref")),
                "foto_documento": bool(got.get("document_photo_ref") or collected.get("document_photo_ref")),
                "verificacoes": [
                    {
                        "metodo": str(c.get("method") or c.get("provider") or "verificação"),
                        "resultado": str(c.get("status") or "-"),
                        "em": _when(c.get("checked_at"), zone),
                    }
                    for c in checks
                    if isinstance(c, dict)
                ],
            })
        name = env.document_name or f"contrato-{env.contract_id}"
        return {
            "contrato": {"id": env.contract_id, "titulo": Path(name).stem, "numero": None, "data": None},
            "evidencias": {
                "documento": name,
                "codigo": env.verification_code,
                "verificacao": final.get("verification_url"),
                "sha256": env.signed_sha256,
                "sha256_provedor": final.get("provider_sha256"),
                "sha256_certificado": final.get("certificate_sha256"),
                "provedor": env.provider,
                "envelope": env.provider_envelope_id,
                "enviado_em": _when(env.sent_at, zone),
                "concluido_em": _when(env.completed_at, zone),
                "signatarios": signers,
            },
            "hoje": utcnow().astimezone(zone).strftime("%d/%m/%Y"),
        }


def _store_evidence(
    store: Store, tenant: TenantConfig, envelope: Envelope, folder: Path, run_id: str | None
) -> tuple[str, str]:
    """The evidence PDF rendered and written, its path and SHA-256 committed (once: a rerun reuses it)."""
    state = completion_state(store, envelope.id).get("evidence") or {}
    sha, path = state.get("sha256"), state.get("path")
    if sha and path and Path(path).exists() and hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha:
        return str(sha), str(path)
    context = evidence_context(store, tenant, envelope.id)
    document = render_template(EVIDENCE_TEMPLATE, context, record=f"contract:{envelope.contract_id}")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{envelope.contract_id}-{envelope.verification_code}-evidencias.pdf"
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(document.content)
    tmp.replace(target)
    sha = document.sha256
    record_step(store, tenant, envelope, "evidence", {
        "done": False, "how": "stored", "sha256": sha, "path": str(target), "pages": document.pages,
    }, action="evidence_summary_stored", run_id=run_id, same=lambda e: e.get("sha256") == sha)
    crash("evidence_stored")
    return sha, str(target)


def attach_evidence(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    reservation: str,
    folder: Path,
    worker: str,
    run_id: str | None,
) -> dict[str, Any]:
    """The evidence summary PDF, stored by Ponte and attached to the reservation once."""
    sha, path = _store_evidence(store, tenant, envelope, folder, run_id)
    base = {"sha256": sha, "path": path, "reservation": reservation}
    idtipo = tenant.options.on_signed.evidence_document_type
    if idtipo is None:
        return record_step(store, tenant, envelope, "evidence", {
            **base, "how": "kept",
            "warning": "evidence summary kept by Ponte, not attached to CV CRM (set "
            "options.on_signed.evidence_document_type to attach it)",
        }, action="crm_evidence_not_attached", run_id=run_id)
    content = Path(path).read_bytes()
    record: dict[str, Any] = {
        "idreserva": _as_id(reservation),
        "idtipo": idtipo,
        "documento_base64": base64.b64encode(content).decode(),
    }
    association = str(cvcrm.values.get("documento_associacao") or "").strip()
    if association:
        record["idtipo_associacao"] = _as_id(association)

    def send() -> tuple[str | None, dict[str, Any]]:
        result = cvcrm.call("attach_documento", record)
        crash("evidence_sent")
        return result.id, {"status": result.status, "sha256": sha}

    def find() -> tuple[str | None, dict[str, Any]] | None:
        for item in cvcrm.read("documentos", params={"idreserva": reservation}):
            link = item.get("link")
            if str(item.get("idtipo")) != str(idtipo) or not link:
                continue
            if hashlib.sha256(cvcrm.fetch_url(str(link), what="document")).hexdigest() == sha:
                ident = item.get("iddocumento")
                return (None if ident is None else str(ident)), {"found": True, "sha256": sha}
        return None

    try:
        outcome = write_once(
            store, tenant=tenant.id, connector="cvcrm", action="attach_documento",
            key=f"{tenant.id}:contract:{envelope.contract_id}:evidence:{sha}",
            payload={"contract": envelope.contract_id, "reservation": reservation, "idtipo": idtipo, "sha256": sha},
            send=send, find=find, worker=worker, run_id=run_id,
        )
    except HttpError as exc:
        if not _refused(exc):
            raise
        raise DataError(
            f"CV CRM refused the evidence summary of contract {envelope.contract_id} as document type "
            f"{idtipo} ({exc.status}: {exc.message[:200]})",
            record=f"contract:{envelope.contract_id}",
            field="options.on_signed.evidence_document_type",
            hint="check the document type id in CV CRM; the signed PDF and the steps before are done, the "
            "poll retries the rest (unset the option to keep the summary in Ponte only)",
        ) from exc
    entry = record_step(store, tenant, envelope, "evidence", {
        **base, "how": outcome.how, "crm_document": outcome.external_id, "idtipo": idtipo,
    }, action="crm_evidence_attached", run_id=run_id)
    crash("after_evidence")
    return entry


# -------------------------------------------------------------------- 3. the reservation's situation


def move_reservation(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    reservation: str,
    worker: str,
    run_id: str | None,
) -> dict[str, Any]:
    """The reservation moved to the situation the tenant configures for "signed" (none: not moved)."""
    target = tenant.options.on_signed.reservation_situation
    if target is None:
        return record_step(store, tenant, envelope, "reservation_situation",
                           {"how": "not_configured", "reservation": reservation},
                           action="crm_reservation_not_moved", run_id=run_id)
    before = cvcrm.read_one("reservas", reservation).get("idsituacao")
    base = {"reservation": reservation, "from": before, "to": target}
    already = str(before) == str(target)  # as for the contract: nothing sent, a crashed item closed
    record = {
        "idreserva": _as_id(reservation),
        "idsituacao": target,
        "comentario": f"Contrato {envelope.contract_id} assinado eletronicamente "
        f"(verificação {envelope.verification_code})",
    }

    def send() -> tuple[str | None, dict[str, Any]]:
        if already:
            return str(target), {"already": True}
        result = cvcrm.call("alterar_situacao_reserva", record)
        crash("situation_sent")
        return str(target), {"status": result.status}

    def find() -> tuple[str | None, dict[str, Any]] | None:
        now = cvcrm.read_one("reservas", reservation).get("idsituacao")
        return (str(target), {"found": True}) if str(now) == str(target) else None

    try:
        outcome = write_once(
            store, tenant=tenant.id, connector="cvcrm", action="alterar_situacao_reserva",
            key=f"{tenant.id}:contract:{envelope.contract_id}:situation:{target}",
            payload={"contract": envelope.contract_id, "reservation": reservation, "idsituacao": target},
            send=send, find=find, worker=worker, run_id=run_id,
        )
    except HttpError as exc:
        if not _refused(exc):
            raise
        raise DataError(
            f"CV CRM refused moving reservation {reservation} to situation {target} "
            f"({exc.status}: {exc.message[:200]})",
            record=f"contract:{envelope.contract_id}",
            field="options.on_signed.reservation_situation",
            hint="check the id against the reservation workflow in CV CRM (the move's body is UNCONFIRMED, "
            "docs/backsync.md); the earlier steps are done and the poll retries the move (unset the option "
            "to stop moving)",
        ) from exc
    how = "already" if already and outcome.how == "sent" else outcome.how
    entry = record_step(store, tenant, envelope, "reservation_situation", {**base, "how": how},
                        action="crm_reservation_moved", run_id=run_id)
    crash("after_situation")
    return entry


# --------------------------------------------------------------------------------------- the whole


def complete(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    reservation: str,
    sha: str,
    folder: Path,
    worker: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run the steps after the stamped PDF's upload that are not done yet, then mark the CRM side
    complete (``details.crm``, which ends the flow's interest in the envelope). Returns the completion."""
    done = completion_state(store, envelope.id)
    if not (done.get("original_contract") or {}).get("done"):
        mark_original_signed(store, tenant, envelope, cvcrm, reservation, worker, run_id)
    if not (done.get("evidence") or {}).get("done"):
        attach_evidence(store, tenant, envelope, cvcrm, reservation, folder, worker, run_id)
    if not (done.get("reservation_situation") or {}).get("done"):
        move_reservation(store, tenant, envelope, cvcrm, reservation, worker, run_id)
    with store.session() as session:
        row = session.get(Envelope, envelope.id)
        assert row is not None
        details = dict(row.details or {})
        completion = dict(details.get("completion") or {})
        uploaded = completion.get("signed_pdf") or {}
        crm = details.get("crm") or {}
        if crm.get("sha256") != sha:
            warnings = [f"{step}: {completion[step]['warning']}" for step in STEPS
                        if (completion.get(step) or {}).get("warning")]
            details["crm"] = {
                "uploaded_at": uploaded.get("at"),
                "sha256": sha,
                "contrato": uploaded.get("contrato"),
                "name": uploaded.get("name"),
                "completed_at": utcnow().isoformat(),
            }
            details.pop("finalizing", None)
            row.details = details
            audit(
                session,
                tenant=tenant.id,
                flow=FLOW,
                action="crm_contract_complete",
                entity="envelope",
                entity_id=str(envelope.id),
                run_id=run_id,
                details={
                    "contract": envelope.contract_id,
                    "reservation": reservation,
                    "steps": {step: (completion.get(step) or {}).get("how") for step in STEPS},
                    "warnings": warnings,
                },
            )
        return completion

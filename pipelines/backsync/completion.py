"""What happens once an envelope is completed: the signed PDF comes home, stamped and verifiable.

Steps, each safe to repeat after a crash:
1. take a short lease on the envelope (``details.finalizing``) so two workers never stamp it twice, and
   fix its verification code (the code is printed on the PDF, so it must exist first);
2. download the signed PDF (and the provider's certificate), stamp the chosen pages with a QR code and
   the verification link (an incremental update: the provider's bytes stay first, unchanged, so its
   digital seal still validates), write the file and commit its path and SHA-256 along with the
   provider's (a rerun reuses the file, so the hash, which keys the CRM upload, never changes);
3. record each signer's evidence (IP, device, geolocation, selfie and document-photo references, the
   identity checks the provider ran) in the audit log;
4. upload the stamped PDF to the CRM reservation, marked signed, through the outbox keyed by (tenant,
   contract, signed SHA-256): exactly once, even if a timeout left us unsure;
5. finish the CRM contract (:mod:`pipelines.backsync.crm_contract`): the original contract marked signed,
   the evidence summary PDF attached, the reservation moved to the tenant's "signed" situation; each
   step recorded in ``details.completion`` and the audit log, done at most once, and ``details.crm``
   written last, so a crash anywhere leaves the envelope to the poll, which does only what is left.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from connectors.runtime import Connector
from pipelines.backsync import crm_contract, downloads
from pipelines.backsync.translate import docusign_evidence
from pipelines.documents.placement import PageChoice, chosen_pages
from pipelines.documents.stamp import stamp
from pipelines.outbox import Finder, Sender, write_once
from pipelines.store.db import Store
from pipelines.store.models import Envelope, utcnow
from pipelines.store.repos import audit
from ponte import DataError, get_logger, mask_document, mask_email, settings
from schemas import TenantConfig
from schemas.canonical import EnvelopeStatus

log = get_logger("backsync.completion")
FLOW = "backsync"
LEASE = timedelta(minutes=5)


@dataclass
class Finalized:
    envelope_id: int
    how: str  # "stamped" | "already" | "busy"
    signed_sha256: str | None = None
    verification_url: str | None = None
    crm: str | None = None  # outbox outcome: sent | already_done | found


def documents_dir() -> Path:
    return settings.home() / "documents"


def verification_url(tenant: TenantConfig, code: str) -> str:
    return f"{tenant.options.verification_base_url.rstrip('/')}/verify/{code}"


def reservation_of(envelope: Envelope) -> str | None:
    details = envelope.details or {}
    for key in ("reservation_id", "idreserva_cv", "idreserva"):
        if details.get(key):
            return str(details[key])
    return None


def _page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def _pages(tenant: TenantConfig, envelope: Envelope) -> PageChoice:
    override = (envelope.details or {}).get("signature_pages")
    return override if override else tenant.options.signature_pages


def _lease(store: Store, envelope_id: int, worker: str) -> Envelope | None:
    """Lease the envelope for finalization; None when another worker holds a live lease."""
    now = utcnow()
    with store.session() as session:
        query = select(Envelope).where(Envelope.id == envelope_id).options(selectinload(Envelope.signers))
        if store.is_postgres:
            query = query.with_for_update(of=Envelope)
        envelope = session.scalars(query).one()
        details = dict(envelope.details or {})
        held = details.get("finalizing") or {}
        if held and held.get("worker") != worker and held.get("until", "") > now.isoformat():
            return None
        details["finalizing"] = {"worker": worker, "until": (now + LEASE).isoformat()}
        if not envelope.verification_code:
            envelope.verification_code = secrets.token_hex(10).upper()
        envelope.details = details
        session.flush()
        session.expunge(envelope)
        return envelope


def _evidence_rows(
    envelope: Envelope, provider: Connector, certificate_sha: str | None
) -> list[dict[str, Any]]:
    by_name: dict[str, Any] = {}
    if provider.name == "docusign" and "audit_events" in provider.spec.streams:
        by_name = docusign_evidence(
            list(provider.read("audit_events", params={"envelope_id": envelope.provider_envelope_id}))
        )
    rows = []
    for signer in envelope.signers:
        collected = dict((signer.evidence or {}).get("collected") or {})
        if signer.name in by_name:  # DocuSign's audit events fill what the provider's reads did not carry
            collected = {**by_name[signer.name].model_dump(mode="json", exclude_none=True), **collected}
        rows.append(
            {
                "signer": signer.id,
                "role": signer.role,
                "email": mask_email(signer.email) if signer.email else None,
                "document": mask_document(signer.document) if signer.document else None,
                "status": signer.status,
                "signed_at": signer.signed_at.isoformat() if signer.signed_at else None,
                "ip": collected.get("ip"),
                "device": collected.get("device") or collected.get("user_agent"),
                "latitude": collected.get("latitude"),
                "longitude": collected.get("longitude"),
                "selfie_ref": collected.get("selfie_ref"),
                "document_photo_ref": collected.get("document_photo_ref"),
                # identity checks the provider ran (DocuSign's ID Verification: workflow, result, time)
                "identity_checks": collected.get("identity_checks"),
                # the provider's certificate holds the rest of the evidence, kept next to the PDF
                "certificate_sha256": certificate_sha,
            }
        )
    return rows


def _stamp_and_store(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    provider: Connector,
    worker: str,
    run_id: str | None,
) -> tuple[str, str]:
    code = str(envelope.verification_code)
    url = verification_url(tenant, code)
    signed, certificate = downloads.signed_document(store, envelope, provider)
    total = _page_count(signed)
    doc_pages = total - (_page_count(certificate) if certificate else 0)
    if doc_pages < 1:
        doc_pages = total
    pages = chosen_pages(_pages(tenant, envelope), doc_pages)  # the contract's pages, not the certificate
    stamped = stamp(signed, url, code, pages)
    sha = hashlib.sha256(stamped).hexdigest()
    folder = documents_dir() / tenant.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{envelope.contract_id}-{code}.pdf"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(stamped)
    tmp.replace(path)
    cert_sha = cert_path = None
    if certificate:
        cert_file = folder / f"{envelope.contract_id}-{code}-certificate.pdf"
        cert_file.write_bytes(certificate)
        cert_sha, cert_path = hashlib.sha256(certificate).hexdigest(), str(cert_file)
    evidence = _evidence_rows(envelope, provider, cert_sha)
    with store.session() as session:
        row = session.get(Envelope, envelope.id)
        assert row is not None
        row.signed_sha256, row.signed_path = sha, str(path)
        details = dict(row.details or {})
        details["final"] = {
            "stamped_at": utcnow().isoformat(),
            "pages": pages,
            # the stamp is an incremental update: the stamped file's first provider_bytes bytes are the
            # provider's file, byte for byte, so both hashes identify the same signed document
            "provider_sha256": hashlib.sha256(signed).hexdigest(),
            "provider_bytes": len(signed),
            "signed_sha256": sha,
            "certificate_sha256": cert_sha,
            "certificate_path": cert_path,
            "verification_url": url,
        }
        row.details = details
        for item in evidence:
            audit(
                session,
                tenant=tenant.id,
                flow=FLOW,
                action="signer_evidence",
                entity="envelope_signer",
                entity_id=str(item["signer"]),
                source_record=f"{provider.name}:{envelope.provider_envelope_id}",
                run_id=run_id,
                details={"contract": envelope.contract_id, **item},
            )
        audit(
            session,
            tenant=tenant.id,
            flow=FLOW,
            action="signed_document_stored",
            entity="envelope",
            entity_id=str(envelope.id),
            run_id=run_id,
            details={"contract": envelope.contract_id, "sha256": sha, "pages": pages, "code": code},
        )
    log.info(
        "envelope %s of contract %s stamped (%s pages), sha256 %s",
        envelope.id,
        envelope.contract_id,
        len(pages),
        sha[:12],
    )
    return sha, str(path)


def upload_to_crm(
    store: Store,
    tenant: TenantConfig,
    envelope: Envelope,
    cvcrm: Connector,
    sha: str,
    path: str,
    worker: str,
    run_id: str | None = None,
) -> str:
    """The stamped PDF onto the CRM contract, marked signed, exactly once per (contract, hash)."""
    reservation = _crm_reservation(envelope)
    name, record = _signed_upload(envelope, reservation, path)
    send, find = _upload_calls(cvcrm, record, name)
    outcome = write_once(
        store,
        tenant=tenant.id,
        connector="cvcrm",
        action="upload_contrato",
        key=f"{tenant.id}:contract:{envelope.contract_id}:signed:{sha}",
        payload={"contract": envelope.contract_id, "reservation": reservation, "name": name, "sha256": sha},
        send=send,
        find=find,
        worker=worker,
        run_id=run_id,
    )
    # the step is recorded (details.completion.signed_pdf + the crm_contract_uploaded audit row) once per
    # hash; details.crm, which ends the flow's interest in the envelope, waits for the steps after it
    crm_contract.record_step(
        store,
        tenant,
        envelope,
        "signed_pdf",
        {
            "reservation": reservation,
            "crm_contract": outcome.external_id,
            "contrato": outcome.external_id,
            "name": name,
            "how": outcome.how,
            "sha256": sha,
        },
        action="crm_contract_uploaded",
        run_id=run_id,
        same=lambda entry: entry.get("sha256") == sha,
    )
    crm_contract.crash("after_signed_pdf")
    return outcome.how


def _crm_reservation(envelope: Envelope) -> str:
    """The CV CRM reservation the signed contract goes onto (dispatch recorded it); a dead letter without."""
    reservation = reservation_of(envelope)
    if reservation is None:
        raise DataError(
            f"envelope {envelope.id} (contract {envelope.contract_id}) has no CRM reservation id",
            record=f"envelope:{envelope.id}",
            field="details.reservation_id",
            hint="dispatch records the CV CRM reservation (idreserva) in the envelope's details",
        )
    return reservation


def _signed_upload(envelope: Envelope, reservation: str, path: str) -> tuple[str, dict[str, Any]]:
    """The uploaded file's name and the CRM's upload record: the stamped PDF, signed and validated."""
    stem = Path(envelope.document_name or f"contrato-{envelope.contract_id}").stem
    name = f"{stem} - assinado {envelope.verification_code}.pdf"
    content = Path(path).read_bytes()
    record = {
        "idreserva_cv": reservation,
        "contratos": [
            {
                "contrato_base64": base64.b64encode(content).decode(),
                "contrato_nome": name,
                "assinado": "S",
                "validado": "S",
            }
        ],
    }
    return name, record


def _upload_calls(cvcrm: Connector, record: dict[str, Any], name: str) -> tuple[Sender, Finder]:
    """The upload's send and its lookup at the CRM (for an attempt a crash left unsure)."""

    def send() -> tuple[str | None, dict[str, Any]]:
        result = cvcrm.call("upload_contrato", record)
        created = (result.data or {}).get("contratos") if isinstance(result.data, dict) else None
        ident = str(created[0].get("idreservacontrato")) if created else result.id
        crm_contract.crash("signed_pdf_sent")
        return ident, {"contrato_nome": name, "status": result.status}

    def find() -> tuple[str | None, dict[str, Any]] | None:
        found = cvcrm.find_existing("upload_contrato", record)
        if found is None:
            return None
        data = found.data if isinstance(found.data, dict) else {}
        return str(data.get("idreservacontrato") or found.id or ""), {"contrato_nome": name, "found": True}

    return send, find


def finalize(
    store: Store,
    tenant: TenantConfig,
    envelope_id: int,
    provider: Connector,
    cvcrm: Connector,
    *,
    worker: str,
    run_id: str | None = None,
) -> Finalized:
    """Bring a completed envelope's signed document home (idempotent; see the module docstring)."""
    envelope = _lease(store, envelope_id, worker)
    if envelope is None:
        return Finalized(envelope_id, "busy")
    if envelope.status != EnvelopeStatus.completed:
        raise DataError(f"envelope {envelope_id} is {envelope.status}, not completed")
    code = str(envelope.verification_code)
    if (envelope.details or {}).get("crm", {}).get("sha256") and envelope.signed_sha256 == (
        envelope.details or {}
    ).get("crm", {}).get("sha256"):
        return Finalized(envelope_id, "already", envelope.signed_sha256, verification_url(tenant, code))
    sha, path = envelope.signed_sha256, envelope.signed_path
    try:
        if not (
            sha
            and path
            and Path(path).exists()
            and hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
        ):
            sha, path = _stamp_and_store(store, tenant, envelope, provider, worker, run_id)
        uploaded = crm_contract.completion_state(store, envelope_id).get("signed_pdf") or {}
        if uploaded.get("sha256") == sha:
            how = "already_done"
        else:
            how = upload_to_crm(store, tenant, envelope, cvcrm, sha, path, worker, run_id)
        reservation = reservation_of(envelope)
        assert reservation is not None  # upload_to_crm refused an envelope without one
        crm_contract.complete(
            store, tenant, envelope, cvcrm, reservation, sha, documents_dir() / tenant.id, worker, run_id
        )
    except Exception:
        _unlease(store, envelope_id, worker)  # let the next try (any worker) start at once
        raise
    return Finalized(envelope_id, "stamped", sha, verification_url(tenant, code), how)


def _unlease(store: Store, envelope_id: int, worker: str) -> None:
    with store.session() as session:
        row = session.get(Envelope, envelope_id)
        if row is not None and (row.details or {}).get("finalizing", {}).get("worker") == worker:
            details = dict(row.details)
            details.pop("finalizing", None)
            row.details = details

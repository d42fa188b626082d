"""What an operator and a verifier may see: a contract's signing history and a document's proof.

Both views are built here, once, with personal data masked (CPF ``***.***.***-25``, e-mail
``m***@example.com``): the CLI, Dagster metadata and the public verification page show the same thing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pipelines.store.db import Store
from pipelines.store.models import Envelope
from ponte import mask_document, mask_email
from schemas.canonical import EnvelopeStatus


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def mask_name(name: str | None) -> str | None:
    """First name and initials ("Maria A. d. S."): enough to recognise oneself, not to profile."""
    if not name:
        return None
    first, *rest = name.split()
    return " ".join([first, *(f"{part[0]}." for part in rest)])


def _signer_view(signer: Any) -> dict[str, Any]:
    return {
        "order": signer.routing_order,
        "role": signer.role,
        "name": signer.name,
        "email": mask_email(signer.email) if signer.email else None,
        "cpf": mask_document(signer.document) if signer.document else None,
        "status": signer.status,
        "signed_at": _iso(signer.signed_at),
    }


def _document_link(env: Envelope, base_url: str | None) -> str | None:
    final = (env.details or {}).get("final") or {}
    if final.get("verification_url"):
        return str(final["verification_url"])
    if env.verification_code and base_url:
        return f"{base_url.rstrip('/')}/verify/{env.verification_code}"
    return None


#: what the history shows of each CRM step (no paths or payloads; pipelines/backsync/crm_contract.py)
_STEP_KEYS = ("how", "at", "crm_contract", "idreservacontrato", "assinado", "validado", "crm_document",
              "idtipo", "sha256", "from", "to", "status", "warning")


def _completion_view(env: Envelope) -> dict[str, Any]:
    """The CRM side of a completed envelope, step by step (signed PDF, original contract, evidence
    summary, reservation situation), with the warnings of the steps that fell back."""
    from pipelines.backsync.crm_contract import STEPS

    details = env.details or {}
    completion = details.get("completion") or {}
    steps = {}
    for step in STEPS:
        entry = completion.get(step)
        if not entry:
            steps[step] = {"done": False}
            continue
        steps[step] = {"done": bool(entry.get("done")), **{k: entry[k] for k in _STEP_KEYS if k in entry}}
    warnings = [f"{step}: {entry['warning']}" for step, entry in steps.items() if entry.get("warning")]
    return {
        "complete": bool((details.get("crm") or {}).get("completed_at")),
        "steps": steps,
        "warnings": warnings,
    }


def contract_history(
    store: Store, tenant: str, contract_id: str, base_url: str | None = None
) -> list[dict[str, Any]]:
    """Every document sent for a contract, oldest first, with status, signers and the document link;
    for a completed one, ``crm``: each step that completed the CRM contract (when, how, and the warning
    of a step that fell back, e.g. an original contract CV CRM would not mark signed)."""
    with store.session() as session:
        envelopes = list(
            session.scalars(
                select(Envelope)
                .where(Envelope.tenant == tenant, Envelope.contract_id == str(contract_id))
                .options(selectinload(Envelope.signers))
                .order_by(Envelope.id)
            )
        )
        return [
            {
                "envelope": env.id,
                "document": env.document_name,
                "provider": env.provider,
                "provider_envelope_id": env.provider_envelope_id,
                "status": env.status,
                "pending": env.status
                in (EnvelopeStatus.draft, EnvelopeStatus.sent, EnvelopeStatus.delivered),
                "sent_at": _iso(env.sent_at),
                "completed_at": _iso(env.completed_at),
                "signed_sha256": env.signed_sha256,
                "link": _document_link(env, base_url),
                "crm_contract": ((env.details or {}).get("crm") or {}).get("contrato"),
                "crm": _completion_view(env) if env.status == EnvelopeStatus.completed else None,
                "signers": [_signer_view(s) for s in env.signers],
            }
            for env in envelopes
        ]


def verification(store: Store, code: str) -> dict[str, Any] | None:
    """The public proof of one signed document (masked), or None for an unknown code."""
    if not code or len(code) > 64:
        return None
    with store.session() as session:
        env = session.scalars(
            select(Envelope).where(Envelope.verification_code == code).options(selectinload(Envelope.signers))
        ).first()
        if env is None:
            return None
        final = (env.details or {}).get("final") or {}
        return {
            "code": code,
            "document": env.document_name,
            "status": env.status,
            "valid": env.status == EnvelopeStatus.completed and bool(env.signed_sha256),
            "sha256": env.signed_sha256,
            # the provider's own file (its seal intact): the stamped file begins with these bytes
            "provider_sha256": final.get("provider_sha256"),
            "provider": env.provider,
            "sent_at": _iso(env.sent_at),
            "completed_at": _iso(env.completed_at),
            "stamped_at": final.get("stamped_at"),
            "signers": [
                {**{k: v for k, v in _signer_view(s).items() if k != "email"}, "name": mask_name(s.name)}
                for s in env.signers
            ],
        }

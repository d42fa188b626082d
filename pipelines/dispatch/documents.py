"""The PDF a contract is signed on: the CRM's own PDF, or a template Ponte fills, plus optional terms.

The document's SHA-256 is part of the envelope's idempotency key, so the same bytes never become two
envelopes and a changed contract (a new version) is a new envelope.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

from pypdf import PdfReader, PdfWriter

from connectors.runtime import Connector, ForeignHostError
from pipelines.documents import render
from ponte import DataError, PonteError
from schemas import TenantConfig
from schemas.canonical import Contract

Terms = Literal["none", "with_contract", "alone"]
TERMS_TEMPLATE = "termo_de_ciencia"


@dataclass(frozen=True)
class Document:
    name: str
    content: bytes
    pages: int
    page_size: tuple[float, float]
    source: str  # crm_pdf | template

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.content).hexdigest()


def _measure(content: bytes, record: str) -> tuple[int, tuple[float, float]]:
    try:
        reader = PdfReader(io.BytesIO(content))
        first = reader.pages[0]
        return len(reader.pages), (float(first.mediabox.width), float(first.mediabox.height))
    except Exception as exc:  # pypdf raises many types for a broken file
        raise DataError(
            f"the contract's PDF is not readable ({type(exc).__name__})",
            record=record,
            hint="regenerate the contract PDF in the CRM",
        ) from exc


def download_crm_pdf(cvcrm: Connector, record: dict[str, Any]) -> bytes:
    """The contract's own PDF from the CRM, through the connector runtime's one download path.

    The ``link`` comes from a CRM payload, so it is outside input: :meth:`Connector.fetch_url` refuses
    a host other than the connector's own origin or CV CRM's file hosts before any request goes out,
    checks every redirect hop the same way (a CRM link cannot lead the download elsewhere and have that
    sent to the signers as the contract), sends the tenant's credentials to CV CRM only, and stops a
    file past the size limit while it streams. Each refusal is a :class:`DataError`: the contract is
    dead-lettered and the run goes on.
    """
    record_key = f"contract {record.get('idreservacontrato')}"
    link = str(record.get("link") or "").strip()
    if not link:
        raise DataError(
            "the contract has no PDF in the CRM (no link)",
            record=record_key,
            field="link",
            hint="generate the contract in CV CRM, or dispatch it with a template",
        )
    try:  # its own query (a download token) is kept as written
        return cvcrm.fetch_url(link, what="contract PDF", credentials=True)
    except ForeignHostError as exc:
        exc.hint = (
            "the contract's link in CV CRM points outside CV CRM; generate the contract again in CV CRM "
            "(or dispatch it with a template), then `ponte deadletter replay`"
        )
        raise exc.context(record=record_key, field="link") from None
    except PonteError as exc:
        raise exc.context(record=record_key, field="link") from None


def templates_needed(contract: Contract, template: str | None, terms: Terms) -> list[str]:
    """The templates this contract's document is rendered from (none: the CRM's own PDF)."""
    names = [] if terms == "alone" else [n for n in [template or contract.template] if n]
    return [*names, TERMS_TEMPLATE] if terms != "none" else names


def needs_sienge(names: list[str]) -> bool:
    """Whether any of these templates declares a Sienge source (then dispatch reads Sienge)."""
    return any(source.startswith("sienge.") for name in names for source in render.template_info(name).sources)


def _merge(parts: list[bytes]) -> bytes:
    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def contract_document(
    record: dict[str, Any],
    contract: Contract,
    tenant: TenantConfig,
    cvcrm: Connector | None,
    *,
    context: dict[str, Any],
    template: str | None = None,
    terms: Terms = "none",
) -> Document:
    """The PDF to send. ``template`` forces Ponte's rendering; ``terms`` adds or sends the terms alone.

    ``context`` is what templates read (``pipelines/dispatch/variables.py``: every variable with its
    source); a template asking for anything missing fails naming the variable and the contract.
    """
    record_key = f"contract {contract.source_id}"
    name = template or contract.template
    if terms == "alone":
        rendered = render.render_template(
            TERMS_TEMPLATE, context, title=f"Termo de ciência - {contract.title}", record=record_key
        )
        content, source = rendered.content, "template"
        doc_name = rendered.name
    else:
        if name:
            content = render.render_template(name, context, title=contract.title, record=record_key).content
            source = "template"
        else:
            if cvcrm is None:
                raise DataError(
                    "the CRM's PDF is needed but no CV CRM connector was given", record=record_key
                )
            content, source = download_crm_pdf(cvcrm, record), "crm_pdf"
        doc_name = f"{contract.title}.pdf"
        if terms == "with_contract":
            extra = render.render_template(TERMS_TEMPLATE, context, title="Termo de ciência", record=record_key)
            content = _merge([content, extra.content])
    pages, size = _measure(content, record_key)
    return Document(name=doc_name, content=content, pages=pages, page_size=size, source=source)

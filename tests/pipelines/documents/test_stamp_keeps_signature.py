"""The QR stamp keeps the provider's seal: it is appended as an incremental update.

The test signs a generated contract with pyHanko (a self-signed test certificate made here with
``cryptography``, nothing shipped), stamps it with Ponte's ``stamp`` and validates the signature again
with pyHanko, an implementation that shares no code with the stamp (pypdf). The QR code is decoded
from PDFium's rendering by zxing-cpp, as in ``tests/pipelines/documents/test_documents.py``.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import PdfSignatureStatus, SignatureCoverageLevel, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from connectors.sandbox import start_sandbox
from pipelines.backsync.flow import sync_contract
from pipelines.documents.render import text_to_pdf
from pipelines.documents.stamp import stamp
from pipelines.store import Store
from pipelines.store.models import Envelope
from tests.pipelines.backsync.conftest import make_hub
from tests.pipelines.backsync.helpers import send_envelope

URL = "https://ponte.example.com/verify/7QK2M9"
CODE = "7QK2M9"


@pytest.fixture(scope="module")
def seal() -> tuple[signers.SimpleSigner, ValidationContext]:
    """A provider's sealing key: self-signed, made for this test only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Provedor de Assinatura (teste)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Selo de teste"),
    ])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert = next(load_certs_from_pemder_data(certificate.public_bytes(serialization.Encoding.DER)))
    private = load_private_key_from_pemder_data(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        passphrase=None,
    )
    signer = signers.SimpleSigner(cert, private, SimpleCertificateStore.from_certs([cert]))
    return signer, ValidationContext(trust_roots=[cert])


def _contract(pages: int, *, xref_stream: bool = False) -> bytes:
    content, count = text_to_pdf(
        "Contrato", "\n".join(f"Cláusula {i}: texto longo do contrato." for i in range(pages * 45))
    )
    assert count >= pages
    if xref_stream:  # the same document with a cross-reference stream instead of a classic table
        out = io.BytesIO()
        copy_into_new_writer(PdfFileReader(io.BytesIO(content)), {"stream_xrefs": True}).write(out)
        content = out.getvalue()
        assert b"/XRef" in content and b"\nxref\n" not in content
    return content


def _signed(pdf: bytes, signer: signers.SimpleSigner) -> bytes:
    """Seal the PDF the way a provider does: a visible signature on page 1, below the text."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = signers.sign_pdf(
        writer,
        signers.PdfSignatureMetadata(field_name="Selo"),
        signer=signer,
        new_field_spec=fields.SigFieldSpec("Selo", on_page=0, box=(40, 20, 240, 60)),
    )
    return out.getvalue()


def _status(pdf: bytes, context: ValidationContext, *, skip_diff: bool = False) -> PdfSignatureStatus:
    """pyHanko's verdict on the file's one signature (a fresh reader: pyHanko caches the integrity check)."""
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return validate_pdf_signature(signature, context, skip_diff=skip_diff)


def _qr_urls(pdf: bytes) -> list[list[str]]:
    doc = pdfium.PdfDocument(pdf)
    return [[b.text for b in zxingcpp.read_barcodes(doc[i].render(scale=2).to_pil())] for i in range(len(doc))]


def _text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


@pytest.mark.parametrize("xref_stream", [False, True], ids=["xref-table", "xref-stream"])
def test_the_stamped_file_begins_with_the_providers_bytes_unchanged(seal, xref_stream: bool) -> None:
    signed = _signed(_contract(3, xref_stream=xref_stream), seal[0])
    stamped = stamp(signed, URL, CODE, pages="all")
    assert len(stamped) > len(signed)
    assert stamped[: len(signed)] == signed
    # the appended part is one revision: its xref points back at the provider's last one
    assert PdfFileReader(io.BytesIO(stamped)).xrefs.total_revisions == (
        PdfFileReader(io.BytesIO(signed)).xrefs.total_revisions + 1
    )


@pytest.mark.parametrize("xref_stream", [False, True], ids=["xref-table", "xref-stream"])
def test_the_providers_signature_validates_after_stamping(seal, xref_stream: bool) -> None:
    signer, context = seal
    signed = _signed(_contract(3, xref_stream=xref_stream), signer)
    before = _status(signed, context)
    assert before.bottom_line and before.coverage == SignatureCoverageLevel.ENTIRE_FILE

    stamped = stamp(signed, URL, CODE, pages=[1, 3])
    after = _status(stamped, context)
    # the signed revision is intact: its digest matches, the signature and the chain are valid
    assert after.intact and after.valid and after.trusted
    # it is a whole earlier revision, and the stamp is the one revision after it
    assert after.coverage == SignatureCoverageLevel.ENTIRE_REVISION
    reader = PdfFileReader(io.BytesIO(stamped))
    signed_revision = reader.embedded_signatures[0].signed_revision
    assert reader.xrefs.total_revisions == signed_revision + 2
    # pyHanko's default diff policy explains form filling, signatures and DSS/timestamp updates only; new
    # page content (and any non-form annotation) is OTHER, so its verdict on the file as a whole is that
    # the later revision holds changes it cannot approve. It judges the appended revision, not the seal.
    assert after.modification_level == ModificationLevel.OTHER
    assert after.docmdp_ok is False and after.bottom_line is False
    # without the diff analysis, every check of the signed revision itself passes
    assert _status(stamped, context, skip_diff=True).bottom_line
    # and the provider's file, recovered from the stamped one, validates as untouched
    recovered = _status(stamped[: len(signed)], context)
    assert recovered.bottom_line and recovered.coverage == SignatureCoverageLevel.ENTIRE_FILE

    # what the stamp revision replaced: only the stamped pages and the document information dictionary;
    # nothing freed; each stamped page keeps every content stream and annotation (the signature widget)
    old = reader.get_historical_resolver(signed_revision)
    new = reader.get_historical_resolver(signed_revision + 1)
    pages = _page_refs(old)
    info = reader.trailer.raw_get("/Info", revision=signed_revision)
    replaced = {
        ref.idnum
        for ref in new.explicit_refs_in_revision()
        if reader.xrefs.get_historical_ref(ref, signed_revision) is not None
    }
    assert replaced == {pages[0].idnum, pages[2].idnum, info.idnum}
    assert not new.refs_freed_in_revision()
    widget = _refs(old(pages[0].reference).raw_get("/Annots"))
    assert len(widget) == 1 and widget <= _refs(new(pages[0].reference).raw_get("/Annots"))
    for ref in (pages[0], pages[2]):
        page_before, page_after = old(ref.reference), new(ref.reference)
        drawn = _refs(page_after.raw_get("/Contents"))
        assert _refs(page_before.raw_get("/Contents")) < drawn  # the signed content streams, unchanged
        assert page_after.raw_get("/Parent") == page_before.raw_get("/Parent")
        for name, value in page_before["/Resources"].items():  # every resource the page had, as it was
            assert page_after["/Resources"][name] == value or name == "/XObject"

    # and the stamp renders as before: QR on the chosen pages, the notice in the text layer
    assert _qr_urls(stamped) == [[URL], [], [URL]]
    assert f"Código de verificação: {CODE}" in _text(stamped)


def test_an_unsigned_pdf_is_stamped_the_same_way() -> None:
    original = _contract(2).rstrip(b"\r\n")  # a file whose %%EOF ends without an end-of-line, too
    stamped = stamp(original, URL, CODE, pages="all")
    assert stamped[: len(original)] == original and stamped[len(original) : len(original) + 1] == b"\n"
    assert PdfFileReader(io.BytesIO(stamped)).xrefs.total_revisions == 2
    assert _qr_urls(stamped) == [[URL], [URL]]
    assert f"Verifique em {URL}" in _text(stamped)
    latest = PdfFileReader(io.BytesIO(stamped))
    for ref in _page_refs(latest.get_historical_resolver(1)):  # the link stays clickable on every page
        links = [a.get_object() for a in ref.get_object()["/Annots"]]
        assert [(a["/Subtype"], a["/A"]["/URI"]) for a in links] == [("/Link", URL)]


def test_completion_records_both_hashes_of_one_signed_document(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-sync keeps the provider's hash next to the stamped file's: the provider's file is its prefix."""
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    with start_sandbox(customers=10, seed=5, rate_limits=False) as sb:
        hub = make_hub(sb, store, "https://ponte.example.com")
        env = send_envelope(sb, store, hub.tenant, provider="docusign", signers=2)
        sb.sign(env.provider_envelope_id, "client")
        sb.sign(env.provider_envelope_id, "spouse")
        assert not sync_contract(store, hub.tenant, env.contract_id, hub.opener).pending
        docusign = hub.opener("docusign")
        provider_pdf = docusign.download("download_combined", envelope_id=env.provider_envelope_id)
    with store.session() as session:
        done = session.get(Envelope, env.id)
        assert done is not None
        final, signed_sha256, path = done.details["final"], done.signed_sha256, str(done.signed_path)
    stored = Path(path).read_bytes()
    assert final["signed_sha256"] == signed_sha256 == hashlib.sha256(stored).hexdigest()
    assert stored[: final["provider_bytes"]] == provider_pdf
    assert final["provider_sha256"] == hashlib.sha256(provider_pdf).hexdigest() != signed_sha256


def _page_refs(resolver: HistoricalResolver) -> list[generic.IndirectObject]:
    """The page objects of a revision, in order."""
    refs: list[generic.IndirectObject] = []

    def walk(ref: generic.IndirectObject) -> None:
        node = resolver(ref.reference)
        if node.get("/Type") == "/Pages":
            for kid in node.raw_get("/Kids"):
                walk(kid)
        else:
            refs.append(ref)

    walk(resolver.root.raw_get("/Pages"))
    return refs


def _refs(value: object) -> set[int]:
    """Object numbers in an array of references, or of one reference."""
    if isinstance(value, generic.IndirectObject):
        target = value.get_object()
        return _refs(target) if isinstance(target, generic.ArrayObject) else {value.idnum}
    return {item.idnum for item in value}

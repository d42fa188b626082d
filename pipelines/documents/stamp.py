"""Stamping a signed PDF with a QR code and a verification link, so the paper proves itself.

pypdf 7 merges only onto pages attached to a writer, so the signed file is opened with
``PdfWriter(clone_from=...)`` and each chosen page gets an overlay (drawn with fpdf2 at the page's own
size) with the QR image, the link and the verification code.
"""

from __future__ import annotations

import io

import qrcode
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from pipelines.documents.placement import PageChoice, chosen_pages
from ponte.errors import DataError

#: the QR sits in the top-right margin: the bottom band belongs to the signature blocks
QR_SIZE = 46.0


def qr_png(url: str) -> bytes:
    image = qrcode.make(url, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _overlay(width: float, height: float, png: bytes, url: str, code: str) -> PdfReader:
    pdf = FPDF(unit="pt", format=(width, height))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    x, y = width - QR_SIZE - 12.0, 6.0
    pdf.image(io.BytesIO(png), x=x, y=y, w=QR_SIZE, h=QR_SIZE)
    pdf.set_font("Helvetica", "", 6.5)
    text_width = x - 4 - 12.0
    notice = f"Documento assinado eletronicamente. Código de verificação: {code}"
    pdf.set_xy(12.0, y + 12)
    pdf.cell(text_width, 8, notice.encode("latin-1", "replace").decode("latin-1"), align="R")
    pdf.set_xy(12.0, y + 21)
    pdf.cell(text_width, 8, f"Verifique em {url}", link=url, align="R")
    return PdfReader(io.BytesIO(bytes(pdf.output())))


def stamp(signed_pdf: bytes, url: str, code: str, pages: PageChoice = "all") -> bytes:
    """Return the signed PDF with a QR code + link on the chosen pages."""
    try:
        writer = PdfWriter(clone_from=io.BytesIO(signed_pdf))
    except Exception as exc:  # pypdf raises several types for a broken file
        raise DataError(f"the signed document is not a readable PDF ({type(exc).__name__})") from exc
    png = qr_png(url)
    overlays: dict[tuple[float, float], PdfReader] = {}
    for number in chosen_pages(pages, len(writer.pages)):
        page = writer.pages[number - 1]
        size = (float(page.mediabox.width), float(page.mediabox.height))
        if size not in overlays:
            overlays[size] = _overlay(*size, png, url, code)
        page.merge_page(overlays[size].pages[0])
    writer.add_metadata({"/PonteVerification": code, "/PonteVerificationURL": url})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()

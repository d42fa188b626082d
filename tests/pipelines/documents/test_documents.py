"""Contract PDFs, signature placement and QR stamping, checked with independent tools.

pypdfium2 (PDFium, the engine in Chromium) extracts text and renders pages; zxing-cpp decodes the QR
code from the rendered image. Neither shares code with what produced the PDF.
"""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st

from pipelines.documents.placement import A4, SIGNATURE_BAND, chosen_pages, place
from pipelines.documents.render import text_to_pdf
from pipelines.documents.stamp import stamp
from ponte.errors import ConfigurationError, DataError


def _text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))


@given(st.integers(min_value=1, max_value=8), st.integers(min_value=1, max_value=12))
def test_positions_are_inside_the_band_right_to_left_and_never_overlap(signers: int, pages: int) -> None:
    roles = [f"r{i}" for i in range(signers)]
    positions = place(roles, pages, "all")
    assert len(positions) == signers * pages
    width, height = A4
    for p in positions:
        assert p.x >= 0 and p.x + p.width <= width and p.y + p.height <= height
        assert p.y >= height - SIGNATURE_BAND  # inside the band templates keep free of text
    first_page = [p for p in positions if p.page == 1]
    bottom_row = [p for p in first_page if p.y == first_page[0].y]
    assert [p.x for p in bottom_row] == sorted((p.x for p in bottom_row), reverse=True)  # right to left
    for a in first_page:
        for b in first_page:
            if a is not b:
                assert (
                    a.x + a.width <= b.x
                    or b.x + b.width <= a.x
                    or a.y + a.height <= b.y
                    or b.y + b.height <= a.y
                )


def test_a_chain_too_long_for_the_band_is_refused_naming_the_limit() -> None:
    with pytest.raises(ConfigurationError, match=r"9 signers do not fit at the bottom of a page \(at most 8\)"):
        place([f"r{i}" for i in range(9)], 1)


def test_page_choices() -> None:
    assert chosen_pages("first", 5) == [1]
    assert chosen_pages("last", 5) == [5]
    assert chosen_pages([3, 1, 3], 5) == [1, 3]
    with pytest.raises(ConfigurationError, match=r"outside the document \(it has 2 pages\)"):
        chosen_pages([4], 2)


def _multi_page_pdf(pages: int) -> bytes:
    content, count = text_to_pdf(
        "Contrato", "\n".join(f"Cláusula {i}: texto longo do contrato." for i in range(pages * 45))
    )
    assert count >= pages
    return content


def test_stamped_pages_carry_a_qr_code_that_decodes_to_the_verification_url() -> None:
    url = "https://ponte.example.com/verify/7QK2M9"
    original = _multi_page_pdf(3)
    stamped = stamp(original, url, "7QK2M9", pages="all")
    doc = pdfium.PdfDocument(stamped)
    assert len(doc) == len(pdfium.PdfDocument(original))
    for index in range(len(doc)):
        image = doc[index].render(scale=2).to_pil()
        decoded = [barcode.text for barcode in zxingcpp.read_barcodes(image)]
        assert decoded == [url], f"page {index + 1}"
    assert "Código de verificação: 7QK2M9" in _text(stamped)


def test_only_the_chosen_pages_are_stamped() -> None:
    stamped = stamp(_multi_page_pdf(3), "https://x.example/verify/A1", "A1", pages="last")
    doc = pdfium.PdfDocument(stamped)
    found = [bool(zxingcpp.read_barcodes(doc[i].render(scale=2).to_pil())) for i in range(len(doc))]
    assert found[-1] and not any(found[:-1])


def test_a_broken_pdf_is_a_data_error() -> None:
    with pytest.raises(DataError, match="not a readable PDF"):
        stamp(b"%PDF-1.7 this is not really a pdf", "https://x/verify/A", "A")

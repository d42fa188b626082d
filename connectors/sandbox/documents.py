"""Brazilian identity documents and PDFs for the sandbox.

CPFs and CNPJs are generated with valid check digits (python-stdnum computes them), including the
alphanumeric CNPJ in force since July 2026, so a connector's document validation is exercised for
real. PDFs are real files (fpdf2 + pypdf): a connector that stores a "signed PDF" must get one.
"""

from __future__ import annotations

import io
import random
import string
from collections.abc import Iterable

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter
from stdnum.br import cnpj as _cnpj

_ALNUM = string.digits + string.ascii_uppercase


def cpf_check_digits(base: str) -> str:
    """The two check digits of a 9-digit CPF base (mod-11, as the Receita Federal defines)."""
    first = sum((10 - i) * int(d) for i, d in enumerate(base)) * 10 % 11 % 10
    second = sum((11 - i) * int(d) for i, d in enumerate(base + str(first))) * 10 % 11 % 10
    return f"{first}{second}"


def make_cpf(rng: random.Random) -> str:
    """An 11-digit valid CPF (never all digits equal, which is invalid)."""
    while True:
        base = f"{rng.randrange(10**9):09d}"
        if len(set(base)) > 1:
            return base + cpf_check_digits(base)


def make_cnpj(rng: random.Random, alphanumeric: bool = False) -> str:
    """A 14-character valid CNPJ; alphanumeric ones have letters in the first 12 positions."""
    while True:
        if alphanumeric:
            root = "".join(rng.choice(_ALNUM) for _ in range(8))
            if root.isdigit():
                continue
        else:
            root = "".join(rng.choice(string.digits) for _ in range(8))
        base = root + "0001"
        number = base + _cnpj.calc_check_digits(base)
        if _cnpj.is_valid(number):
            return number


def format_cpf(digits: str) -> str:
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


def format_cnpj(chars: str) -> str:
    return f"{chars[:2]}.{chars[2:5]}.{chars[5:8]}/{chars[8:12]}-{chars[12:]}"


def normalize_document(value: str) -> str:
    """Strip punctuation and upper-case: the form every index in the sandbox is keyed by."""
    return "".join(ch for ch in value if ch.isalnum()).upper()


def _latin(text: str) -> str:
    # The core PDF fonts are Latin-1; Portuguese fits, anything else is replaced, never crashes.
    return text.encode("latin-1", "replace").decode("latin-1")


def text_pdf(title: str, lines: Iterable[str]) -> bytes:
    """A one-or-more page PDF with a title and lines of text."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, _latin(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=10)
    for line in lines:
        pdf.multi_cell(0, 6, _latin(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def is_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-")


def combine_pdfs(parts: Iterable[bytes]) -> bytes:
    """Concatenate PDFs (documents then certificate), as DocuSign's ``combined`` download does."""
    writer = PdfWriter()
    for part in parts:
        reader = PdfReader(io.BytesIO(part))
        for page in reader.pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def page_count(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)

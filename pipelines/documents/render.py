"""Rendering a contract template with variables into a real PDF.

Templates are plain text with ``${variable}`` placeholders (``string.Template``): readable in review,
nothing executable in them, and a missing variable is an error naming it instead of a blank in a
contract someone signs. Lines starting with ``# `` are headings. Rendering uses fpdf2 with a core font,
so the PDF opens in any reader.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from ponte import settings
from ponte.errors import ConfigurationError, DataError

#: bottom band of each page kept free for signature blocks (points)
SIGNATURE_BAND = 150


def templates_dir() -> Path:
    return settings.project_root() / "mappings" / "templates"


def load_template(name: str) -> str:
    path = templates_dir() / f"{name}.txt"
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in templates_dir().glob("*.txt"))) or "none"
        raise ConfigurationError(f"no contract template {name!r}", hint=f"templates available: {available}")
    return path.read_text(encoding="utf-8")


class ContractTemplate(string.Template):
    """Only ``${name}`` is a placeholder, so "R$ 100" needs no escaping in a Brazilian contract."""

    pattern = r"""
    \$(?:
      (?P<escaped>\$\$) |
      \{(?P<braced>[_a-zA-Z][_a-zA-Z0-9]*)\} |
      (?P<named>(?!)) |
      (?P<invalid>(?!))
    )
    """


def template_variables(text: str) -> set[str]:
    return {
        match.group("braced") for match in ContractTemplate.pattern.finditer(text) if match.group("braced")
    }


def fill(
    text: str, variables: dict[str, str], *, template: str = "template", record: str | None = None
) -> str:
    missing = sorted(template_variables(text) - variables.keys())
    if missing:
        raise DataError(
            f"contract template {template!r} needs {', '.join(missing)}, which the contract does not provide",
            record=record,
            field=missing[0],
            hint="fill those fields on the contract in the CRM (or remove them from the template)",
        )
    return ContractTemplate(text).substitute(variables)


@dataclass(frozen=True)
class RenderedDocument:
    name: str
    content: bytes
    pages: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _latin1(text: str) -> str:
    """Core PDF fonts are Latin-1: Portuguese fits; anything else becomes '?' rather than failing."""
    return text.encode("latin-1", "replace").decode("latin-1")


def text_to_pdf(title: str, body: str) -> tuple[bytes, int]:
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_auto_page_break(auto=True, margin=SIGNATURE_BAND)
    pdf.set_margins(56, 56, 56)
    pdf.set_title(_latin1(title))
    pdf.set_creator("Ponte")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 18, _latin1(title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    for line in body.splitlines():
        if line.startswith("# "):
            pdf.ln(4)
            pdf.set_font("Helvetica", "B", 11)
            pdf.multi_cell(0, 14, _latin1(line[2:]), new_x="LMARGIN", new_y="NEXT")
        elif not line.strip():
            pdf.ln(6)
        else:
            pdf.set_font("Helvetica", "", 10)
            pdf.multi_cell(0, 13, _latin1(line), align="J", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output()), pdf.page_no()


def render_contract(
    template: str, variables: dict[str, str], *, title: str, record: str | None = None
) -> RenderedDocument:
    """Fill ``template`` (a name under mappings/templates) and lay it out as a PDF."""
    body = fill(load_template(template), variables, template=template, record=record)
    content, pages = text_to_pdf(title, body)
    return RenderedDocument(name=f"{title}.pdf", content=content, pages=pages)

"""Where signatures go: blocks along the bottom of the chosen pages, laid out right to left.

The first signer in routing order takes the right-most block (the custom in Brazilian contracts the
CRM follows); further signers go leftwards and wrap to a row above when a row is full. Coordinates are
PDF points from the top-left corner, the convention DocuSign's tabs use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ponte.errors import ConfigurationError
from schemas.canonical.signing import SignaturePosition

A4 = (595.28, 841.89)
BLOCK_W, BLOCK_H = 160.0, 48.0
MARGIN, GAP = 36.0, 12.0

PageChoice = Literal["all", "first", "last"] | list[int]


def chosen_pages(choice: PageChoice, page_count: int) -> list[int]:
    if page_count < 1:
        raise ConfigurationError("the document has no pages")
    if choice == "all":
        return list(range(1, page_count + 1))
    if choice == "first":
        return [1]
    if choice == "last":
        return [page_count]
    pages = sorted(set(choice))
    outside = [p for p in pages if p < 1 or p > page_count]
    if outside:
        raise ConfigurationError(
            f"signature pages {outside} are outside the document (it has {page_count} pages)",
            field="signature_pages",
            hint="choose all, first, last or page numbers within the document",
        )
    return pages


def place(
    roles: Sequence[str],
    page_count: int,
    choice: PageChoice = "last",
    page_size: tuple[float, float] = A4,
) -> list[SignaturePosition]:
    """One position per role per chosen page; ``roles`` in routing order."""
    width, height = page_size
    per_row = max(1, int((width - 2 * MARGIN + GAP) // (BLOCK_W + GAP)))
    positions = []
    for page in chosen_pages(choice, page_count):
        for index, role in enumerate(roles):
            row, col = divmod(index, per_row)
            x = width - MARGIN - BLOCK_W - col * (BLOCK_W + GAP)
            y = height - MARGIN - BLOCK_H - row * (BLOCK_H + GAP)
            if y < MARGIN:
                raise ConfigurationError(f"{len(roles)} signers do not fit at the bottom of a page")
            positions.append(SignaturePosition(role=role, page=page, x=x, y=y, width=BLOCK_W, height=BLOCK_H))
    return positions

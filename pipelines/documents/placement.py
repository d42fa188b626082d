"""Where signatures go: blocks along the bottom of the chosen pages, laid out right to left.

The first signer in routing order takes the right-most block (the custom in Brazilian contracts the
CRM follows); further signers go leftwards and wrap to a row above when a row is full. Coordinates are
PDF points from the top-left corner, the convention DocuSign's tabs use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ponte import ConfigurationError
from schemas.canonical import SignaturePosition

A4 = (595.28, 841.89)
BLOCK_W, BLOCK_H = 160.0, 48.0
MARGIN, GAP = 36.0, 12.0
#: the bottom band of every page kept free of text (Ponte's templates reserve it: render.py); blocks
#: stay inside it, so they never cover a word
SIGNATURE_BAND = 150.0
#: narrowest block a signature still fits in: more signers per row than this allows do not fit
MIN_BLOCK_W = 96.0
ROWS = int((SIGNATURE_BAND - MARGIN + GAP) // (BLOCK_H + GAP))

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
    """One position per role per chosen page; ``roles`` in routing order.

    Up to three blocks a row and two rows fill the band; a longer chain (co-buyers, spouses, the
    company's signers) narrows the blocks so every one still sits inside the band, until a block would
    be narrower than :data:`MIN_BLOCK_W`: then the chain does not fit, and the error says so.
    """
    width, height = page_size
    usable = width - 2 * MARGIN
    per_row = max(1, int((usable + GAP) // (BLOCK_W + GAP)))
    block_w = BLOCK_W
    if len(roles) > per_row * ROWS:
        per_row = -(-len(roles) // ROWS)
        block_w = (usable - (per_row - 1) * GAP) / per_row
        if block_w < MIN_BLOCK_W:
            most = ROWS * int((usable + GAP) // (MIN_BLOCK_W + GAP))
            raise ConfigurationError(
                f"{len(roles)} signers do not fit at the bottom of a page (at most {most})",
                field="signer_chain",
                hint="put fewer roles in the tenant's signer_chain, or split the contract",
            )
    positions = []
    for page in chosen_pages(choice, page_count):
        for index, role in enumerate(roles):
            row, col = divmod(index, per_row)
            x = width - MARGIN - block_w - col * (block_w + GAP)
            y = height - MARGIN - BLOCK_H - row * (BLOCK_H + GAP)
            positions.append(SignaturePosition(role=role, page=page, x=x, y=y, width=block_w, height=BLOCK_H))
    return positions

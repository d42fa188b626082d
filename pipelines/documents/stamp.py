"""Stamping a signed PDF with a QR code and a verification link, so the paper proves itself.

The provider's file is digitally sealed (DocuSign signs its combined PDF), so the stamp never rewrites it:
it is appended as an **incremental update** (ISO 32000-1 §7.5.6). The stamped file is the provider's
bytes, unchanged, followed by one revision that holds only new objects and new versions of the stamped
pages and of the document information dictionary. A validator checks the seal against the provider's
revision, which is still there byte for byte; ``stamped[:len(provider_pdf)]`` *is* the provider's file.

Each chosen page keeps every content stream, resource and annotation it had (signature widgets
included); the revision wraps its content in ``q``/``Q`` and appends one stream that paints a form
XObject: the overlay drawn with fpdf2 at the page's own size (QR image, notice, link), imported with new
object numbers. The link annotation is added to the page's ``/Annots`` after the existing ones.

pypdf parses; the revision is written here, not by ``PdfWriter(incremental=True)``: pypdf 7's incremental
writer also rewrites every page whose attributes it pushed down from the page tree (untouched pages
too), always ends with a cross-reference stream (even after a classic table in a PDF 1.3 file) and
glues the first object onto an ``%%EOF`` that has no end-of-line.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import qrcode
from fpdf import FPDF
from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
    create_string_object,
)

from pipelines.documents.placement import PageChoice, chosen_pages
from ponte import DataError

#: the QR sits in the top-right margin: the bottom band belongs to the signature blocks
QR_SIZE = 46.0

_INHERITED = ("/Resources", "/MediaBox")
_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_OBJECT = re.compile(rb"\d+\s+\d+\s+obj")


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
    """Return the signed PDF with a QR code + link on the chosen pages, appended as a new revision."""
    update = _Update(signed_pdf)
    page_list = update.pages()
    png = qr_png(url)
    forms: dict[tuple[float, float], tuple[IndirectObject, list[DictionaryObject]]] = {}
    for number in chosen_pages(pages, len(page_list)):
        ref, page, inherited = page_list[number - 1]
        mediabox = _resolve(_raw(page, "/MediaBox") or inherited.get("/MediaBox"))
        if not isinstance(mediabox, ArrayObject) or len(mediabox) != 4:
            raise DataError(f"page {number} of the signed document has no valid /MediaBox")
        box = [float(_resolve(v)) for v in mediabox]
        size = (abs(box[2] - box[0]), abs(box[3] - box[1]))
        if size not in forms:
            overlay = _overlay(*size, png, url, code).pages[0]
            links = [annotation.get_object() for annotation in overlay.get("/Annots", [])]
            forms[size] = (update.form_of(overlay, size), links)
        form, links = forms[size]
        update.paint(ref, page, inherited.get("/Resources"), form, links)
    update.set_info({"/PonteVerification": code, "/PonteVerificationURL": url})
    return update.write(salt=f"{url}\n{code}".encode())


def _resolve(value: Any) -> Any:
    return value.get_object() if isinstance(value, IndirectObject) else value


def _raw(dictionary: DictionaryObject, key: str) -> Any:
    """The entry as stored (an indirect reference stays one), or None."""
    return dictionary.raw_get(key) if key in dictionary else None


def _items(value: Any) -> list[Any]:
    """The raw items of an array (direct or indirect), a single reference, or nothing."""
    resolved = _resolve(value)
    if resolved is None:
        return []
    if isinstance(resolved, ArrayObject):
        return list(resolved)
    return [value]


class _Update:
    """One incremental update over a PDF: new and replaced objects, appended with their own xref."""

    def __init__(self, original: bytes) -> None:
        try:
            self.reader = PdfReader(io.BytesIO(original))
            self.trailer = self.reader.trailer
            self.root = self.trailer["/Root"]
            found = _STARTXREF.findall(original[-2048:]) or _STARTXREF.findall(original)
            self.prev = int(found[-1])
        except Exception as exc:  # pypdf raises several types for a broken file
            raise DataError(f"the signed document is not a readable PDF ({type(exc).__name__})") from exc
        if self.reader.is_encrypted:
            raise DataError("the signed document is encrypted: it cannot be stamped without rewriting it")
        self.original = original
        # the update's xref follows the provider's last one, in the same form (a table or a stream)
        at = original[self.prev : self.prev + 64].lstrip()
        self.classic_xref = at.startswith(b"xref")
        if not (self.classic_xref or _OBJECT.match(at)):
            raise DataError(
                "the signed document's cross-reference is damaged (startxref points at no xref): a stamp "
                "appended to it would not be found, and repairing it would rewrite the provider's file"
            )
        self.info: Any = _raw(self.trailer, "/Info")
        self.next_id = int(self.trailer["/Size"])
        self.objects: dict[int, tuple[int, PdfObject]] = {}
        self.save: IndirectObject | None = None  # the shared "q" stream that opens each stamped page

    # -- objects ------------------------------------------------------------------------------------------
    def add(self, obj: PdfObject) -> IndirectObject:
        ref = IndirectObject(self.next_id, 0, self.reader)
        self.next_id += 1
        self.objects[ref.idnum] = (0, obj)
        return ref

    def replace(self, ref: IndirectObject, obj: PdfObject) -> None:
        self.objects[ref.idnum] = (ref.generation, obj)

    def bring(
        self, value: Any, numbered: dict[int, IndirectObject], skip: frozenset[str] = frozenset()
    ) -> Any:
        """Copy a value from another PDF (the overlay) into this update, numbering its objects anew."""
        if isinstance(value, IndirectObject):
            if value.idnum not in numbered:
                numbered[value.idnum] = ref = self.add(NumberObject(0))  # placeholder: cycles end here
                self.replace(ref, self.bring(value.get_object(), numbered))
            return numbered[value.idnum]
        if isinstance(value, StreamObject):
            # the encoded bytes as they are (pypdf has no public accessor; its own clone copies _data): a
            # CCITT-encoded QR image cannot go through a decode and re-encode
            copied = {k: self.bring(value.raw_get(k), numbered) for k in value if k != "/Length"}
            return StreamObject.initialize_from_dictionary({**copied, "__streamdata__": value._data})
        if isinstance(value, DictionaryObject):
            return DictionaryObject(
                {NameObject(k): self.bring(value.raw_get(k), numbered) for k in value if k not in skip}
            )
        if isinstance(value, ArrayObject):
            return ArrayObject(self.bring(item, numbered) for item in value)
        return value

    # -- pages --------------------------------------------------------------------------------------------
    def pages(self) -> list[tuple[IndirectObject, DictionaryObject, dict[str, Any]]]:
        """The page objects in order, as stored (never flattened), with what they inherit."""
        found: list[tuple[IndirectObject, DictionaryObject, dict[str, Any]]] = []
        seen: set[int] = set()

        def walk(ref: Any, inherited: dict[str, Any]) -> None:
            node = _resolve(ref)
            if not (isinstance(ref, IndirectObject) and isinstance(node, DictionaryObject)):
                raise DataError("the signed document's page tree is broken")
            if ref.idnum in seen:
                raise DataError("the signed document's page tree has a loop or a page listed twice")
            seen.add(ref.idnum)
            if node.get("/Type") == "/Pages" or "/Kids" in node:
                passed = {**inherited, **{k: node.raw_get(k) for k in _INHERITED if k in node}}
                for kid in _resolve(node.raw_get("/Kids")):
                    walk(kid, passed)
            else:
                found.append((ref, node, inherited))

        walk(self.root.raw_get("/Pages"), {})
        return found

    def form_of(self, overlay: Any, size: tuple[float, float]) -> IndirectObject:
        """The overlay page as a form XObject of this document."""
        form = DecodedStreamObject()
        form.set_data(b"".join(_resolve(part).get_data() for part in _items(_raw(overlay, "/Contents"))))
        form.update(
            {
                NameObject("/Type"): NameObject("/XObject"),
                NameObject("/Subtype"): NameObject("/Form"),
                NameObject("/BBox"): ArrayObject([FloatObject(0), FloatObject(0), *map(FloatObject, size)]),
                NameObject("/Resources"): self.bring(overlay.raw_get("/Resources"), {}),
            }
        )
        return self.add(form.flate_encode())

    def paint(
        self,
        ref: IndirectObject,
        page: DictionaryObject,
        inherited_resources: Any,
        form: IndirectObject,
        links: list[DictionaryObject],
    ) -> None:
        """A new version of the page: its own content untouched, isolated, then the form painted on top."""
        new = DictionaryObject({NameObject(k): page.raw_get(k) for k in page})
        raw_resources = page.raw_get("/Resources") if "/Resources" in page else inherited_resources
        resources = _resolve(raw_resources) or DictionaryObject()
        new_resources = DictionaryObject({NameObject(k): resources.raw_get(k) for k in resources})
        xobjects = _resolve(_raw(resources, "/XObject")) or DictionaryObject()
        names = (f"/PonteStamp{i or ''}" for i in range(len(xobjects) + 1))
        name = next(n for n in names if n not in xobjects)
        new_resources[NameObject("/XObject")] = DictionaryObject(
            {**{NameObject(k): xobjects.raw_get(k) for k in xobjects}, NameObject(name): form}
        )
        new[NameObject("/Resources")] = new_resources
        contents = _items(_raw(page, "/Contents"))
        paint = self.add(_stream(b"%sq %s Do Q\n" % (b"\nQ\n" if contents else b"", name.encode())))
        if contents and self.save is None:
            self.save = self.add(_stream(b"q\n"))
        new[NameObject("/Contents")] = ArrayObject([self.save, *contents, paint] if contents else [paint])
        own_links = [self.add(self.bring(link, {}, frozenset({"/P"}))) for link in links]  # one per page
        new[NameObject("/Annots")] = ArrayObject([*_items(_raw(page, "/Annots")), *own_links])
        self.replace(ref, new)

    def set_info(self, entries: dict[str, str]) -> None:
        """A new version of the document information dictionary with these entries added."""
        current = _resolve(self.info) or DictionaryObject()
        info = DictionaryObject({NameObject(k): current.raw_get(k) for k in current})
        info.update({NameObject(k): create_string_object(v) for k, v in entries.items()})
        if isinstance(self.info, IndirectObject):
            self.replace(self.info, info)
        else:
            self.info = self.add(info)

    # -- output -------------------------------------------------------------------------------------------
    def write(self, salt: bytes) -> bytes:
        out = io.BytesIO()
        out.write(self.original)
        if not self.original.endswith((b"\n", b"\r")):
            out.write(b"\n")
        offsets: dict[int, tuple[int, int]] = {}
        for idnum in sorted(self.objects):
            generation, obj = self.objects[idnum]
            offsets[idnum] = (out.tell(), generation)
            out.write(b"%d %d obj\n" % (idnum, generation))
            obj.write_to_stream(out)
            out.write(b"\nendobj\n")
        trailer = DictionaryObject(
            {NameObject("/Root"): self.trailer.raw_get("/Root"), NameObject("/Prev"): NumberObject(self.prev)}
        )
        if self.info is not None:
            trailer[NameObject("/Info")] = self.info
        if "/ID" in self.trailer:  # the first identifier stays; the second changes with every update
            first = _resolve(self.trailer["/ID"])[0]
            later = hashlib.md5(self.original[-1024:] + salt, usedforsecurity=False).digest()
            trailer[NameObject("/ID")] = ArrayObject(
                [ByteStringObject(first.original_bytes), ByteStringObject(later)]
            )
        at = out.tell()
        if self.classic_xref:
            trailer[NameObject("/Size")] = NumberObject(self.next_id)
            out.write(b"xref\n")
            for start, run in _runs(sorted(offsets)):
                out.write(b"%d %d\n" % (start, len(run)))
                out.writelines(b"%010d %05d n\r\n" % offsets[idnum] for idnum in run)
            out.write(b"trailer\n")
            trailer.write_to_stream(out)
        else:  # the file uses cross-reference streams: the update does too
            xref_id = self.next_id
            offsets[xref_id] = (at, 0)
            width = max(4, (at.bit_length() + 7) // 8)
            rows = sorted(offsets)
            xref = DecodedStreamObject()
            xref.set_data(
                b"".join(b"\x01" + offsets[i][0].to_bytes(width) + offsets[i][1].to_bytes(2) for i in rows)
            )
            xref.update(trailer)
            xref.update(
                {
                    NameObject("/Type"): NameObject("/XRef"),
                    NameObject("/Size"): NumberObject(xref_id + 1),
                    NameObject("/W"): ArrayObject([NumberObject(1), NumberObject(width), NumberObject(2)]),
                    NameObject("/Index"): ArrayObject(
                        NumberObject(n) for start, run in _runs(rows) for n in (start, len(run))
                    ),
                }
            )
            out.write(b"%d 0 obj\n" % xref_id)
            xref.flate_encode().write_to_stream(out)
            out.write(b"\nendobj")
        out.write(b"\nstartxref\n%d\n%%%%EOF\n" % at)
        return out.getvalue()


def _stream(data: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(data)
    return stream


def _runs(ids: list[int]) -> list[tuple[int, list[int]]]:
    """Consecutive object numbers grouped as xref subsections: (first, [numbers])."""
    runs: list[tuple[int, list[int]]] = []
    for idnum in ids:
        if runs and runs[-1][1][-1] == idnum - 1:
            runs[-1][1].append(idnum)
        else:
            runs.append((idnum, [idnum]))
    return runs

"""Paginators: one small strategy per ``pagination.type``.

Each one sets the first page's parameters and, from a page's response, says how to ask for the next
one (new parameters, or a whole URL) or that there is none. The client reads one page at a time and
yields its records before asking for the next, so memory stays flat however many records there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from connectors.runtime.auth import dig
from connectors.spec import models as m


@dataclass
class NextPage:
    params: dict[str, Any] | None = None
    url: str | None = None


def _size(spec: Any, wanted: int | None) -> int | None:
    size = spec.page_size or spec.max_page_size
    if wanted is not None:
        size = min(size, wanted) if size else wanted
    if size and spec.max_page_size:
        size = min(size, spec.max_page_size)
    return size


class Paginator:
    def __init__(self, spec: Any, wanted: int | None = None) -> None:
        self.spec = spec
        self.size = _size(spec, wanted) if hasattr(spec, "page_size") else None

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def next(self, response: httpx.Response, data: Any, count: int, params: dict[str, Any]) -> NextPage | None:
        return None


class NoPaginator(Paginator):
    pass


class OffsetPaginator(Paginator):
    spec: m.OffsetPagination

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, self.spec.offset_param: params.get(self.spec.offset_param, self.spec.start)}
        if self.size:
            params[self.spec.limit_param] = self.size
        return params

    def next(self, response: httpx.Response, data: Any, count: int, params: dict[str, Any]) -> NextPage | None:
        offset = int(params.get(self.spec.offset_param, self.spec.start)) + count
        total = dig(data, self.spec.total_path) if self.spec.total_path else None
        if count == 0:
            return None
        if isinstance(total, int | float):
            if offset >= total:
                return None
        elif self.size and count < self.size:
            return None
        return NextPage(params={**params, self.spec.offset_param: offset})


class PageNumberPaginator(Paginator):
    spec: m.PageNumberPagination

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, self.spec.page_param: self.spec.start_page}
        if self.size and self.spec.size_param:
            params[self.spec.size_param] = self.size
        return params

    def next(self, response: httpx.Response, data: Any, count: int, params: dict[str, Any]) -> NextPage | None:
        page = int(params[self.spec.page_param])
        if count == 0:
            return None
        total_pages = dig(data, self.spec.total_pages_path) if self.spec.total_pages_path else None
        if isinstance(total_pages, int) and page - self.spec.start_page + 1 >= total_pages:
            return None
        if total_pages is None and self.size and count < self.size:
            return None
        return NextPage(params={**params, self.spec.page_param: page + 1})


class _SizeParam(Paginator):
    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        size_param = getattr(self.spec, "size_param", None)
        if self.size and size_param:
            return {**params, size_param: self.size}
        return params


class CursorPaginator(_SizeParam):
    spec: m.CursorPagination

    def next(self, response: httpx.Response, data: Any, count: int, params: dict[str, Any]) -> NextPage | None:
        cursor = dig(data, self.spec.cursor_path)
        if cursor in (None, "") or count == 0:
            return None
        return NextPage(params={**params, self.spec.cursor_param: cursor})


class NextUrlPaginator(_SizeParam):
    spec: m.NextUrlPagination

    def next(self, response: httpx.Response, data: Any, count: int, params: dict[str, Any]) -> NextPage | None:
        url = dig(data, self.spec.next_url_path)
        if not isinstance(url, str) or not url or count == 0:
            return None
        return NextPage(url=str(response.request.url.join(url)))


def parse_link_header(value: str) -> dict[str, str]:
    """``Link`` header to {rel: url}; tolerant of spacing and quoting.

    Scanned with ``str.find`` in one pass (a regular expression over a header of many ``<`` and no
    ``>`` took quadratic time): each ``<url>`` is followed by ``;``-separated parameters up to the next
    comma.
    """
    links: dict[str, str] = {}
    text = value or ""
    pos = 0
    while (start := text.find("<", pos)) >= 0:
        end = text.find(">", start + 1)
        if end < 0:
            break
        url = text[start + 1 : end]
        comma = text.find(",", end + 1)
        tail = text[end + 1 : comma if comma >= 0 else len(text)].lstrip()
        pos = end + 1
        if not tail.startswith(";"):
            continue
        for attr in tail.split(";")[1:]:
            key, _, val = attr.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in val.strip().strip('"').split():
                    links.setdefault(rel.lower(), url.strip())
    return links


class LinkHeaderPaginator(_SizeParam):
    spec: m.LinkHeaderPagination

    def next(self, response: httpx.Response, data: Any, count: int, params: dict[str, Any]) -> NextPage | None:
        url = parse_link_header(response.headers.get("link", "")).get(self.spec.rel.lower())
        if not url or count == 0:
            return None
        return NextPage(url=str(response.request.url.join(url)))


_BY_TYPE: dict[type, type[Paginator]] = {
    m.NoPagination: NoPaginator,
    m.OffsetPagination: OffsetPaginator,
    m.PageNumberPagination: PageNumberPaginator,
    m.CursorPagination: CursorPaginator,
    m.NextUrlPagination: NextUrlPaginator,
    m.LinkHeaderPagination: LinkHeaderPaginator,
}


def paginator_for(spec: Any, wanted: int | None = None) -> Paginator:
    return _BY_TYPE[type(spec)](spec, wanted)

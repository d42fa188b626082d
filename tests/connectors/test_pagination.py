"""Each paginator against a loopback API holding 450 records; reads are lazy, page by page."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.connectors.conftest import make_spec, open_on_loopback
from tests.connectors.loopback import Loopback, Received, Reply

RECORDS = [{"id": i} for i in range(1, 451)]


def offset_api(req: Received) -> Reply:
    limit, offset = int(req.query["limit"]), int(req.query["offset"])
    if limit > 200:
        return Reply(400, {"developerMessage": "limit max 200"})
    return Reply(200, {"resultSetMetadata": {"count": len(RECORDS), "offset": offset, "limit": limit},
                       "results": RECORDS[offset:offset + limit]})


def spec(pagination: dict) -> object:
    return make_spec({"streams": {"items": {"path": "/items", "records": "results", "pagination": pagination}}})


def test_offset_with_total_stops_at_the_total(server: Loopback) -> None:
    server.route("GET", "/items", offset_api)
    with open_on_loopback(spec({"type": "offset", "page_size": 200, "max_page_size": 200,
                              "total_path": "resultSetMetadata.count"}), server) as conn:
        assert [r["id"] for r in conn.read("items")] == list(range(1, 451))
    assert [h.query["offset"] for h in server.hits()] == ["0", "200", "400"]


def test_offset_without_total_stops_on_a_short_page(server: Loopback) -> None:
    server.route("GET", "/items", offset_api)
    with open_on_loopback(spec({"type": "offset", "page_size": 150}), server) as conn:
        assert len(list(conn.read("items"))) == 450
    assert len(server.hits()) == 4  # 150, 150, 150, then an empty page


def test_page_size_is_capped_by_the_api_maximum(server: Loopback) -> None:
    server.route("GET", "/items", offset_api)
    with open_on_loopback(spec({"type": "offset", "max_page_size": 200}), server) as conn:
        assert len(list(conn.read("items", limit=1000))) == 450
    assert {h.query["limit"] for h in server.hits()} == {"200"}


def test_a_limit_shrinks_the_page_size(server: Loopback) -> None:
    server.route("GET", "/items", offset_api)
    with open_on_loopback(spec({"type": "offset", "page_size": 200}), server) as conn:
        assert len(list(conn.read("items", limit=5))) == 5
    assert [h.query["limit"] for h in server.hits()] == ["5"]


def test_page_number(server: Loopback) -> None:
    def api(req: Received) -> Reply:
        page, size = int(req.query["page"]), int(req.query["per_page"])
        return Reply(200, {"results": RECORDS[(page - 1) * size: page * size]})

    server.route("GET", "/items", api)
    with open_on_loopback(spec({"type": "page_number", "size_param": "per_page", "page_size": 100}), server) as conn:
        assert len(list(conn.read("items"))) == 450
    assert [h.query["page"] for h in server.hits()] == ["1", "2", "3", "4", "5"]


def test_cursor(server: Loopback) -> None:
    def api(req: Received) -> Reply:
        start = int(req.query.get("after", 0))
        page = RECORDS[start:start + 200]
        nxt = str(start + 200) if start + 200 < len(RECORDS) else None
        return Reply(200, {"results": page, "paging": {"next": nxt}})

    server.route("GET", "/items", api)
    with open_on_loopback(spec({"type": "cursor", "cursor_path": "paging.next", "cursor_param": "after"}), server) as conn:
        assert len(list(conn.read("items"))) == 450
    assert len(server.hits()) == 3


def test_next_url_in_body(server: Loopback) -> None:
    def api(req: Received) -> Reply:
        n = int(req.query.get("page[number]", 1))
        nxt = f"/items?page[number]={n + 1}" if n < 3 else None
        return Reply(200, {"results": RECORDS[(n - 1) * 150: n * 150], "links": {"next": nxt}})

    server.route("GET", "/items", api)
    with open_on_loopback(spec({"type": "next_url"}), server) as conn:
        assert len(list(conn.read("items"))) == 450


def test_link_header(server: Loopback) -> None:
    def api(req: Received) -> Reply:
        n = int(req.query.get("page", 1))
        headers = {"Link": f'<{server.url}/items?page={n + 1}>; rel="next", <{server.url}/items?page=1>; rel="first"'} if n < 3 else {}
        return Reply(200, {"results": RECORDS[(n - 1) * 150: n * 150]}, headers)

    server.route("GET", "/items", api)
    with open_on_loopback(spec({"type": "link_header"}), server) as conn:
        assert len(list(conn.read("items"))) == 450
    assert len(server.hits()) == 3


def test_no_pagination_reads_one_page(server: Loopback) -> None:
    server.route("GET", "/items", Reply(200, {"results": RECORDS[:10]}))
    with open_on_loopback(spec("none"), server) as conn:  # string shorthand
        assert len(list(conn.read("items"))) == 10


def test_reads_are_streamed_page_by_page(server: Loopback) -> None:
    server.route("GET", "/items", offset_api)
    with open_on_loopback(spec({"type": "offset", "page_size": 100, "total_path": "resultSetMetadata.count"}), server) as conn:
        records = conn.read("items")
        assert server.hits() == []  # nothing is fetched before the first record is asked for
        first = next(records)
        assert first == {"id": 1} and len(server.hits()) == 1
        for _ in range(99):
            next(records)
        assert len(server.hits()) == 1
        next(records)
        assert len(server.hits()) == 2


def test_incremental_sends_the_cursor_minus_the_lookback(server: Loopback) -> None:
    server.route("GET", "/customers", Reply(200, {"results": []}))
    s = make_spec({"streams": {"customers": {
        "path": "/customers", "records": "results",
        "incremental": {"param": "modifiedAfter", "cursor_field": "modifiedAt", "format": "%Y-%m-%d",
                        "lookback_seconds": 86400}}}})
    with open_on_loopback(s, server) as conn:
        list(conn.read("customers", since=datetime(2026, 3, 1, 0, 30, tzinfo=UTC)))
    assert server.hits()[0].query["modifiedAfter"] == "2026-02-28"


def test_child_stream_is_read_once_per_parent_with_parent_fields(server: Loopback) -> None:
    server.route("GET", "/enterprises", Reply(200, {"results": [{"id": 1}, {"id": 2}]}))
    server.route("GET", "/units", lambda req: Reply(200, {"results": [
        {"id": int(req.query["enterpriseId"]) * 10 + i} for i in range(2)]}))
    s = make_spec({"streams": {
        "enterprises": {"path": "/enterprises", "records": "results"},
        "units": {"path": "/units", "records": "results", "params": {"enterpriseId": "{parent.id}"},
                  "parent": {"stream": "enterprises", "include": {"enterpriseId": "id"}}}}})
    with open_on_loopback(s, server) as conn:
        units = list(conn.read("units"))
    assert units == [{"id": 10, "enterpriseId": 1}, {"id": 11, "enterpriseId": 1},
                     {"id": 20, "enterpriseId": 2}, {"id": 21, "enterpriseId": 2}]


@pytest.mark.parametrize("header,expected", [
    ('<https://a/x?page=2>; rel="next"', {"next": "https://a/x?page=2"}),
    ('<https://a/1>; rel="prev first", <https://a/3>;rel=next', {"prev": "https://a/1", "first": "https://a/1", "next": "https://a/3"}),
    ("", {}),
])
def test_link_header_parser(header: str, expected: dict) -> None:
    from connectors.runtime.paginators import parse_link_header

    assert parse_link_header(header) == expected


def _single_page(body: bytes, content_type: str) -> Reply:
    return Reply(200, body, {"Content-Type": content_type})


@pytest.mark.parametrize(("encoding", "content_type"), [
    ("latin-1", "application/json; charset=iso-8859-1"),
    ("utf-16", "application/json"),  # told from the bytes
])
def test_a_page_in_another_encoding_is_read(server: Loopback, encoding: str, content_type: str) -> None:
    body = '{"results": [{"id": 1, "name": "João", "area": 52.5}]}'.encode(encoding)
    server.route("GET", "/items", lambda _req: _single_page(body, content_type))
    with open_on_loopback(spec({"type": "none"}), server) as conn:
        assert list(conn.read("items")) == [{"id": 1, "name": "João", "area": 52.5}]


def test_a_page_not_in_its_declared_charset_is_refused(server: Loopback) -> None:
    from connectors.runtime.errors import UnexpectedStatusError

    body = '{"results": [{"id": 1, "name": "João"}]}'.encode("latin-1")
    server.route("GET", "/items", lambda _req: _single_page(body, "application/json; charset=utf-8"))
    with open_on_loopback(spec({"type": "none"}), server) as conn, pytest.raises(UnexpectedStatusError,
                                                                                match="non-JSON"):
        list(conn.read("items"))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_page_with_a_number_json_has_no_place_for_is_refused(server: Loopback, number: str) -> None:
    """Records are standard JSON whatever the page's encoding, as the import's workers rely on."""
    from connectors.runtime.errors import UnexpectedStatusError

    body = f'{{"results": [{{"id": 1, "area": {number}, "name": "João"}}]}}'.encode("latin-1")
    server.route("GET", "/items", lambda _req: _single_page(body, "application/json; charset=iso-8859-1"))
    with open_on_loopback(spec({"type": "none"}), server) as conn, pytest.raises(UnexpectedStatusError,
                                                                                match="non-JSON"):
        list(conn.read("items"))


_LINK_REGEX = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def _link_header_by_regex(value: str) -> dict[str, str]:
    """The parser as it was (a regular expression), kept as the reference the scan must equal."""
    links: dict[str, str] = {}
    for url, attrs in _LINK_REGEX.findall(value):
        for attr in attrs.split(";"):
            key, _, val = attr.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in val.strip().strip('"').split():
                    links.setdefault(rel.lower(), url.strip())
    return links


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='<>;,= "relnxtab/:?', max_size=60))
def test_the_link_header_scan_equals_the_regex_it_replaced(header: str) -> None:
    from connectors.runtime.paginators import parse_link_header

    assert parse_link_header(header) == _link_header_by_regex(header)


def test_a_link_header_of_many_open_brackets_is_read_in_linear_time() -> None:
    """The regex took quadratic time on ``<`` without ``>`` (a hostile or broken server's header)."""
    from connectors.runtime.paginators import parse_link_header

    started = time.perf_counter()
    for header in ("<" * 200_000, "<a>; rel=" + ";" * 200_000, "<a>," * 50_000):
        parse_link_header(header)
    assert time.perf_counter() - started < 2.0  # the regex needed minutes for the first one

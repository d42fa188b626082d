"""Request bodies, read only once accepted and never past a limit.

The gateway decides everything it can from the request line and headers first (route, declared size)
and only then reads the body, as it streams, counting: the request that crosses the limit is answered
413 at once and nothing more of it is read. Whatever is refused before its body was read in full is
answered with ``Connection: close``, so the server does not go on reading (and discarding) the rest of
it to reuse the connection. Clients that wait for ``100 Continue`` get the refusal instead, since the
server only sends ``100 Continue`` when the app asks for the body.

Chunk sizes come from the server: uvicorn hands over what it has buffered, at most 64 KiB plus one
socket read, so a refused request holds at most the limit plus one such chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse


class BodyTooLarge(Exception):
    """The body is over the limit: by its declared Content-Length or by what has arrived so far."""


class BodyCutShort(Exception):
    """The client went away before the body was complete."""


def declared_length(request: Request) -> int | None:
    """The Content-Length the request declares (None: chunked, none, or not a number)."""
    value = request.headers.get("content-length")
    if value is None or "transfer-encoding" in request.headers:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def may_have_body(request: Request) -> bool:
    """Whether the request declares a body (that is still unread if the app did not read it)."""
    return "transfer-encoding" in request.headers or (declared_length(request) or 0) > 0


def refusal(status: int, message: str, request: Request | None = None) -> JSONResponse:
    """The error answer ``{"error": message}``; given the request it refuses, it also closes the connection
    when that request declares a body (which is then unread, or not read to its end)."""
    headers = {"connection": "close"} if request is not None and may_have_body(request) else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _check_declared(request: Request, limit: int) -> None:
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge


async def chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives; BodyTooLarge before a byte is read when the declared length is over
    ``limit``, or as soon as what arrived crosses it; BodyCutShort when the client disconnects."""
    _check_declared(request, limit)
    size = 0
    try:
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                if chunk:
                    yield chunk
    except ClientDisconnect:
        raise BodyCutShort from None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (as :func:`chunks`, without a generator of its own: this
    is every delivery's path)."""
    _check_declared(request, limit)
    parts: list[bytes] = []
    size = 0
    try:
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                parts.append(chunk)
    except ClientDisconnect:
        raise BodyCutShort from None
    return b"".join(parts)

"""HTTP failures mapped onto Ponte's one exception tree, with the request attached (redacted).

Each class is a subclass of both :class:`HttpError` (method, URL, status, body excerpt) and the kernel
class that decides how it is handled (transient, rate-limited, auth, data, not-found, conflict), so
callers catch the kind they care about and still see which request failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from ponte import (
    AuthError,
    ConflictError,
    DataError,
    NotFoundError,
    PonteError,
    RateLimitedError,
    TransientError,
    redact,
)

_SECRET_PARAMS = ("token", "key", "secret", "password", "senha", "signature", "sig", "auth")
_SECRET_HEADERS = ("authorization", "token", "key", "secret", "signature", "hmac", "cookie", "email")


def redact_url(url: str | httpx.URL) -> str:
    """The URL with secret-looking query values and userinfo masked."""
    parts = urlsplit(str(url))
    query = [
        (k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return redact(urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), "")))


def host_of(url: str) -> str:
    """``host[:port]`` of a URL for messages (never the path or query, which may carry tokens)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an unreadable URL"
    if not host:
        return "a URL without a host"
    return f"{host}:{port}" if port else host


def redact_headers(headers: httpx.Headers | dict[str, str]) -> dict[str, str]:
    return {
        k: "***" if any(s in k.lower() for s in _SECRET_HEADERS) else redact(v) for k, v in headers.items()
    }


@dataclass(frozen=True)
class RequestInfo:
    """What was sent, safe to log: method, masked URL and masked headers (never the body)."""

    method: str
    url: str
    headers: dict[str, str]

    @classmethod
    def of(cls, request: httpx.Request) -> RequestInfo:
        return cls(request.method, redact_url(request.url), redact_headers(request.headers))


class HttpError(PonteError):
    """Mixin data of every HTTP failure: the request, the status and an excerpt of the answer."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo | None = None,
        status: int | None = None,
        body_excerpt: str | None = None,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.request = request
        self.status = status
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        if request:
            self.details.setdefault("request", f"{request.method} {request.url}")
        if status is not None:
            self.details.setdefault("status", status)
        if body_excerpt:
            self.details.setdefault("body", body_excerpt)


class HttpTransientError(HttpError, TransientError):
    """5xx, or an answer we may get right by asking again."""


class HttpRateLimitedError(HttpError, RateLimitedError):
    """429: slow down; ``retry_after`` in seconds when the server said."""


class HttpAuthError(HttpError, AuthError):
    """401/403: wrong credentials or a missing grant."""


class HttpNotFoundError(HttpError, NotFoundError):
    """404."""


class HttpConflictError(HttpError, ConflictError):
    """409."""


class HttpDataError(HttpError, DataError):
    """Another 4xx: the request (usually the record) is wrong."""


class UnexpectedStatusError(HttpError, DataError):
    """A 2xx/3xx the action did not expect (e.g. 200 where 201 was promised)."""


class ConnectionFailed(HttpError, TransientError):
    """No answer: connection refused/reset or a timeout.

    ``reached_server`` is False only when the request provably never left (connect error or connect
    timeout, pool timeout): then a non-idempotent create may be sent again safely.
    """

    def __init__(self, message: str, *, reached_server: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reached_server = reached_server


class AmbiguousWriteError(HttpError, TransientError):
    """A create may or may not have happened and there is no way to look it up: a person decides.

    Retrying blindly could create a duplicate (two envelopes sent to a customer); the outbox keeps the
    item and reconciliation or an operator resolves it.
    """

    retryable = False


class ForeignHostError(DataError):
    """A URL (or a redirect hop) leads outside the connector's hosts: nothing is sent there."""


class ResponseTooLargeError(DataError):
    """A download passed the connector's ``max_download_bytes``; the transfer was stopped there."""


class WebhookAuthError(AuthError):
    """A delivery failed authentication (forged, tampered, replayed or misconfigured sender)."""


class MissingSignatureError(WebhookAuthError):
    """The header (or URL parameter) that proves the sender is absent."""


class SignatureMismatchError(WebhookAuthError):
    """A signature or token is present but does not match: wrong secret or altered body."""


class StaleDeliveryError(WebhookAuthError):
    """The signed timestamp is outside the tolerance: a replay, or a clock far off."""


class MalformedDeliveryError(DataError):
    """Authenticated but unreadable: not JSON, or a locator's field is missing."""


def body_excerpt(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except Exception:  # undecodable bytes: the status says enough
        return ""
    return redact(text[:limit])


def from_response(response: httpx.Response, *, source: str | None = None) -> HttpError:
    """Classify a failed response onto the tree."""
    from connectors.runtime.retry import parse_retry_after

    request = RequestInfo.of(response.request)
    status = response.status_code
    excerpt = body_excerpt(response)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    common: dict[str, Any] = dict(
        request=request, status=status, body_excerpt=excerpt, retry_after=retry_after, source=source
    )
    what = f"{request.method} {request.url} answered {status}"
    if status == 429:
        return HttpRateLimitedError(f"{what} (rate limited)", **common)
    if status == 401:
        return HttpAuthError(f"{what} (credentials refused)", hint="check the tenant's credentials", **common)
    if status == 403:
        return HttpAuthError(
            f"{what} (forbidden)", hint="grant this endpoint to the API user at the provider", **common
        )
    if status == 404:
        return HttpNotFoundError(f"{what} (not found)", **common)
    if status == 409:
        return HttpConflictError(f"{what} (conflict)", **common)
    if 400 <= status < 500:
        return HttpDataError(f"{what}: {excerpt}" if excerpt else what, **common)
    if status >= 500:
        return HttpTransientError(f"{what} (server error)", **common)
    return UnexpectedStatusError(f"{what} (unexpected status)", **common)


def from_transport(exc: httpx.TransportError, request: httpx.Request, *, source: str | None = None) -> ConnectionFailed:
    """Classify a transport failure; decide whether the request could have reached the server."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    kind = type(exc).__name__
    info = RequestInfo.of(request)
    return ConnectionFailed(
        f"{info.method} {info.url} failed: {kind}: {redact(str(exc)) or 'no detail'}",
        reached_server=not never_sent,
        request=info,
        source=source,
    )

"""The runtime that executes any HTTP connector spec: reads, writes, downloads and webhooks.

One :class:`Connector` per tenant and connector. It owns an httpx client (pooled connections, the
spec's timeouts), the auth strategy, the rate limiter and the retry policy; it counts every request it
sends (``api_calls``) so pipelines can report the budget they used.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from connectors.runtime.auth import AuthContext, AuthStrategy, build_auth, dig
from connectors.runtime.errors import (
    AmbiguousWriteError,
    ConnectionFailed,
    ForeignHostError,
    HttpAuthError,
    HttpConflictError,
    HttpError,
    HttpRateLimitedError,
    ResponseTooLargeError,
    UnexpectedStatusError,
    from_response,
    from_transport,
    host_of,
)
from connectors.runtime.paginators import paginator_for
from connectors.runtime.ratelimit import InMemoryRateBudget, Limiter, RateBudget, buckets_for
from connectors.runtime.retry import is_retryable, retrying
from connectors.runtime.webhooks import WebhookDelivery, answer_challenge, verify_delivery
from connectors.spec import models as m
from connectors.spec.loader import load_spec
from connectors.spec.templates import render, render_string
from ponte import ConfigurationError, DataError, PonteError, get_logger, redact_url, register_secret

log = get_logger("connectors.runtime")
# httpx logs every request at INFO with its full URL (query keys included); Ponte logs its own line at
# DEBUG through the masking logger instead.
logging.getLogger("httpx").setLevel(logging.WARNING)

_PROCESS_BUDGET = InMemoryRateBudget()


@dataclass
class ActionResult:
    """The outcome of an action. ``existing`` is True when a lookup found the object instead of a create."""

    action: str
    status: int
    data: Any = None
    id: str | None = None
    existing: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


@dataclass
class CheckResult:
    stream: str
    ok: bool
    detail: str


def resolve_values(spec: m.HttpConnectorSpec | m.SmtpConnectorSpec, given: Mapping[str, str]) -> dict[str, str]:
    """Declared defaults overlaid with the tenant's values."""
    values = {k: str(v) for k, v in given.items()}
    pending = {n: d.default for n, d in spec.values.items() if d.default is not None and n not in values}
    for _ in range(len(pending) + 1):  # defaults may use other values ({values.domain})
        for name, default in list(pending.items()):
            try:
                values[name] = str(render(default, {"values": values}))
                del pending[name]
            except DataError:
                continue
    return values


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"{number} does not fit a double")
    return value


def _url_quote(value: str, ref: Any) -> str:
    """Record and parameter values are quoted into one path segment; tenant values (a configured
    path such as ``/technical-assistances``) are taken as written."""
    return value if ref.namespace == "values" else quote(value, safe="")


#: the only request headers a redirect to another origin keeps: credentials (``Authorization``, and the
#: custom token headers some APIs use, e.g. CV CRM's ``email``/``token``) never follow a redirect away
_CROSS_ORIGIN_SAFE = frozenset({"host", "accept", "accept-encoding", "user-agent", "content-type",
                                "content-length", "connection"})


class _HttpClient(httpx.Client):
    """httpx strips only ``Authorization`` on a cross-origin redirect; a file host that redirects to a
    storage bucket would otherwise receive the connector's other credential headers too."""

    def _redirect_headers(self, request: httpx.Request, url: httpx.URL, method: str) -> httpx.Headers:
        headers = super()._redirect_headers(request, url, method)
        if (url.scheme, url.host, url.port) != (request.url.scheme, request.url.host, request.url.port):
            headers = httpx.Headers({k: v for k, v in headers.items() if k.lower() in _CROSS_ORIGIN_SAFE})
        return headers


#: redirect hops followed per request (each one's host checked)
_MAX_REDIRECTS = 5
#: how much of an error answer is read (for its excerpt)
_ERROR_BODY_BYTES = 64 * 1024


def _origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    return scheme.lower(), host.lower(), port or (443 if scheme.lower() == "https" else 80)


def _origin_of(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        return _origin(parts.scheme, parts.hostname or "", parts.port) if parts.hostname else None
    except ValueError:
        return None


def _with_query(url: str, query: Mapping[str, Any] | None) -> httpx.URL:
    """``url`` with ``query`` added to the query it already has (httpx would replace it, even with {})."""
    target = httpx.URL(url)
    return target.copy_merge_params(query) if query else target


class Connector:
    """A spec bound to one tenant's values and secrets, ready to talk to the outside system."""

    def __init__(
        self,
        spec: m.HttpConnectorSpec,
        *,
        values: Mapping[str, str],
        secrets: Mapping[str, str],
        tenant: str = "default",
        budget: RateBudget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.tenant = tenant
        self.values = resolve_values(spec, values)
        self.secrets = dict(secrets)
        for secret in self.secrets.values():
            register_secret(secret)
        self.api_calls = 0
        self._sleep = sleep
        self.base_url = str(self._render_config(spec.base_url, "base_url", quote_values=False)).rstrip("/")
        self._origin = _origin_of(self.base_url)
        headers = {k: str(v) for k, v in self._render_config(spec.headers, "headers").items()}
        t = spec.timeouts
        self._http = _HttpClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            headers=headers,
            transport=transport,
            follow_redirects=False,  # _follow takes each hop itself, after checking its host
        )
        self.limiter = Limiter(
            budget or _PROCESS_BUDGET, buckets_for(spec.rate_limit, f"{tenant}:{spec.name}"), sleep=sleep
        )
        self._auth_specs: dict[str | None, Any] = {None: spec.auth, **spec.auths}
        self._auths: dict[str | None, AuthStrategy] = {}

    def _auth(self, name: str | None) -> AuthStrategy:
        """The strategy for the default auth or a named one, built on first use."""
        if name not in self._auths:
            self._auths[name] = build_auth(
                self._auth_specs[name],
                AuthContext(
                    values=self.values,
                    secrets=self.secrets,
                    send=self._send_auth_request,
                    cache_key=f"{self.tenant}:{self.name}:auth:{name or 'default'}",
                ),
            )
        return self._auths[name]

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        spec: m.HttpConnectorSpec | str | Path,
        values: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Connector:
        """Bind a spec (object, name or path) to tenant values and secrets."""
        loaded = load_spec(spec) if isinstance(spec, str | Path) else spec
        if not isinstance(loaded, m.HttpConnectorSpec):
            raise ConfigurationError(f"spec {loaded.name!r} is not an HTTP connector (use connectors.bind_spec)")
        return cls(loaded, values=values or {}, secrets=secrets or {}, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------- rendering

    def _render_config(self, template: Any, where: str, quote_values: bool = False) -> Any:
        try:
            return render(template, {"values": self.values, "secrets": self.secrets})
        except DataError as exc:
            raise ConfigurationError(
                f"connector {self.name}: {where} needs {exc.field}, which the tenant does not set",
                tenant=self.tenant,
                hint="add it to the tenant's connector values",
            ) from None

    def _url(self, path_template: str, context: Mapping[str, Any]) -> str:
        path = str(render_string(path_template, context, quote=_url_quote))
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    @staticmethod
    def _query(params: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in params.items():
            if isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif isinstance(value, datetime):
                out[key] = value.isoformat()
            else:
                out[key] = value
        return out

    # -------------------------------------------------------------------------------------- the wire

    def _send_auth_request(self, request: httpx.Request) -> httpx.Response:
        """Login/token calls: rate-limited, counted and retried like any call, but not authenticated."""
        for attempt in retrying(self.spec.retry, sleep=self._sleep):
            with attempt:
                return self._transmit(request, authenticate=False, raise_for_status=False)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transmit(
        self, request: httpx.Request, *, authenticate: bool = True, raise_for_status: bool = True,
        ok: list[int] | None = None, auth: str | None = None, max_bytes: int | None = None,
    ) -> httpx.Response:
        """One request on the wire (plus one re-login after a 401 for token strategies).

        Redirects are followed here, one hop at a time, only to hosts the connector allows
        (:meth:`allows`); a hop to another origin carries no credentials. With ``max_bytes`` the body is
        read while it streams and refused past that size.
        """
        strategy = self._auth(auth) if authenticate else None
        for refreshed in (False, True):
            if strategy is not None:
                strategy.apply(request)
            response = self._follow(request)
            if response.status_code == 401 and strategy is not None and not refreshed and strategy.invalidate():
                response.close()
                continue
            break
        if raise_for_status and (response.status_code >= 400 or (ok and response.status_code not in ok)):
            self._read_capped(response, _ERROR_BODY_BYTES, truncate=True)
            raise from_response(response, source=self.name).context(tenant=self.tenant)
        self._read_capped(response, max_bytes)
        return response

    def _follow(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; follow its redirects while each hop's host is allowed. Returns unread."""
        for hop in range(_MAX_REDIRECTS + 1):
            self.limiter.acquire()
            self.api_calls += 1
            started = time.monotonic()
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise from_transport(exc, request, source=self.name).context(tenant=self.tenant) from None
            if log.isEnabledFor(logging.DEBUG):  # the path's masking costs a regex pass per request
                log.debug("%s %s %s -> %s in %.0f ms", self.name, request.method, redact_url(request.url.path),
                          response.status_code, (time.monotonic() - started) * 1000)
            following = response.next_request
            if following is None or not response.has_redirect_location:
                return response
            response.close()
            target = str(following.url)
            if not self.allows(target):
                raise self._foreign(
                    target,
                    f"{request.method} {host_of(str(request.url))} redirected to {host_of(target)}, which "
                    f"is not one of {self.name}'s hosts; nothing was fetched from there",
                    hop=hop + 1,
                )
            request = following
        raise UnexpectedStatusError(
            f"more than {_MAX_REDIRECTS} redirects from {host_of(str(request.url))}",
            source=self.name,
            tenant=self.tenant,
        )

    def _read_capped(self, response: httpx.Response, limit: int | None, *, truncate: bool = False) -> None:
        """Read the body, at most ``limit`` bytes: past it the transfer stops and the record is refused
        (or, for an error answer, the excerpt is cut). Nothing larger is ever held in memory."""
        if limit is None:
            try:
                response.read()
            except httpx.TransportError as exc:
                raise from_transport(exc, response.request, source=self.name).context(tenant=self.tenant) from None
            finally:
                response.close()
            return
        declared = response.headers.get("content-length", "")
        too_big = declared.isdigit() and int(declared) > limit
        chunks: list[bytes] = []
        size = 0
        try:
            if not too_big:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        too_big = True
                        break
                    chunks.append(chunk)
        except httpx.TransportError as exc:
            raise from_transport(exc, response.request, source=self.name).context(tenant=self.tenant) from None
        finally:
            response.close()
        if too_big and not truncate:
            raise ResponseTooLargeError(
                f"the file at {host_of(str(response.request.url))} is larger than the "
                f"{limit:,} bytes allowed; the transfer was stopped",
                source=self.name,
                tenant=self.tenant,
                hint="if the file is legitimate, raise max_download_bytes on the tenant's connector",
                details={"limit": limit},
            )
        response._content = b"".join(chunks)  # what .content returns from now on

    def _request(
        self,
        request_factory: Callable[[], httpx.Request],
        *,
        ok: list[int] | None = None,
        safe_to_repeat: bool = True,
        lookup: Callable[[], ActionResult | None] | None = None,
        auth: str | None = None,
        authenticated: bool = True,
        max_bytes: int | None = None,
    ) -> httpx.Response | ActionResult:
        """Send with retries. A write that is not safe to repeat is sent again only when the first try
        provably never reached the server, the server refused it (429), or ``lookup`` found nothing."""
        ambiguous: list[PonteError] = []

        def should_retry(exc: BaseException) -> bool:
            if not is_retryable(exc, self.spec.retry):
                return False
            if safe_to_repeat or isinstance(exc, HttpRateLimitedError):
                return True
            if isinstance(exc, ConnectionFailed) and not exc.reached_server:
                return True
            if lookup is None:
                return False
            ambiguous.append(exc)  # type: ignore[arg-type]
            return True

        def before_sleep(state: Any) -> None:
            exc = state.outcome.exception()
            log.info("%s: retrying after %s (attempt %d)", self.name, type(exc).__name__, state.attempt_number)

        try:
            for attempt in retrying(self.spec.retry, should_retry=should_retry, sleep=self._sleep,
                                    before_sleep=before_sleep):
                with attempt:
                    if ambiguous and lookup is not None:
                        found = lookup()
                        if found is not None:
                            log.info("%s: the earlier attempt had created the object; not creating again", self.name)
                            return found
                    return self._transmit(request_factory(), ok=ok, auth=auth, authenticate=authenticated,
                                          max_bytes=max_bytes)
        except HttpError as exc:
            if not safe_to_repeat and lookup is None and is_retryable(exc, self.spec.retry) and not (
                isinstance(exc, HttpRateLimitedError)
                or (isinstance(exc, ConnectionFailed) and not exc.reached_server)
            ):
                raise AmbiguousWriteError(
                    f"{exc.message}; the create may have reached the server, and the action has no "
                    "find_existing lookup, so it was not sent again",
                    request=exc.request,
                    status=exc.status,
                    source=self.name,
                    tenant=self.tenant,
                    hint="check at the provider whether the object exists, then replay or discard",
                ) from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)  # a third of the standard module's time on big pages
        except orjson.JSONDecodeError:
            pass
        try:
            # not UTF-8 (orjson reads nothing else): the charset the server declared, else UTF-16/32,
            # which the json module tells from the bytes. Standard JSON only, as orjson reads it: NaN,
            # Infinity and numbers past a double are not JSON
            charset = response.charset_encoding
            body = response.content.decode(charset) if charset else response.content
            return json.loads(body, parse_constant=_not_json, parse_float=_finite)
        except (ValueError, LookupError):
            raise UnexpectedStatusError(
                f"{response.request.method} {response.request.url.path} answered non-JSON",
                status=response.status_code,
                source=self.name,
            ) from None

    # ------------------------------------------------------------------------------------------- reads

    def stream(self, name: str) -> m.Stream:
        try:
            return self.spec.streams[name]
        except KeyError:
            raise ConfigurationError(
                f"connector {self.name} has no stream {name!r}",
                hint=f"streams: {', '.join(self.spec.streams) or 'none'}",
            ) from None

    def read(
        self,
        stream: str,
        *,
        since: datetime | None = None,
        params: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records of a stream, page by page (memory stays flat); child streams read per parent."""
        spec = self.stream(stream)
        produced = 0
        if spec.parent is None:
            parents: Iterator[dict[str, Any] | None] = iter([None])
        else:
            parents = self.read(spec.parent.stream, since=None, params=params)
        for parent in parents:
            remaining = None if limit is None else limit - produced
            for record in self._read_pages(spec, parent, since, dict(params or {}), remaining):
                yield record
                produced += 1
                if limit is not None and produced >= limit:
                    return

    def _read_pages(
        self, spec: m.Stream, parent: dict[str, Any] | None, since: datetime | None,
        params: dict[str, Any], wanted: int | None,
    ) -> Iterator[dict[str, Any]]:
        context = {"values": self.values, "params": params, "parent": parent or {}}
        url = self._url(spec.path, context)
        query = self._query(render(spec.params, context))
        headers = {k: str(v) for k, v in render(spec.headers, context).items()}
        if since is not None and spec.incremental is not None:
            query[spec.incremental.param] = _format_since(since, spec.incremental)
        paginator = paginator_for(spec.pagination or self.spec.pagination, wanted)
        query = paginator.first(query)
        next_url: str | None = None
        while True:
            target, target_query = (next_url, None) if next_url else (url, query)

            def factory(target: str = target, target_query: Any = target_query) -> httpx.Request:
                return self._http.build_request("GET", _with_query(target, target_query), headers=headers)

            try:
                response = self._request(factory, auth=spec.auth)
            except HttpError as exc:
                if exc.status in spec.empty_on:
                    return
                raise
            assert isinstance(response, httpx.Response)
            data = self._json(response)
            records = dig(data, spec.records) if spec.records else data
            if records is None:
                records = []
            if isinstance(records, dict):
                records = [records]
            for record in records:
                if parent is not None and spec.parent is not None:
                    record = {**record, **{k: dig(parent, p) for k, p in spec.parent.include.items()}}
                yield record
            step = paginator.next(response, data, len(records), query)
            if step is None:
                return
            if step.url:
                next_url = step.url
            else:
                query = step.params or {}

    def read_one(self, stream: str, id: str | int) -> dict[str, Any]:
        """One object by id through the stream's ``by_id``."""
        spec = self.stream(stream)
        if spec.by_id is None:
            raise ConfigurationError(f"stream {stream} has no by_id read", hint="add by_id to the spec")
        by_id = spec.by_id
        url = self._url(by_id.path, {"values": self.values, "params": {"id": id}, "parent": {}})
        response = self._request(lambda: self._http.build_request("GET", url), auth=spec.auth)
        assert isinstance(response, httpx.Response)
        data = dig(self._json(response), by_id.records)
        if not isinstance(data, dict):
            raise UnexpectedStatusError(f"{stream} {id}: the answer holds no object", source=self.name)
        return data

    # ------------------------------------------------------------------------------------------ writes

    def action(self, name: str) -> m.Action:
        try:
            return self.spec.actions[name]
        except KeyError:
            raise ConfigurationError(
                f"connector {self.name} has no action {name!r}",
                hint=f"actions: {', '.join(self.spec.actions) or 'none'}",
            ) from None

    @staticmethod
    def _meta(idempotency_key: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"lookup_from_date": (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")}
        if idempotency_key:
            meta["idempotency_key"] = idempotency_key
        return meta

    def _build(self, action: m.Action, record: Mapping[str, Any], idempotency_key: str | None) -> httpx.Request:
        context = {"values": self.values, "secrets": self.secrets, "record": record,
                   "meta": self._meta(idempotency_key)}
        url = self._url(action.path, context)
        query = self._query(render(action.params, context))
        headers = {k: str(v) for k, v in render(action.headers, context).items()}
        if idempotency_key and action.idempotency_header:
            headers[action.idempotency_header] = idempotency_key
        kwargs: dict[str, Any] = {}
        body = action.body
        if isinstance(body, m.JsonBody):
            kwargs["json"] = render(body.template, context)
        elif isinstance(body, m.JsonApiBody):
            data: dict[str, Any] = {"type": body.resource}
            if body.id is not None:
                data["id"] = str(render(body.id, context))
            data["attributes"] = render(body.attributes, context)
            if body.relationships:
                data["relationships"] = {
                    k: {"data": {"type": r.type, "id": str(render(r.id, context))}}
                    for k, r in body.relationships.items()
                }
            kwargs["content"] = json.dumps({"data": data}).encode()
            headers.setdefault("Content-Type", "application/vnd.api+json")
            headers.setdefault("Accept", "application/vnd.api+json")
        elif isinstance(body, m.FormBody):
            kwargs["data"] = {k: str(v) for k, v in render(body.fields, context).items()}
        elif isinstance(body, m.MultipartBody):
            kwargs["data"] = {k: str(v) for k, v in render(body.fields, context).items()}
            files = []
            for part in body.files:
                content = render(part.content, context)
                if part.encoding == "base64":
                    try:
                        content = base64.b64decode(content, validate=True)
                    except (ValueError, TypeError):
                        raise DataError("file content is not valid base64", field=str(part.content)) from None
                elif isinstance(content, str):
                    content = content.encode()
                files.append((part.field, (str(render(part.filename, context)), content, part.content_type)))
            kwargs["files"] = files
        return self._http.build_request(action.method, _with_query(url, query), headers=headers, **kwargs)

    def find_existing(
        self, action: str, record: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> ActionResult | None:
        """Look the object up by our external key (as the action's ``find_existing`` says)."""
        spec = self.action(action)
        found = spec.find_existing
        if found is None:
            return None
        context = {"values": self.values, "record": record, "meta": self._meta(idempotency_key)}
        params = render(found.params, context)
        expected = {k: str(v) for k, v in render(found.match, context).items()}
        if found.stream:
            candidates: Iterator[dict[str, Any]] = self.read(found.stream, params=params, limit=100)
        else:
            url = self._url(found.path, context)
            response = self._request(
                lambda: self._http.build_request("GET", _with_query(url, self._query(params))), auth=spec.auth
            )
            assert isinstance(response, httpx.Response)
            data = dig(self._json(response), found.records)
            candidates = iter(data if isinstance(data, list) else [data] if isinstance(data, dict) else [])
        for candidate in candidates:
            if all(str(dig(candidate, path)) == value for path, value in expected.items()):
                ident = dig(candidate, spec.result.id_path) if spec.result.id_path else None
                return ActionResult(action, 200, candidate, None if ident is None else str(ident), existing=True)
        return None

    def call(
        self,
        action: str,
        record: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        lookup_first: bool = False,
    ) -> ActionResult:
        """Run an action with ``record`` as its template input.

        ``lookup_first`` (for an outbox item that may have been sent before) looks the object up by
        our external key and returns it instead of creating it again.
        """
        spec = self.action(action)
        record = dict(record or {})
        lookup = (
            (lambda: self.find_existing(action, record, idempotency_key=idempotency_key))
            if spec.find_existing else None
        )
        if lookup_first and lookup is not None:
            found = lookup()
            if found is not None:
                return found
        safe = spec.is_idempotent or bool(idempotency_key and spec.idempotency_header)
        try:
            outcome = self._request(lambda: self._build(spec, record, idempotency_key), ok=spec.expect,
                                    safe_to_repeat=safe, lookup=None if safe else lookup, auth=spec.auth,
                                    max_bytes=self.spec.max_download_bytes if spec.response == "binary" else None)
        except HttpConflictError:
            # "already exists" (e.g. CV CRM's 409 on a known idreserva_int): return the object we made
            found = lookup() if lookup is not None else None
            if found is None:
                raise
            return found
        if isinstance(outcome, ActionResult):
            return outcome
        response = outcome
        headers = dict(response.headers)
        if spec.response == "binary":
            return ActionResult(action, response.status_code, None, None, headers=headers, content=response.content)
        data = self._json(response) if spec.response == "json" else None
        body = dig(data, spec.result.records) if spec.result.records else data
        ident = dig(body, spec.result.id_path) if spec.result.id_path else None
        return ActionResult(action, response.status_code, body, None if ident is None else str(ident), headers=headers)

    def download(self, action: str, **params: Any) -> bytes:
        """The bytes of a binary action (a signed PDF, a certificate)."""
        spec = self.action(action)
        if spec.response != "binary":
            raise ConfigurationError(f"action {action} is not a download (response: binary)")
        content = self.call(action, params).content
        return content or b""

    def allows(self, url: str) -> bool:
        """Whether a file may be fetched from ``url`` (or a redirect may lead there) for this connector.

        The connector's own origin (scheme, host and port of its base URL) passes; so does an origin or,
        over HTTPS, a host pattern listed in the spec's and the tenant's ``file_hosts``. A URL with
        user info never passes.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.username or parts.password or not parts.hostname or parts.scheme not in ("http", "https"):
            return False
        origin = _origin(parts.scheme, parts.hostname, port)
        if origin == self._origin:
            return True
        host = parts.hostname.lower()
        for pattern in self.spec.file_hosts:
            if "://" in pattern:
                if origin == _origin_of(pattern):
                    return True
            elif parts.scheme == "https" and port in (None, 443) and fnmatch.fnmatchcase(host, pattern):
                return True
        return False

    def _foreign(self, url: str, message: str, **details: Any) -> ForeignHostError:
        """The refusal of a URL (or a redirect hop) outside this connector's hosts."""
        return ForeignHostError(
            message,
            source=self.name,
            tenant=self.tenant,
            hint=f"if {host_of(url)} is a legitimate file host of {self.name}, add it to the tenant "
            "connector's file_hosts",
            details={"host": host_of(url), **details},
        )

    def fetch_url(self, url: str, *, what: str = "file", credentials: bool | None = None) -> bytes:
        """Download the file at an absolute ``url`` named in a payload (a signed PDF, an attachment).

        The one way Ponte fetches a URL it was given: the host must pass :meth:`allows` before anything
        is sent, and so must every redirect hop; the connector's credentials go only where
        ``credentials`` says (default: only to its own origin) and never across a redirect to another
        origin; the body is counted while it streams and refused past ``max_download_bytes``; the call
        is counted in the rate budget, retried and classified like every other call (a 429 or a 5xx is
        transient, a 4xx is the record's problem). ``what`` names the file in messages.
        """
        if not self.allows(url):
            others = ", ".join(self.spec.file_hosts)
            raise self._foreign(
                url,
                f"refusing to download the {what} from {host_of(url)}: not a {self.name} host "
                f"(allowed: {host_of(self.base_url)}{', ' + others if others else ''}); nothing was fetched",
            )
        send_credentials = credentials if credentials is not None else _origin_of(url) == self._origin
        if send_credentials:
            factory = lambda: self._http.build_request("GET", url)  # noqa: E731
        else:  # not even the spec's static headers, which may carry tokens (CV CRM's email/token)
            factory = lambda: httpx.Request("GET", url)  # noqa: E731
        response = self._request(
            factory, authenticated=send_credentials, max_bytes=self.spec.max_download_bytes
        )
        assert isinstance(response, httpx.Response)
        return response.content

    # ---------------------------------------------------------------------------------------- webhooks

    def webhook(self, name: str) -> m.Webhook:
        try:
            return self.spec.webhooks[name]
        except KeyError:
            raise ConfigurationError(
                f"connector {self.name} has no webhook {name!r}",
                hint=f"webhooks: {', '.join(self.spec.webhooks) or 'none'}",
            ) from None

    def verify_webhook(
        self,
        name: str,
        headers: Mapping[str, str],
        body: bytes,
        params: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> WebhookDelivery:
        """Authenticate a delivery (raises a WebhookAuthError subclass) and read its event fields."""
        try:
            return verify_delivery(name, self.webhook(name), values=self.values, secrets=self.secrets,
                                   headers=headers, body=body, params=params, now=now)
        except PonteError as exc:
            raise exc.context(tenant=self.tenant, source=f"{self.name} webhook {name}") from None

    def webhook_challenge(self, name: str, params: Mapping[str, str]) -> str:
        return answer_challenge(self.webhook(name), values=self.values, secrets=self.secrets, params=params)

    def register_webhook(self, name: str, url: str, **record: Any) -> ActionResult:
        """Subscribe ``url`` at the system with the webhook's events (its ``registration`` action)."""
        hook = self.webhook(name)
        if hook.registration is None:
            raise ConfigurationError(f"webhook {name} is registered by hand at the provider (no registration)")
        events = [str(render(e, {"values": self.values})) for e in hook.events]
        base = self._render_config(hook.registration.record, f"webhooks.{name}.registration")
        return self.call(hook.registration.action, {"url": url, "events": events, **base, **record})

    # ------------------------------------------------------------------------------------------- check

    def check(self) -> list[CheckResult]:
        """Read one record of each check stream: proves auth and grants, says what works."""
        reads = [(c, {}) if isinstance(c, str) else (c.stream, c.params) for c in self.spec.check] or [
            (n, {}) for n, s in self.spec.streams.items() if s.parent is None
        ]
        results = []
        for name, params in reads:
            try:
                got = list(self.read(name, params=params, limit=1))
                results.append(CheckResult(name, True, f"ok ({len(got)} record{'s' if len(got) != 1 else ''} read)"))
            except HttpAuthError as exc:
                results.append(CheckResult(name, False, f"{exc.kind}: HTTP {exc.status} ({exc.hint})"))
            except PonteError as exc:
                results.append(CheckResult(name, False, f"{exc.kind}: {exc.message}"))
        return results


def _format_since(since: datetime, inc: m.Incremental) -> str:
    start = since - timedelta(seconds=inc.lookback_seconds)
    if inc.format == "epoch":
        return str(int(start.timestamp()))
    return start.strftime(inc.format)

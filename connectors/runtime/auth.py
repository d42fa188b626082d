"""Auth strategies: one small class per ``auth.type``, applied to each outgoing request.

Token-issuing strategies (login call, OAuth2 client credentials, hooks such as the DocuSign JWT grant)
cache their token per tenant and connector in this process until shortly before it expires, and drop it
when the API answers 401 so the next attempt logs in again (once: a second 401 is a real refusal).
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from connectors.spec import models as m
from connectors.spec.templates import check, render
from ponte import AuthError, ConfigurationError, DataError, register_secret


class AuthStrategy(Protocol):
    def apply(self, request: httpx.Request) -> None: ...

    def invalidate(self) -> bool:
        """Forget a cached token after a 401; True when a new attempt may succeed."""
        ...


@dataclass
class AuthContext:
    """What a strategy needs: tenant values and secrets, a way to send (counted) requests, a cache key."""

    values: Mapping[str, str]
    secrets: Mapping[str, str]
    send: Callable[[httpx.Request], httpx.Response]
    cache_key: str
    clock: Callable[[], float] = time.time
    cache: TokenCache = field(default_factory=lambda: TOKEN_CACHE)

    def render(self, template: Any, extra: Mapping[str, Any] | None = None) -> Any:
        try:
            return render(template, {"values": self.values, "secrets": self.secrets, **(extra or {})})
        except DataError as exc:
            raise ConfigurationError(
                f"auth needs {exc.field} but the tenant does not provide it",
                field=exc.field,
                hint="add it to the tenant's connector values or credentials",
            ) from None


class TokenCache:
    """Tokens by key with their expiry; shared by every connector of a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str, now: float) -> str | None:
        with self._lock:
            item = self._tokens.get(key)
        return item[0] if item and item[1] > now else None

    def put(self, key: str, token: str, expires_at: float) -> None:
        register_secret(token)
        with self._lock:
            self._tokens[key] = (token, expires_at)

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


TOKEN_CACHE = TokenCache()


def dig(data: Any, path: str | None) -> Any:
    """Value at a dotted path (numbers index lists); None when absent."""
    if path is None or path == "":
        return data
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


class _Static:
    def __init__(self, headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> None:
        self.headers = headers or {}
        self.params = params or {}
        for value in [*self.headers.values(), *self.params.values()]:
            register_secret(value)

    def apply(self, request: httpx.Request) -> None:
        request.headers.update(self.headers)
        if self.params:
            request.url = request.url.copy_merge_params(self.params)

    def invalidate(self) -> bool:
        return False


class CachedToken:
    """Base of strategies that fetch a token: caching, expiry margin, 401 invalidation."""

    header = "Authorization"

    def __init__(self, ctx: AuthContext, margin: float) -> None:
        self.ctx = ctx
        self.margin = margin

    def fetch(self) -> tuple[str, float]:
        """Return (token, lifetime in seconds)."""
        raise NotImplementedError

    def header_value(self, token: str) -> str:
        return f"Bearer {token}"

    def token(self) -> str:
        now = self.ctx.clock()
        cached = self.ctx.cache.get(self.ctx.cache_key, now)
        if cached:
            return cached
        token, lifetime = self.fetch()
        self.ctx.cache.put(self.ctx.cache_key, token, now + max(1.0, lifetime - self.margin))
        return token

    def apply(self, request: httpx.Request) -> None:
        request.headers[self.header] = self.header_value(self.token())

    def invalidate(self) -> bool:
        self.ctx.cache.drop(self.ctx.cache_key)
        return True


def _token_from(response: httpx.Response, token_path: str, what: str) -> tuple[str, Any]:
    from connectors.runtime.errors import from_response

    if response.status_code in (400, 401, 403):
        raise HttpLoginRefused(from_response(response, source=what))
    if response.status_code >= 300:
        raise from_response(response, source=what)
    try:
        data = response.json()
    except ValueError:
        raise AuthError(f"{what}: the token response is not JSON", source=what) from None
    token = dig(data, token_path)
    if not isinstance(token, str) or not token:
        raise AuthError(f"{what}: no token at {token_path!r} in the response", source=what)
    return token, data


def HttpLoginRefused(error: Exception) -> AuthError:
    from connectors.runtime.errors import HttpAuthError, HttpError

    if isinstance(error, HttpError):
        return HttpAuthError(
            f"login refused: {error.message}",
            request=error.request,
            status=error.status,
            body_excerpt=error.body_excerpt,
            hint="check the tenant's credentials",
        )
    return AuthError(str(error))


class LoginToken(CachedToken):
    def __init__(self, spec: m.LoginAuth, ctx: AuthContext) -> None:
        super().__init__(ctx, spec.refresh_margin_seconds)
        self.spec = spec
        self.header = spec.header

    def fetch(self) -> tuple[str, float]:
        url = self.ctx.render(self.spec.url)
        body = self.ctx.render(self.spec.body) if self.spec.body is not None else None
        for value in (body or {}).values() if isinstance(body, dict) else ():
            if isinstance(value, str) and value in self.ctx.secrets.values():
                register_secret(value)
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json" if self.spec.body_type == "json" else "data"] = body
        request = httpx.Request(self.spec.method, url, **kwargs)
        token, data = _token_from(self.ctx.send(request), self.spec.token_path, "login")
        lifetime = dig(data, self.spec.expires_in_path) if self.spec.expires_in_path else None
        try:
            seconds = float(lifetime) if lifetime is not None else float(self.spec.expires_in_seconds)
        except (TypeError, ValueError):
            seconds = float(self.spec.expires_in_seconds)
        return token, seconds

    def header_value(self, token: str) -> str:
        return str(render(self.spec.value, {"token": token}))


class ClientCredentials(CachedToken):
    def __init__(self, spec: m.OAuth2ClientCredentials, ctx: AuthContext) -> None:
        super().__init__(ctx, spec.refresh_margin_seconds)
        self.spec = spec

    def fetch(self) -> tuple[str, float]:
        client_id = self.ctx.render(self.spec.client_id)
        client_secret = self.ctx.render(self.spec.client_secret)
        register_secret(client_secret)
        form = {"grant_type": "client_credentials"}
        if self.spec.scope:
            form["scope"] = self.spec.scope
        headers = {}
        if self.spec.client_auth == "basic":
            raw = f"{client_id}:{client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            form.update(client_id=client_id, client_secret=client_secret)
        request = httpx.Request("POST", self.ctx.render(self.spec.token_url), data=form, headers=headers)
        token, data = _token_from(self.ctx.send(request), "access_token", "oauth2 token")
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime


def required_secrets(auth: Any) -> set[str]:
    """Secrets an auth option cannot do without (non-optional ``{secrets.x}`` references)."""
    refs = check(auth.model_dump(mode="python", by_alias=True), {"values", "secrets", "token"})
    return {r.path[0] for r in refs if r.namespace == "secrets" and r.path and not r.optional}


def build_auth(spec: Any, ctx: AuthContext) -> AuthStrategy:
    """The strategy for an ``auth`` section."""
    if isinstance(spec, m.NoAuth):
        return _Static()
    if isinstance(spec, m.BasicAuth):
        user, password = ctx.render(spec.username), ctx.render(spec.password)
        register_secret(password)
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return _Static({"Authorization": f"Basic {raw}"})
    if isinstance(spec, m.BearerAuth):
        token = str(ctx.render(spec.token))
        return _Static({"Authorization": f"{spec.scheme} {token}".strip()})
    if isinstance(spec, m.HeadersAuth):
        return _Static({k: str(ctx.render(v)) for k, v in spec.headers.items()})
    if isinstance(spec, m.ApiKeyAuth):
        value = str(ctx.render(spec.value))
        return _Static(*(({spec.name: value}, None) if spec.location == "header" else (None, {spec.name: value})))
    if isinstance(spec, m.LoginAuth):
        return LoginToken(spec, ctx)
    if isinstance(spec, m.OAuth2ClientCredentials):
        return ClientCredentials(spec, ctx)
    if isinstance(spec, m.HookAuth):
        from connectors.hooks import auth_hook

        return auth_hook(spec.name)(ctx.render(spec.options), ctx)
    if isinstance(spec, m.FirstOfAuth):
        for option in spec.options:
            if required_secrets(option) <= {k for k, v in ctx.secrets.items() if v}:
                return build_auth(option, ctx)
        wanted = " or ".join(", ".join(sorted(required_secrets(o))) or "(none)" for o in spec.options)
        raise ConfigurationError(
            f"no auth option fits the tenant's credentials; provide {wanted}",
            field="credentials",
            hint="add the credentials to the tenant file",
        )
    raise ConfigurationError(f"unknown auth type {type(spec).__name__}")

"""What every stand-in shares: the guard (faults, auth, rate limit), the control API, JSON helpers.

Each system subclasses :class:`SandboxSystem` and supplies its routes, its authentication, its rate
key and its own error-body shape. The guard runs in that order (faults, auth, budget) for every path
except the ``/_sandbox`` control prefix, which is never authenticated, throttled or broken: a test
must always be able to reach the knobs.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.faults import FaultConfig, FaultInjector
from connectors.sandbox.ratelimit import RateLimiter, Verdict, retry_after_header
from connectors.sandbox.webhooks import Delivery, Dispatcher
from ponte import get_logger

CONTROL_PREFIX = "/_sandbox"
log = get_logger(__name__)


@dataclass
class Exchange:
    """One request a stand-in served and the answer it gave, byte for byte as they crossed the wire."""

    system: str
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


#: Called with every :class:`Exchange` a stand-in served past its guard (the control API, injected
#: faults and refused credentials are not exchanges). Tests install one to check what Ponte sent and
#: what the stand-in answered against the vendors' specs; while the list is empty nothing is copied.
EXCHANGE_OBSERVERS: list[Callable[[Exchange], None]] = []


class DroppedConnection(Exception):
    """Raised after the response headers went out, so the server cuts the connection mid-response."""


class ApiError(Exception):
    """Raised by a handler to answer with the system's own error body."""

    def __init__(self, status: int, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code


class Denied:
    """What ``authenticate`` returns to refuse a request (status plus message)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        self.status = status
        self.message = message
        self.code = code


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, accents kept. orjson first: the stand-ins share the machine with the code a
    benchmark measures, and a page of 200 Sienge customers cost ~8.7 µs a record with the json module
    against ~1.9 µs. What orjson refuses (integers past 64 bits) goes to the json module."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JSON(JSONResponse):
    """JSON response that keeps accents readable (as the Brazilian APIs do)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


async def read_json(request: Request) -> Any:
    """The request body as JSON; an invalid body is a 400 in the system's own words."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Corpo da requisição não é um JSON válido: {exc}") from exc


def int_param(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ApiError(400, f"Parâmetro '{name}' inválido: {value!r}", field=name) from exc


class SandboxSystem:
    """Base of the stand-ins: state lock, faults, budget, dispatcher and the guarded ASGI app."""

    name: ClassVar[str] = "system"

    def __init__(self, config: SandboxConfig, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.lock = threading.RLock()
        self.faults = FaultInjector(config.faults.get(self.name))
        self.limiter: RateLimiter | None = None
        self.origin = ""  # set by the launcher once the port is known
        self._app: Starlette | None = None

    # ---- to override ------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return []

    def control_routes(self) -> list[BaseRoute]:
        return []

    def authenticate(self, request: Request) -> Denied | Any:
        """Return a principal (anything) or a :class:`Denied`."""
        return None

    def rate_key(self, request: Request, principal: Any) -> str | None:
        return None

    def error_body(self, status: int, message: str, *, field: str | None, code: str | None) -> Any:
        return {"status": status, "message": message}

    def rate_headers(self, verdict: Verdict) -> dict[str, str]:
        return {}

    def public_paths(self) -> tuple[str, ...]:
        """Path prefixes served without authentication (token endpoints, signed-file links)."""
        return ()

    # ---- helpers ----------------------------------------------------------------------------
    def error(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return JSON(self.error_body(status, message, field=field, code=code), status, headers=headers)

    def deliver(self, delivery: Delivery) -> None:
        self.dispatcher.submit(delivery, self.faults)

    def set_faults(self, faults: FaultConfig) -> None:
        self.faults.set(faults)

    # ---- the app ----------------------------------------------------------------------------
    @property
    def app(self) -> Starlette:
        if self._app is None:
            routes = [
                Route(f"{CONTROL_PREFIX}/faults", self._get_faults, methods=["GET"]),
                Route(f"{CONTROL_PREFIX}/faults", self._put_faults, methods=["PUT", "POST"]),
                Route(f"{CONTROL_PREFIX}/deliveries", self._get_deliveries, methods=["GET"]),
                Route(f"{CONTROL_PREFIX}/rate-limit/reset", self._reset_budget, methods=["POST"]),
                *self.control_routes(),
                *self.routes(),
            ]
            app = Starlette(routes=routes, exception_handlers={ApiError: self._api_error})
            self._app = app
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The guarded ASGI entry point served by uvicorn."""
        await _Guard(self, self.app)(scope, receive, send)

    async def _api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return self.error(exc.status, exc.message, field=exc.field, code=exc.code)

    async def _get_faults(self, request: Request) -> Response:
        return JSON(self.faults.config.model_dump())

    async def _put_faults(self, request: Request) -> Response:
        try:
            config = FaultConfig.model_validate(await read_json(request))
        except ValueError as exc:
            return JSON({"error": str(exc)}, 400)
        self.set_faults(config)
        return JSON(config.model_dump())

    async def _get_deliveries(self, request: Request) -> Response:
        return JSON([a.to_dict() for a in self.dispatcher.records(self.name)])

    async def _reset_budget(self, request: Request) -> Response:
        if self.limiter is not None:
            self.limiter.reset()
        return Response(status_code=204)


class _Guard:
    """ASGI wrapper applying faults, authentication and the rate budget before the router."""

    def __init__(self, system: SandboxSystem, app: ASGIApp) -> None:
        self.system = system
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        system = self.system
        decision = system.faults.decide()
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.drop:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]})
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
            raise DroppedConnection("sandbox fault: connection dropped")
        if decision.throttle:
            retry = system.faults.config.retry_after
            response = system.error(429, "Too many requests (sandbox fault)", code="RATE_LIMITED",
                                    headers={"Retry-After": retry_after_header(retry)})
            await response(scope, receive, send)
            return
        if decision.status is not None:
            response = system.error(decision.status, f"Sandbox injected error {decision.status}")
            await response(scope, receive, send)
            return

        request = Request(scope, receive)
        extra: dict[str, str] = {}
        if not any(scope["path"].startswith(p) for p in system.public_paths()):
            principal = system.authenticate(request)
            if isinstance(principal, Denied):
                response = system.error(principal.status, principal.message, code=principal.code)
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
            key = system.rate_key(request, principal)
            if key is not None and system.limiter is not None:
                verdict = system.limiter.hit(key)
                extra = system.rate_headers(verdict)
                if not verdict.allowed:
                    headers = {**extra, "Retry-After": retry_after_header(verdict.retry_after)}
                    response = system.error(429, "Limite de requisições excedido", code="RATE_LIMITED",
                                            headers=headers)
                    await response(scope, receive, send)
                    return

        if extra:
            inner_send = send

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message = {**message, "headers": headers}
                await inner_send(message)

            send = send_with_headers
        if EXCHANGE_OBSERVERS:
            await _observed(system.name, self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _observed(system: str, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` keeping copies of the request and response bodies, and tell the observers before the
    last piece of the answer goes out: a client that has its answer knows the exchange was observed."""
    request: list[bytes] = []
    response: list[bytes] = []
    start: dict[str, Any] = {}

    async def receive_copy() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            request.append(message.get("body", b""))
        return message

    def tell() -> None:
        exchange = Exchange(
            system=system, method=scope["method"], path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            request_headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])},
            request_body=b"".join(request), status=int(start.get("status", 0)),
            response_headers={k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])},
            response_body=b"".join(response),
        )
        for observer in list(EXCHANGE_OBSERVERS):
            try:
                observer(exchange)
            except Exception:  # an observer's bug must not break the stand-in's answer
                log.exception("sandbox exchange observer failed")

    async def send_copy(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            response.append(message.get("body", b""))
            if not message.get("more_body", False):
                tell()
        await send(message)

    await app(scope, receive_copy, send_copy)


Handler = Callable[[Request], Awaitable[Response]]

"""The webhook gateway, an ASGI app (Starlette).

For each delivery: authenticate it by the connector's webhook spec, store the raw body and headers in
the inbox in one transaction, and only then answer 2xx. Processing is someone else's job (the back-sync
sensor or ``ponte sync``), so the gateway answers in milliseconds and stays stateless: any number of
instances can share one PostgreSQL inbox, and duplicates collapse on the inbox's unique event id.

Answers: 200 stored (or duplicate), 401 forged / unsigned, 400 malformed, 404 unknown route, 413 too
large, 503 only when the store itself is down (the sender should retry). Never a 5xx for bad input.

Nothing is buffered before it is accepted: the route (tenant, connector, webhook) is checked and the
declared size compared with the limit before any of the body is read, and the body is counted while it
streams, cut off at the limit (``orchestration/gateway/bodies.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.runtime import Connector, WebhookAuthError
from orchestration.gateway.bodies import BodyCutShort, BodyTooLarge, read_body, refusal
from orchestration.gateway.openapi import openapi_document
from pipelines.connections import ConnectorPool
from pipelines.store import Store, store_event
from ponte import AuthError, ConfigurationError, DataError, PonteError, get_logger
from schemas import TenantConfig

log = get_logger("gateway")

#: the largest delivery body accepted; a larger one is refused (413) without being read past this
MAX_BODY_BYTES = 5 * 1024 * 1024



def _echo(event_id: str) -> str:
    """The event id for the JSON answer: as delivered, except a lone surrogate (which UTF-8 cannot
    encode: the answer failed with a 503 after the event was stored) written as a backslash escape."""
    try:
        event_id.encode("utf-8")
    except UnicodeEncodeError:
        return event_id.encode("utf-8", "backslashreplace").decode("utf-8")
    return event_id

def _problem(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class Gateway:
    def __init__(
        self,
        store: Store,
        tenants: dict[str, TenantConfig],
        connectors: ConnectorPool | None = None,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.tenants = tenants
        # verification makes no HTTP calls, so these connectors need no shared rate budget
        self.connectors = connectors or ConnectorPool()
        self.on_stored = on_stored
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0, "malformed": 0, "too_large": 0}
        # opened connectors of configured (tenant, connector) pairs only, so the cache stays bounded;
        # after the first delivery a route is checked without leaving the event loop
        self._opened: dict[tuple[str, str], Connector] = {}

    def _resolve(self, request: Request) -> tuple[TenantConfig, str, str] | Response:
        tenant_id = request.path_params["tenant"]
        key = request.path_params["connector"]
        webhook = request.path_params["webhook"]
        tenant = self.tenants.get(tenant_id)
        if tenant is None or key not in tenant.connectors:
            return _problem(404, "unknown webhook route")
        return tenant, key, webhook

    async def _route(self, request: Request) -> tuple[TenantConfig, str, str, Connector] | Response:
        """The delivery's tenant, connector and webhook, or the refusal, decided before the body is read."""
        resolved = self._resolve(request)
        if isinstance(resolved, Response):
            return refusal(404, "unknown webhook route", request)
        tenant, key, webhook = resolved
        connector = self._opened.get((tenant.id, key))
        if connector is None:
            try:
                connector = await run_in_threadpool(self.connectors.get, tenant, key)
            except ConfigurationError as exc:
                if "not an HTTP connector" in exc.message:
                    return refusal(404, "unknown webhook route", request)  # e.g. smtp: no webhooks at all
                log.error("gateway misconfigured for %s/%s: %s", tenant.id, key, exc)
                return refusal(
                    503, "webhook receiver is misconfigured; the sender should retry later", request
                )
            except Exception as exc:
                log.error("webhook %s/%s/%s not stored: %s", tenant.id, key, webhook, type(exc).__name__)
                return refusal(503, "not stored; retry later", request)
            if not isinstance(connector, Connector):
                return refusal(404, "unknown webhook route", request)  # e.g. smtp: no webhooks at all
            self._opened[(tenant.id, key)] = connector
        try:
            connector.webhook(webhook)
        except ConfigurationError:
            return refusal(404, "unknown webhook route", request)
        return tenant, key, webhook, connector

    def _receive(
        self,
        tenant: TenantConfig,
        key: str,
        webhook: str,
        connector: Connector,
        headers: dict[str, str],
        body: bytes,
        params: dict[str, str],
    ) -> Response:
        try:
            delivery = connector.verify_webhook(webhook, headers, body, params)
        except (WebhookAuthError, AuthError) as exc:
            self.stats["rejected"] += 1
            log.warning("rejected delivery on %s/%s/%s: %s", tenant.id, key, webhook, exc.message)
            return _problem(401, "delivery not authenticated")
        except DataError as exc:
            self.stats["malformed"] += 1
            return _problem(400, f"malformed delivery: {exc.message}")
        except ConfigurationError as exc:
            if "has no webhook" in exc.message or "not an HTTP connector" in exc.message:
                return _problem(404, "unknown webhook route")  # e.g. smtp: no webhooks at all
            log.error("gateway misconfigured for %s/%s: %s", tenant.id, key, exc)
            return _problem(503, "webhook receiver is misconfigured; the sender should retry later")
        stored = store_event(
            self.store,
            tenant=tenant.id,
            connector=key,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            event_time=delivery.event_time,
            headers={**delivery.headers, "x-ponte-webhook": webhook},
            body=body,
        )
        if stored.duplicate:
            self.stats["duplicates"] += 1
        else:
            self.stats["stored"] += 1
            if self.on_stored and stored.id is not None:
                self.on_stored(stored.id)
        return JSONResponse({"stored": True, "duplicate": stored.duplicate, "event_id": _echo(delivery.event_id)})

    async def deliver(self, request: Request) -> Response:
        route = await self._route(request)
        if isinstance(route, Response):
            return route
        tenant, key, webhook, connector = route
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            self.stats["too_large"] += 1
            return refusal(413, "delivery too large", request)
        except BodyCutShort:  # nobody is left to read the answer; not a server error either
            return refusal(400, "delivery cut short", request)
        params = dict(request.query_params)
        if "secret" in request.path_params:
            params["secret"] = request.path_params["secret"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            return await run_in_threadpool(
                self._receive, tenant, key, webhook, connector, headers, body, params
            )
        except PonteError as exc:
            log.error("webhook %s/%s/%s not stored: %s", tenant.id, key, webhook, exc)
            return _problem(503, "not stored; retry later")
        except Exception as exc:  # the store is down: the sender must retry, we must not ack
            log.error("webhook %s/%s/%s not stored: %s", tenant.id, key, webhook, type(exc).__name__)
            return _problem(503, "not stored; retry later")

    async def challenge(self, request: Request) -> Response:
        """Subscription handshakes (WhatsApp's hub.challenge)."""
        resolved = self._resolve(request)
        if isinstance(resolved, Response):
            return resolved
        tenant, key, webhook = resolved
        try:
            connector = self.connectors.get(tenant, key)
            if not isinstance(connector, Connector):
                return _problem(404, "unknown webhook route")  # e.g. smtp: no webhooks at all
            answer = connector.webhook_challenge(webhook, dict(request.query_params))
        except ConfigurationError as exc:
            if "has no webhook" in exc.message or "not an HTTP connector" in exc.message:
                return _problem(404, "unknown webhook route")
            return _problem(403, "verification failed")
        except (AuthError, DataError):
            return _problem(403, "verification failed")
        return PlainTextResponse(answer)

    async def health(self, _request: Request) -> Response:
        def ping() -> None:
            with self.store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

        try:
            await run_in_threadpool(ping)
        except Exception:
            return _problem(503, "state store unreachable")
        return JSONResponse({"status": "ok", "tenants": sorted(self.tenants), **self.stats})

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(openapi_document(self.tenants))


def create_app(
    store: Store,
    tenants: dict[str, TenantConfig],
    *,
    connectors: ConnectorPool | None = None,
    extra_routes: list[Route] | None = None,
    on_stored: Callable[[int], None] | None = None,
) -> Starlette:
    gateway = Gateway(store, tenants, connectors, on_stored)
    path = "/webhooks/{tenant}/{connector}/{webhook}"
    routes = [
        Route("/health", gateway.health, methods=["GET"]),
        Route("/openapi.json", gateway.openapi, methods=["GET"]),
        Route(path, gateway.deliver, methods=["POST"]),
        Route(path + "/{secret}", gateway.deliver, methods=["POST"]),
        Route(path, gateway.challenge, methods=["GET"]),
        *(extra_routes or []),
    ]
    app = Starlette(routes=routes)
    app.state.gateway = gateway
    return app

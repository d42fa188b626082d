"""A webhook receiver for trying things out: records every delivery, answers as scripted.

Tests and engineers need somewhere to point Sienge hooks, CV CRM webhooks, DocuSign Connect, Clicksign
and WhatsApp at before the real gateway exists (or to watch exactly what a provider sends). A target is
just a name in the path: ``{sink}/hooks/<name>``. A script makes it fail the next deliveries with given
statuses, so retry behaviour can be shown without a broken receiver.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox.base import JSON, read_json
from connectors.sandbox.smtp import SmtpSandbox


@dataclass
class Received:
    """One request the sink received."""

    name: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "path": self.path, "query": self.query,
                "headers": self.headers, "body": self.body.decode("utf-8", "replace"),
                "status": self.status, "at": self.at}


class Sink:
    """Thread-safe recorder of webhook deliveries, served as an ASGI app."""

    def __init__(self, smtp: SmtpSandbox | None = None) -> None:
        self.origin = ""
        self.smtp = smtp
        self._cond = threading.Condition()
        self._received: list[Received] = []
        self._scripts: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        self.app = Starlette(routes=[
            Route("/hooks/{name:path}", self._receive, methods=["POST", "PUT", "GET"]),
            Route("/_sandbox/sink", self._list_all, methods=["GET"]),
            Route("/_sandbox/smtp/messages", self._smtp_messages, methods=["GET", "DELETE"]),
            Route("/_sandbox/sink/{name:path}/script", self._script, methods=["POST"]),
            Route("/_sandbox/sink/{name:path}", self._list, methods=["GET", "DELETE"]),
        ])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def url(self, name: str) -> str:
        """The delivery URL of target ``name`` (query strings may be appended, e.g. a secret)."""
        return f"{self.origin}/hooks/{name}"

    def script(self, name: str, statuses: list[int], delay: float = 0.0) -> None:
        """Answer the next deliveries to ``name`` with these statuses (then 200), after ``delay`` s."""
        with self._cond:
            self._scripts[name] = list(statuses)
            self._delays[name] = delay

    def received(self, name: str | None = None) -> list[Received]:
        with self._cond:
            return [r for r in self._received if name is None or r.name == name]

    def clear(self, name: str | None = None) -> None:
        with self._cond:
            self._received = [r for r in self._received if name is not None and r.name != name]

    def wait_for(
        self, name: str, count: int = 1, timeout: float = 10.0,
        where: Callable[[Received], bool] | None = None,
    ) -> list[Received]:
        """Block until ``count`` matching deliveries reached ``name``; TimeoutError says what came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [r for r in self._received if r.name == name and (where is None or where(r))]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"sink {name!r}: {len(hits)}/{count} deliveries after {timeout}s")
                self._cond.wait(left)

    async def _receive(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        with self._cond:
            script = self._scripts.get(name) or []
            status = script.pop(0) if script else 200
            delay = self._delays.get(name, 0.0)
        if delay:
            await asyncio.sleep(delay)
        with self._cond:
            self._received.append(Received(name, request.method, request.url.path, request.url.query,
                                           dict(request.headers), body, status))
            self._cond.notify_all()
        return JSON({"received": True}, status)

    async def _smtp_messages(self, request: Request) -> Response:
        if self.smtp is None:
            return JSON([])
        if request.method == "DELETE":
            self.smtp.clear()
            return Response(status_code=204)
        return JSON([m.to_dict() for m in self.smtp.inbox(request.query_params.get("to"))])

    async def _list_all(self, request: Request) -> Response:
        return JSON([r.to_dict() for r in self.received()])

    async def _list(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "DELETE":
            self.clear(name)
            return Response(status_code=204)
        return JSON([r.to_dict() for r in self.received(name)])

    async def _script(self, request: Request) -> Response:
        body = await read_json(request)
        self.script(request.path_params["name"], [int(s) for s in body.get("statuses", [])],
                    float(body.get("delay", 0)))
        return Response(status_code=204)

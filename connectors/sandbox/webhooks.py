"""Outgoing webhook deliveries for every stand-in, with the real systems' retry behaviour.

Each system queues its deliveries on one ordered lane (so a chain of events leaves in the order it
happened unless a fault says otherwise), retries non-2xx answers and timeouts on a compressed copy of
its real schedule, and records every attempt so tests and engineers can see exactly what was sent.
Fault injection (loss, duplicates, delay, out-of-order) is applied here, once, for all systems.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.sandbox.faults import FaultInjector
from ponte import get_logger

log = get_logger(__name__)

#: Builds the body and headers of attempt ``n`` (0-based): DocuSign puts ``retryCount`` in the body.
Builder = Callable[[int], tuple[bytes, dict[str, str]]]


@dataclass
class Delivery:
    """One event to deliver to one target URL."""

    system: str
    event: str
    event_id: str
    url: str
    build: Builder
    retry_delays: list[float]
    timeout: float = 5.0
    delivery_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Attempt:
    """One recorded attempt (or a decision not to attempt: ``lost``)."""

    delivery_id: str
    system: str
    event: str
    event_id: str
    url: str
    attempt: int
    outcome: str  # delivered | retrying | failed | lost
    status: int | None = None
    error: str | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "system": self.system,
            "event": self.event,
            "event_id": self.event_id,
            "url": self.url,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "body": self.body.decode("utf-8", "replace"),
            "headers": self.headers,
            "at": self.at,
        }


class Dispatcher:
    """Delivers webhooks on the sandbox's event loop; safe to call from any thread."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.attempts: list[Attempt] = []
        self._cond = threading.Condition()
        self._queues: dict[str, asyncio.Queue[tuple[Delivery, int]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._reorder: dict[str, list[Delivery]] = {}
        self._client: httpx.AsyncClient | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def aclose(self) -> None:
        for task in self._workers:
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

    # ---- submitting -------------------------------------------------------------------------
    def submit(self, delivery: Delivery, faults: FaultInjector) -> None:
        """Queue a delivery, applying this system's webhook faults."""
        lost, copies, delay = faults.webhook_plan()
        if lost:
            self._record(
                Attempt(delivery.delivery_id, delivery.system, delivery.event, delivery.event_id,
                        delivery.url, 0, "lost")
            )
            return
        window = faults.reorder_window
        for _ in range(copies):
            self._call(self._schedule, delivery, delay, window)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self.loop is None:
            raise RuntimeError("the webhook dispatcher is not running (sandbox not started)")
        self.loop.call_soon_threadsafe(fn, *args)

    def _schedule(self, delivery: Delivery, delay: float, window: float) -> None:
        assert self.loop is not None
        if window > 0:
            buffer = self._reorder.setdefault(delivery.system, [])
            if not buffer:
                self.loop.call_later(window + delay, self._flush_reordered, delivery.system)
            buffer.append(delivery)
            return
        if delay > 0:
            self.loop.call_later(delay, self._enqueue, delivery, 0)
        else:
            self._enqueue(delivery, 0)

    def _flush_reordered(self, system: str) -> None:
        batch = self._reorder.pop(system, [])
        for delivery in reversed(batch):
            self._enqueue(delivery, 0)

    def _enqueue(self, delivery: Delivery, attempt: int) -> None:
        queue = self._queues.get(delivery.system)
        if queue is None:
            queue = asyncio.Queue()
            self._queues[delivery.system] = queue
            self._workers.append(asyncio.get_running_loop().create_task(self._worker(queue)))
        queue.put_nowait((delivery, attempt))

    # ---- sending ----------------------------------------------------------------------------
    async def _worker(self, queue: asyncio.Queue[tuple[Delivery, int]]) -> None:
        while True:
            delivery, attempt = await queue.get()
            try:
                await self._send(delivery, attempt)
            except Exception:  # a bug here must not kill the lane
                log.exception("webhook delivery crashed (%s %s)", delivery.system, delivery.event)

    async def _send(self, delivery: Delivery, attempt: int) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient()
        body, headers = delivery.build(attempt)
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                delivery.url, content=body, headers=headers, timeout=delivery.timeout
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        retry = not ok and attempt < len(delivery.retry_delays)
        outcome = "delivered" if ok else ("retrying" if retry else "failed")
        self._record(
            Attempt(delivery.delivery_id, delivery.system, delivery.event, delivery.event_id,
                    delivery.url, attempt, outcome, status, error, body, headers)
        )
        if retry:
            assert self.loop is not None
            self.loop.call_later(delivery.retry_delays[attempt], self._enqueue, delivery, attempt + 1)
        elif not ok:
            log.warning("webhook %s %s dropped after %d attempts", delivery.system, delivery.event, attempt + 1)

    # ---- inspection -------------------------------------------------------------------------
    def _record(self, attempt: Attempt) -> None:
        with self._cond:
            self.attempts.append(attempt)
            self._cond.notify_all()

    def records(self, system: str | None = None) -> list[Attempt]:
        with self._cond:
            return [a for a in self.attempts if system is None or a.system == system]

    def wait_for(
        self, predicate: Callable[[list[Attempt]], bool], timeout: float = 10.0
    ) -> list[Attempt]:
        """Block until ``predicate(all attempts)`` holds; raise TimeoutError with what was seen."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.attempts):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(a.system, a.event, a.outcome, a.status) for a in self.attempts]
                    raise TimeoutError(f"webhook condition not met in {timeout}s; attempts: {seen}")
                self._cond.wait(left)
            return list(self.attempts)

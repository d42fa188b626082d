"""Pacing requests below the API's budget, per tenant and connector, across processes.

A budget is a token bucket per window (minute, hour, day): ``capacity`` tokens refilled at
``capacity / window`` per second. Taking a token *reserves* a slot: the bucket may go negative and the
caller waits ``-tokens / refill`` seconds. Reservation, rather than "try and retry", gives each caller
its own slot in order, so N processes sharing one bucket never exceed the rate between them, and Ponte
slows down *before* the server answers 429.

Where the bucket lives is a :class:`RateBudget`: in memory here (one process), or the state store
(``pipelines.store.rate_budget.SqlRateBudget``) so several processes and machines share one budget.
Connectors do not import the store: the budget is injected.

Who wants to know when a request waits for its slot (the CLI's progress bars say "waiting for the rate
budget") registers a listener with :func:`waits_reported_to`; it is told ``(tenant:connector, seconds)``
before each wait. Listeners only watch: pacing is the same with or without them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from connectors.spec.models import RateLimit


@dataclass(frozen=True)
class Bucket:
    key: str
    capacity: float
    refill_per_second: float


@runtime_checkable
class RateBudget(Protocol):
    """Where token buckets live. ``reserve`` takes ``cost`` tokens and returns seconds to wait (>= 0)."""

    def reserve(self, bucket: Bucket, cost: float = 1.0) -> float: ...


def refill(tokens: float, capacity: float, refill_per_second: float, elapsed: float) -> float:
    """Tokens after ``elapsed`` seconds of refill, never above capacity."""
    return min(capacity, tokens + max(0.0, elapsed) * refill_per_second)


def take(tokens: float, cost: float, refill_per_second: float) -> tuple[float, float]:
    """Reserve ``cost`` tokens: the new token count and the wait before the reserved slot."""
    tokens -= cost
    wait = 0.0 if tokens >= 0 else -tokens / refill_per_second
    return tokens, wait


class InMemoryRateBudget:
    """Buckets in this process only (tests, the CLI, a single worker)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def reserve(self, bucket: Bucket, cost: float = 1.0) -> float:
        with self._lock:
            now = self._clock()
            tokens, updated = self._state.get(bucket.key, (bucket.capacity, now))
            tokens = refill(tokens, bucket.capacity, bucket.refill_per_second, now - updated)
            tokens, wait = take(tokens, cost, bucket.refill_per_second)
            self._state[bucket.key] = (tokens, now)
            return wait


_WINDOWS = (("per_second", 1.0), ("per_minute", 60.0), ("per_hour", 3600.0), ("per_day", 86400.0))

#: Share of a window's limit that may go out as a burst; the rest is paced evenly.
BURST_SHARE = 0.10
#: Share of the limit Ponte uses in any window: the margin absorbs network jitter between the moment a
#: slot is reserved and the moment the server counts the request.
USE_SHARE = 0.95


def buckets_for(limit: RateLimit | None, key_prefix: str) -> list[Bucket]:
    """One bucket per window the spec declares, keyed ``<tenant>:<connector>:<window>``.

    A bucket of capacity C refilled at C/W would allow 2C in one window (a full bucket, then a window of
    refill), and a server counting "C per window" answers 429. So the bucket holds a small burst and
    refills the rest: burst + refill x W <= 95% of C in *any* window, fixed or sliding.
    """
    if limit is None:
        return []
    result = []
    for field, seconds in _WINDOWS:
        amount = getattr(limit, field)
        if amount:
            burst = min(max(1.0, float(int(amount * BURST_SHARE))), amount / 2)
            rate = (amount * USE_SHARE - burst) / seconds
            result.append(Bucket(f"{key_prefix}:{field}", burst, rate))
    return result


#: told (``tenant:connector``, seconds) before a request waits for its slot
WaitListener = Callable[[str, float], object]
_listeners: list[WaitListener] = []
_listeners_lock = threading.Lock()


@contextlib.contextmanager
def waits_reported_to(listener: WaitListener) -> Iterator[None]:
    """Report every rate-budget wait of this process to ``listener`` while the block runs."""
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


def _report_wait(who: str, seconds: float) -> None:
    for listener in list(_listeners):
        with contextlib.suppress(Exception):  # a listener never changes pacing
            listener(who, seconds)


class Limiter:
    """Blocks each request until every bucket of its connector has a slot for it."""

    def __init__(
        self,
        budget: RateBudget,
        buckets: list[Bucket],
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.budget = budget
        self.buckets = buckets
        self._sleep = sleep
        self.waited_seconds = 0.0

    def acquire(self, cost: float = 1.0) -> float:
        wait = max((self.budget.reserve(b, cost) for b in self.buckets), default=0.0)
        if wait > 0:
            self.waited_seconds += wait
            if _listeners:
                _report_wait(self.buckets[0].key.rsplit(":", 1)[0] if self.buckets else "", wait)
            self._sleep(wait)
        return wait

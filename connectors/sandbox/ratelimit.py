"""Fixed-window request budgets, as the real APIs enforce them.

Sienge (200/min per subdomain) and DocuSign (3,000/hour per account) refill at the next window;
CV CRM (200/min) also blocks the whole next window after a 429. The connector runtime must throttle
itself to these numbers, so the sandbox enforces them by default rather than being kinder than
production.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from connectors.sandbox.config import RateLimit


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one request against a budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the budget refills
    retry_after: float  # seconds to wait when refused


class RateLimiter:
    """Counts requests per key (subdomain, account, user) in fixed windows; thread-safe."""

    def __init__(self, config: RateLimit, clock: object = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, count)
        self._blocked_until: dict[str, float] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._blocked_until.clear()

    def hit(self, key: str) -> Verdict:
        cfg = self.config
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= cfg.window_seconds:
                start, count = now, 0
            reset_at = start + cfg.window_seconds
            blocked = self._blocked_until.get(key, 0.0)
            if not cfg.enabled:
                return Verdict(True, cfg.limit, cfg.limit, reset_at, 0.0)
            if now < blocked:
                return Verdict(False, cfg.limit, 0, blocked, blocked - now)
            if count >= cfg.limit:
                if cfg.block_seconds:
                    blocked = reset_at + cfg.block_seconds - cfg.window_seconds
                    blocked = max(blocked, now + cfg.block_seconds)
                    self._blocked_until[key] = blocked
                    return Verdict(False, cfg.limit, 0, blocked, blocked - now)
                self._windows[key] = (start, count)
                return Verdict(False, cfg.limit, 0, reset_at, reset_at - now)
            count += 1
            self._windows[key] = (start, count)
            return Verdict(True, cfg.limit, cfg.limit - count, reset_at, 0.0)


def retry_after_header(seconds: float) -> str:
    """Retry-After is whole seconds; round up so a client that obeys it is never early."""
    return str(max(1, math.ceil(seconds)))

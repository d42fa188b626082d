"""Retry rules: what is retried, how long to wait, and when a write may be sent again.

Waits use exponential backoff with full jitter (a random wait between 0 and the exponential cap), so
many workers hit by the same outage do not come back in lockstep; a server's ``Retry-After`` wins over
the computed wait. Both attempts and total time are bounded: a run must end.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import tenacity

from connectors.runtime.errors import ConnectionFailed, HttpError, HttpRateLimitedError, HttpTransientError
from connectors.spec.models import RetryPolicy

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    """Connection errors, timeouts and the policy's statuses (429/502/503/504 by default); never 401."""
    if isinstance(exc, ConnectionFailed):
        return True
    if isinstance(exc, HttpRateLimitedError | HttpTransientError):
        return exc.status in policy.retry_statuses
    return False


class _Wait(tenacity.wait.wait_base):
    """Full-jitter exponential backoff, replaced by Retry-After when the server gave one."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, HttpError) and exc.retry_after is not None:
            return exc.retry_after
        cap = min(
            self.policy.max_backoff_seconds,
            self.policy.initial_backoff_seconds * 2 ** (retry_state.attempt_number - 1),
        )
        return self.rng.uniform(0, cap)


class _Stop(tenacity.stop.stop_base):
    """Stop after max attempts, or when the next wait would cross the total-time bound."""

    def __init__(self, policy: RetryPolicy, wait: _Wait) -> None:
        self.policy = policy
        self.wait = wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.max_attempts:
            return True
        elapsed = retry_state.seconds_since_start or 0.0
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        upcoming = exc.retry_after if isinstance(exc, HttpError) and exc.retry_after is not None else 0.0
        return elapsed + upcoming > self.policy.max_elapsed_seconds


def retrying(
    policy: RetryPolicy,
    *,
    should_retry: Callable[[BaseException], bool] | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    rng: random.Random | None = None,
    before_sleep: Callable[[tenacity.RetryCallState], Any] | None = None,
) -> tenacity.Retrying:
    """A tenacity controller for one request under ``policy``; the last error is re-raised."""
    wait = _Wait(policy, rng or random.Random())
    predicate = should_retry or (lambda exc: is_retryable(exc, policy))
    return tenacity.Retrying(
        stop=_Stop(policy, wait),
        wait=wait,
        retry=tenacity.retry_if_exception(predicate),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )

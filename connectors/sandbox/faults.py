"""Fault injection: the failures production throws at a connector, on demand.

A connector that only ever saw a perfect sandbox has not been tested. Each system carries a
:class:`FaultConfig` that can be set at start (``ponte sandbox up --faults ...``) and changed at run
time (``PUT /_sandbox/faults`` or ``Sandbox.set_faults``). Random faults draw from a seeded generator
so a failing run can be replayed; ``fail_next`` gives tests exact, non-random failures.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator

from ponte import ConfigurationError


class FaultConfig(BaseModel):
    """What to break for one system. All rates are probabilities in [0, 1]."""

    #: HTTP status -> probability a request gets that status instead of its real answer.
    errors: dict[int, float] = Field(default_factory=dict)
    #: Added latency per request (ms), plus a uniform random jitter up to ``latency_jitter_ms``.
    latency_ms: float = Field(default=0, ge=0)
    latency_jitter_ms: float = Field(default=0, ge=0)
    #: Probability of a 429 with ``Retry-After: retry_after`` regardless of the real budget.
    throttle_rate: float = Field(default=0, ge=0, le=1)
    retry_after: float = Field(default=1, ge=0)
    #: Probability the connection is cut after the response headers (client sees a protocol error).
    drop_rate: float = Field(default=0, ge=0, le=1)
    #: Exact statuses for the next requests, consumed in order (0 = drop the connection).
    fail_next: list[int] = Field(default_factory=list)

    # webhooks sent by this system
    webhook_loss_rate: float = Field(default=0, ge=0, le=1)
    webhook_duplicate_rate: float = Field(default=0, ge=0, le=1)
    webhook_delay_ms: float = Field(default=0, ge=0)
    #: Hold deliveries for this long and send each batch newest first (out-of-order delivery).
    webhook_reorder_window_ms: float = Field(default=0, ge=0)

    seed: int | None = None

    @field_validator("errors")
    @classmethod
    def _rates(cls, value: dict[int, float]) -> dict[int, float]:
        for status, rate in value.items():
            if not 100 <= status <= 599:
                raise ValueError(f"error status {status} is not an HTTP status")
            if not 0 <= rate <= 1:
                raise ValueError(f"error rate {rate} for {status} is not in [0, 1]")
        if sum(value.values()) > 1:
            raise ValueError("error rates add up to more than 1")
        return value


SYSTEMS = ("sienge", "cvcrm", "docusign", "clicksign", "whatsapp")

_FLOAT_KEYS = {
    "latency_ms",
    "latency_jitter_ms",
    "throttle_rate",
    "retry_after",
    "drop_rate",
    "webhook_loss_rate",
    "webhook_duplicate_rate",
    "webhook_delay_ms",
    "webhook_reorder_window_ms",
}


def parse_fault_spec(specs: list[str] | str) -> dict[str, FaultConfig]:
    """Parse the CLI's compact fault syntax into one :class:`FaultConfig` per system.

    Each item is ``system.key=value``; ``errors`` takes ``status:rate`` pairs joined by ``+``, and
    ``fail_next`` takes statuses joined by ``+``. Example::

        sienge.errors=500:0.1+503:0.05  docusign.latency_ms=200  cvcrm.fail_next=429+500

    Items may also be joined by ``,`` in one string. A mistake is a ConfigurationError that names the
    item, never a silent default: a fault run that quietly injects nothing proves nothing.
    """
    items = [specs] if isinstance(specs, str) else list(specs)
    raw: dict[str, dict[str, object]] = {}
    for chunk in items:
        for item in (part.strip() for part in chunk.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            system, dot, name = key.strip().partition(".")
            if not sep or not dot or not name:
                raise ConfigurationError(
                    f"fault {item!r} is not system.key=value", hint="e.g. sienge.errors=500:0.1"
                )
            if system not in SYSTEMS:
                raise ConfigurationError(f"fault {item!r}: unknown system {system!r}", hint=", ".join(SYSTEMS))
            target = raw.setdefault(system, {})
            value = value.strip()
            try:
                if name == "errors":
                    pairs = {}
                    for pair in value.split("+"):
                        status, _, rate = pair.partition(":")
                        pairs[int(status)] = float(rate)
                    target["errors"] = pairs
                elif name == "fail_next":
                    target["fail_next"] = [int(v) for v in value.split("+") if v]
                elif name == "seed":
                    target["seed"] = int(value)
                elif name in _FLOAT_KEYS:
                    target[name] = float(value)
                else:
                    raise ConfigurationError(
                        f"fault {item!r}: unknown key {name!r}",
                        hint="one of errors, fail_next, seed, " + ", ".join(sorted(_FLOAT_KEYS)),
                    )
            except ValueError as exc:
                raise ConfigurationError(f"fault {item!r}: bad value {value!r}") from exc
    result: dict[str, FaultConfig] = {}
    for system, values in raw.items():
        try:
            result[system] = FaultConfig.model_validate(values)
        except ValueError as exc:
            raise ConfigurationError(f"faults for {system}: {exc}") from exc
    return result


@dataclass(frozen=True)
class FaultDecision:
    """What the injector decided for one request."""

    delay: float = 0.0
    status: int | None = None  # replace the answer with this status
    drop: bool = False  # cut the connection
    throttle: bool = False  # answer 429 with Retry-After


class FaultInjector:
    """Thread-safe holder of a system's fault config and its seeded random generator."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._pending: list[int] = list(self.config.fail_next)

    def set(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self._pending = list(config.fail_next)

    def decide(self) -> FaultDecision:
        """Decide the fate of one incoming request."""
        with self._lock:
            cfg = self.config
            delay = cfg.latency_ms / 1000
            if cfg.latency_jitter_ms:
                delay += self._rng.uniform(0, cfg.latency_jitter_ms) / 1000
            if self._pending:
                status = self._pending.pop(0)
                if status == 0:
                    return FaultDecision(delay=delay, drop=True)
                if status == 429:
                    return FaultDecision(delay=delay, throttle=True)
                return FaultDecision(delay=delay, status=status)
            if cfg.drop_rate and self._rng.random() < cfg.drop_rate:
                return FaultDecision(delay=delay, drop=True)
            if cfg.throttle_rate and self._rng.random() < cfg.throttle_rate:
                return FaultDecision(delay=delay, throttle=True)
            if cfg.errors:
                roll = self._rng.random()
                acc = 0.0
                for status, rate in sorted(cfg.errors.items()):
                    acc += rate
                    if roll < acc:
                        if status == 429:
                            return FaultDecision(delay=delay, throttle=True)
                        return FaultDecision(delay=delay, status=status)
            return FaultDecision(delay=delay)

    def webhook_plan(self) -> tuple[bool, int, float]:
        """(lost, copies, delay seconds) for one webhook delivery."""
        with self._lock:
            cfg = self.config
            if cfg.webhook_loss_rate and self._rng.random() < cfg.webhook_loss_rate:
                return True, 0, 0.0
            copies = 2 if cfg.webhook_duplicate_rate and self._rng.random() < cfg.webhook_duplicate_rate else 1
            return False, copies, cfg.webhook_delay_ms / 1000

    @property
    def reorder_window(self) -> float:
        return self.config.webhook_reorder_window_ms / 1000

"""One exception tree for the whole hub.

Each kind decides *where* it is handled, once:

- ``TransientError`` and ``RateLimitedError`` are retried by the HTTP layer (tenacity), then by
  Dagster's RetryPolicy for what the HTTP layer gave up on.
- ``AuthError`` and ``ConfigurationError`` stop the run: retrying cannot fix a wrong password or a
  broken tenant file, a person must.
- ``DataError`` and ``NotFoundError`` concern one record: that record goes to the dead-letter store and
  the batch goes on.

Every error carries enough context to act on (tenant, record, field, and a hint saying what to do), and
``str(error)`` renders all of it in one line a user can read without a traceback.
"""

from __future__ import annotations

from typing import Any


class PonteError(Exception):
    """Base of every error Ponte raises on purpose."""

    kind: str = "error"
    #: Whether retrying the same operation later may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        tenant: str | None = None,
        record: str | None = None,
        field: str | None = None,
        hint: str | None = None,
        source: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.tenant = tenant
        self.record = record
        self.field = field
        self.hint = hint
        self.source = source
        self.details = details or {}

    def context(self, **kwargs: str | None) -> PonteError:
        """Fill in context the raiser did not know (e.g. the tenant), keeping what it set."""
        for key, value in kwargs.items():
            if value is not None and getattr(self, key, None) is None:
                setattr(self, key, value)
        return self

    def where(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.tenant:
            parts.append(f"tenant {self.tenant}")
        if self.record:
            parts.append(f"record {self.record}")
        if self.field:
            parts.append(f"field {self.field}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" (fix: {self.hint})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "tenant": self.tenant,
            "record": self.record,
            "field": self.field,
            "hint": self.hint,
            "source": self.source,
            "details": self.details,
        }


class TransientError(PonteError):
    """The other side failed in a way that may pass: 5xx, timeouts, dropped connections."""

    kind = "transient"
    retryable = True


class RateLimitedError(TransientError):
    """The other side said slow down (429); ``retry_after`` is in seconds when it told us."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthError(PonteError):
    """Credentials missing, wrong, or lacking a grant (401/403). A person must fix it."""

    kind = "auth"


class ConfigurationError(PonteError):
    """A tenant file, connector spec or mapping is wrong. A person must fix the file."""

    kind = "configuration"


class DataError(PonteError):
    """One record is bad: it is dead-lettered with this reason and the batch goes on."""

    kind = "data"


class NotFoundError(PonteError):
    """The object asked for does not exist at the other side."""

    kind = "not_found"


class ConflictError(PonteError):
    """A write collided with the other side's state (e.g. a transition a state machine forbids)."""

    kind = "conflict"


__all__ = [
    "AuthError",
    "ConfigurationError",
    "ConflictError",
    "DataError",
    "NotFoundError",
    "PonteError",
    "RateLimitedError",
    "TransientError",
]

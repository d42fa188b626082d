"""The runtime that executes connector specs. Public surface below; submodules are implementation."""

from connectors.runtime.client import ActionResult, CheckResult, Connector
from connectors.runtime.errors import (
    AmbiguousWriteError,
    ConnectionFailed,
    HttpAuthError,
    HttpConflictError,
    HttpDataError,
    HttpError,
    HttpNotFoundError,
    HttpRateLimitedError,
    HttpTransientError,
    MalformedDeliveryError,
    MissingSignatureError,
    RequestInfo,
    SignatureMismatchError,
    StaleDeliveryError,
    UnexpectedStatusError,
    WebhookAuthError,
)
from connectors.runtime.ratelimit import Bucket, InMemoryRateBudget, RateBudget
from connectors.runtime.webhooks import WebhookDelivery

__all__ = [
    "ActionResult",
    "AmbiguousWriteError",
    "Bucket",
    "CheckResult",
    "ConnectionFailed",
    "Connector",
    "HttpAuthError",
    "HttpConflictError",
    "HttpDataError",
    "HttpError",
    "HttpNotFoundError",
    "HttpRateLimitedError",
    "HttpTransientError",
    "InMemoryRateBudget",
    "MalformedDeliveryError",
    "MissingSignatureError",
    "RateBudget",
    "RequestInfo",
    "SignatureMismatchError",
    "StaleDeliveryError",
    "UnexpectedStatusError",
    "WebhookAuthError",
    "WebhookDelivery",
]

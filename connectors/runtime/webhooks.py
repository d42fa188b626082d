"""Authenticating webhook deliveries and reading their event id, type and time.

Verification runs on the raw body exactly as received (re-serialised JSON would not match a signature)
and compares in constant time. Each failure raises a specific :class:`WebhookAuthError` subclass, so the
gateway can answer 401 and count forgeries apart from misconfigured senders; an authentic but unreadable
delivery raises :class:`MalformedDeliveryError` (a DataError).

Replay window: where the scheme signs the send time (Standard Webhooks' ``webhook-timestamp``), an
authentic delivery further than the tolerance from now, either way (default 300 s; per spec, or per
tenant through a ``{values.<name>}`` template), is refused with :class:`StaleDeliveryError` before the
gateway stores anything. The other schemes sign no send time (a body's event time is not one: providers
resend old events on purpose), so their replays are absorbed downstream: the inbox's unique event id,
then a re-read of the provider (webhooks are hints, reads are truth). docs/reliability.md has the table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.runtime.auth import dig
from connectors.runtime.errors import (
    MalformedDeliveryError,
    MissingSignatureError,
    SignatureMismatchError,
    StaleDeliveryError,
)
from connectors.spec import models as m
from connectors.spec.templates import render
from ponte import ConfigurationError, DataError, register_secret


@dataclass(frozen=True)
class WebhookDelivery:
    """An authenticated delivery: what pipelines need to dedupe, route and re-read."""

    webhook: str
    event_id: str
    event_type: str
    event_time: datetime | None
    subject_id: str | None
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _secret(template: str, values: Mapping[str, str], secrets: Mapping[str, str], what: str) -> str:
    try:
        value = str(render(template, {"values": values, "secrets": secrets}))
    except DataError:
        raise ConfigurationError(
            f"webhook {what}: the secret {template} is not configured for this tenant",
            hint="add it to the tenant's connector credentials",
        ) from None
    register_secret(value)
    return value


def _digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def _encode(raw: bytes, encoding: str) -> str:
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _parse_json(body: bytes, name: str) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        try:  # form-encoded deliveries (D4Sign) are still readable
            from urllib.parse import parse_qsl

            pairs = parse_qsl(body.decode("utf-8"), strict_parsing=True)
            return dict(pairs)
        except (UnicodeDecodeError, ValueError):
            raise MalformedDeliveryError(f"webhook {name}: the body is neither JSON nor a form") from None


def check_hmac(spec: m.HmacVerify, secret: str, headers: Mapping[str, str], body: bytes, payload: Any) -> None:
    present = [headers[h.lower()] for h in spec.headers if h.lower() in headers]
    if not present:
        raise MissingSignatureError(f"no signature header ({', '.join(spec.headers)})")
    if spec.over_field:
        value = dig(payload, spec.over_field)
        if value is None:
            raise SignatureMismatchError(f"the signed field {spec.over_field} is missing")
        message = str(value).encode()
    else:
        message = body
    expected = spec.prefix + _encode(_digest(spec.algorithm, secret.encode(), message), spec.encoding)
    for candidate in present:
        candidate = candidate.strip()
        if spec.encoding == "hex":
            candidate = candidate.lower() if not spec.prefix else spec.prefix + candidate[len(spec.prefix):].lower()
        if _same(candidate, expected):
            return
    raise SignatureMismatchError("signature does not match (wrong secret or altered body)")


#: the replay window when a spec does not set one: five minutes either side of now
DEFAULT_TOLERANCE_SECONDS = 300


def tolerance_seconds(spec: m.StandardWebhooksVerify, values: Mapping[str, str]) -> int:
    """The replay window of ``spec``: its number, or its ``{values.<name>}`` template rendered for the
    tenant (a ConfigurationError when that is not a whole number of seconds, at least 1)."""
    if isinstance(spec.tolerance_seconds, int):
        return spec.tolerance_seconds
    hint = "set the connector value to a whole number of seconds, e.g. 300 (five minutes)"
    try:
        text = str(render(spec.tolerance_seconds, {"values": values})).strip()
    except DataError:
        raise ConfigurationError(
            f"webhook tolerance {spec.tolerance_seconds} is not configured for this tenant", hint=hint
        ) from None
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigurationError(f"webhook tolerance {text!r} is not a number of seconds >= 1", hint=hint)
    return seconds


def check_window(sent: int, now: datetime, tolerance: int, header: str = "webhook-timestamp") -> None:
    """Refuse a signed send time further than ``tolerance`` seconds from ``now``, either way."""
    skew = now.timestamp() - sent
    if abs(skew) > tolerance:
        when = f"{int(skew)} s old" if skew > 0 else f"{int(-skew)} s in the future"
        raise StaleDeliveryError(
            f"{header} is {when}, outside the replay window of ±{tolerance} s (a replayed delivery, or a "
            "clock far off)"
        )


def check_standard(
    spec: m.StandardWebhooksVerify,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: int | None = None,
) -> None:
    """Standard Webhooks; ``tolerance`` is the tenant's window (default: the spec's number, or 300 s)."""
    msg_id, stamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signatures):
        raise MissingSignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        sent = int(stamp)
    except ValueError:
        raise SignatureMismatchError("webhook-timestamp is not a number") from None
    key_text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(key_text, validate=True)
    except ValueError:
        raise ConfigurationError("the Standard Webhooks secret is not whsec_<base64>") from None
    expected = base64.b64encode(_digest("sha256", key, f"{msg_id}.{stamp}.".encode() + body)).decode()
    if not any(version == "v1" and _same(value, expected)
               for version, _, value in (item.partition(",") for item in signatures.split())):
        raise SignatureMismatchError("no v1 signature matches (wrong secret or altered body)")
    # the timestamp is authentic (it is in the signed message): now it must be a fresh send
    if tolerance is None:
        tolerance = spec.tolerance_seconds if isinstance(spec.tolerance_seconds, int) else DEFAULT_TOLERANCE_SECONDS
    check_window(sent, now, tolerance)


def authenticate(
    name: str,
    spec: m.Webhook,
    *,
    values: Mapping[str, str],
    secrets: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    params: Mapping[str, str],
    payload: Any,
    now: datetime,
) -> None:
    verify = spec.verify
    secret = _secret(getattr(verify, "secret", None) or getattr(verify, "token", None)
                     or getattr(verify, "value", ""), values, secrets, name)
    if isinstance(verify, m.HmacVerify):
        check_hmac(verify, secret, headers, body, payload)
    elif isinstance(verify, m.BearerVerify):
        got = headers.get(verify.header.lower())
        if not got:
            raise MissingSignatureError(f"no {verify.header} header")
        expected = f"{verify.scheme} {secret}".strip()
        if not _same(got.strip(), expected):
            raise SignatureMismatchError(f"{verify.header} does not carry the expected token")
    elif isinstance(verify, m.HeaderSecretVerify):
        got = headers.get(verify.header.lower())
        if not got:
            raise MissingSignatureError(f"no {verify.header} header")
        if not _same(got, secret):
            raise SignatureMismatchError(f"{verify.header} does not match")
    elif isinstance(verify, m.UrlSecretVerify):
        got = params.get(verify.param)
        if not got:
            raise MissingSignatureError(f"the URL has no {verify.param}")
        if not _same(got, secret):
            raise SignatureMismatchError(f"the URL's {verify.param} does not match")
    elif isinstance(verify, m.StandardWebhooksVerify):
        check_standard(verify, secret, headers, body, now, tolerance_seconds(verify, values))


def _optional(value: Any) -> Any:
    return "" if value is None else value


def locate(loc: m.Locator, headers: Mapping[str, str], body: bytes, payload: Any,
           params: Mapping[str, str]) -> Any:
    if loc.header is not None:
        return headers.get(loc.header.lower())
    if loc.body is not None:
        return dig(payload, loc.body)
    if loc.query is not None:
        return params.get(loc.query)
    if loc.constant is not None:
        return loc.constant
    if loc.composite is not None:
        # a part ending in "?" is optional: empty when the body lacks it (DocuSign's recipientId on
        # envelope events); any other missing part means no id
        parts = [_optional(dig(payload, p[:-1])) if p.endswith("?") else dig(payload, p) for p in loc.composite]
        return None if any(p is None for p in parts) else ":".join(str(p) for p in parts)
    return hashlib.sha256(body).hexdigest()


def parse_time(value: Any, fmt: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        if fmt == "epoch":
            return datetime.fromtimestamp(float(value), UTC)
        if fmt == "epoch_ms":
            return datetime.fromtimestamp(float(value) / 1000, UTC)
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        if fmt == "text":
            return None
        raise MalformedDeliveryError(f"event time {value!r} is not a valid {fmt} time") from None


def verify_delivery(
    name: str,
    spec: m.Webhook,
    *,
    values: Mapping[str, str],
    secrets: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    params: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> WebhookDelivery:
    """Authenticate a delivery and extract its event id, type, time and subject."""
    now = now or datetime.now(UTC)
    params = dict(params or {})
    lowered = _lower(headers)
    try:
        payload = _parse_json(body, name)
        parse_error: MalformedDeliveryError | None = None
    except MalformedDeliveryError as exc:
        payload, parse_error = None, exc
    authenticate(name, spec, values=values, secrets=secrets, headers=lowered, body=body, params=params,
                 payload=payload, now=now)
    if parse_error:
        raise parse_error
    event_id = locate(spec.event_id, lowered, body, payload, params)
    event_type = locate(spec.event_type, lowered, body, payload, params)
    if event_id in (None, ""):
        raise MalformedDeliveryError(f"webhook {name}: no event id where the spec says ({_describe(spec.event_id)})")
    if event_type in (None, ""):
        raise MalformedDeliveryError(f"webhook {name}: no event type where the spec says ({_describe(spec.event_type)})")
    event_time = None
    if spec.event_time is not None:
        event_time = parse_time(locate(spec.event_time, lowered, body, payload, params), spec.event_time.format)
    subject = locate(spec.subject_id, lowered, body, payload, params) if spec.subject_id else None
    return WebhookDelivery(
        webhook=name,
        event_id=str(event_id),
        event_type=str(event_type),
        event_time=event_time,
        subject_id=None if subject is None else str(subject),
        payload=payload,
        headers={k: v for k, v in lowered.items() if not _is_secret_header(k)},
    )


def _is_secret_header(name: str) -> bool:
    return any(s in name for s in ("authorization", "signature", "hmac", "token", "cookie"))


def _describe(loc: m.Locator) -> str:
    for key in ("header", "body", "query", "constant", "composite"):
        if getattr(loc, key) is not None:
            return f"{key} {getattr(loc, key)}"
    return "hash of the body"


def answer_challenge(
    spec: m.Webhook, *, values: Mapping[str, str], secrets: Mapping[str, str], params: Mapping[str, str]
) -> str:
    """The text to echo for a subscription handshake (WhatsApp ``hub.challenge``), or raise."""
    if spec.challenge is None:
        raise ConfigurationError("this webhook has no subscription handshake")
    ch = spec.challenge
    if params.get(ch.mode_param) != ch.mode:
        raise MissingSignatureError(f"{ch.mode_param} is not {ch.mode}")
    token = _secret(ch.token, values, secrets, "challenge")
    if not _same(params.get(ch.token_param, ""), token):
        raise SignatureMismatchError(f"{ch.token_param} does not match")
    challenge = params.get(ch.challenge_param)
    if not challenge:
        raise MalformedDeliveryError(f"no {ch.challenge_param}")
    return challenge

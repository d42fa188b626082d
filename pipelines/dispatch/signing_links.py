"""The signing link Ponte sends when it invites a signer itself (``notifications.by: ponte``).

Which link, by provider (PROVIDERS.md §3.7; docs/dispatch.md "Which link each signer gets"):

- **DocuSign**: every signer is an *embedded* recipient (``clientUserId`` set at creation, see
  :func:`client_user_id` and ``mappings/docusign/envelope_to_definition.yaml``), so DocuSign sends
  them nothing. Ponte's link is ``<gateway>/sign/<token>``; on each click the gateway checks the token
  and the signer's turn, asks DocuSign for a fresh recipient view and redirects there
  (``orchestration/gateway/sign.py``). A view URL lives minutes and opens once, so it is never what is
  sent.
- **Clicksign**: v3 documents no endpoint that returns a signer's link (UNCONFIRMED in PROVIDERS.md
  §3.7), so there is no link Ponte could send: ``ponte validate`` refuses the combination
  (:func:`link_problems`) and dispatch dead-letters the contract (:func:`require_links`) instead of
  making one up. Clicksign invites its signers itself with ``notifications.by: provider``.

The token is ``base64url(payload ‖ HMAC-SHA256(secret, "ponte/sign/v1" ‖ payload))`` where the
payload holds a version byte, the expiry (epoch seconds), the envelope and signer ids of Ponte's store,
a random nonce and the tenant id. It opens one signer's signing of one envelope until it expires; any
changed byte, another deployment's secret or a past expiry is refused. The secret is the gateway's
``PONTE_SIGNING_LINK_SECRET`` (at least 32 characters, from the environment like every secret; never
in a tenant file), the same on every process that sends invitations or serves ``/sign``;
``PONTE_SIGNING_LINK_SECRET_OLD`` keeps links signed with the previous one opening during a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ponte import ConfigurationError, DataError, looks_random, register_secret
from schemas import TENANT_ID, TenantConfig

SECRET_ENV = "PONTE_SIGNING_LINK_SECRET"
OLD_SECRET_ENV = "PONTE_SIGNING_LINK_SECRET_OLD"
MIN_SECRET_CHARS = 32
VERSION = 1
_DOMAIN = b"ponte/sign/v1\x00"
_HEAD = struct.Struct(">BIQQ4s")  # version, expires (epoch s), envelope id, signer id, nonce
_MAC_BYTES = 32
#: providers whose signers can be sent a link that exists (an embedded recipient view behind it)
LINK_PROVIDERS = frozenset({"docusign"})
#: what the gateway tells DocuSign about how it identified the signer (``authenticationMethod``, printed
#: on the certificate of completion): the signer opened a link only the invited mailbox (``Email``) or
#: phone received; the swagger's list has no value for a phone, so a WhatsApp link says ``None``
#: (Ponte checked nothing but the link; recipient-level checks such as identity verification still run)
AUTHENTICATION_METHOD = {"email": "Email", "whatsapp": "None"}


class BadLink(Exception):
    """A ``/sign`` token that opens nothing: ``reason`` is ``invalid`` (malformed, altered, another
    deployment's) or ``expired``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LinkClaims:
    """What a token says: this signer of this envelope of this tenant may open a view until then."""

    tenant: str
    envelope_id: int
    signer_id: int
    expires_at: datetime


# ------------------------------------------------------------------------------------------- secret

def _secret(env: str, *, required: bool) -> bytes | None:
    value = os.environ.get(env, "")
    if not value:
        if required:
            raise ConfigurationError(
                f"{env} is not set, so no signing link can be made or opened",
                field=env,
                hint=f"set {env} (a random value of at least {MIN_SECRET_CHARS} characters, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`) on every process that "
                "dispatches or back-syncs and on every gateway; see docs/deploy.md",
            )
        return None
    register_secret(value)
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"{env} is too short: a signing-link secret needs at least {MIN_SECRET_CHARS} characters",
            field=env,
            hint="generate a long random value; see docs/deploy.md",
        )
    return value.encode("utf-8")


def signing_secrets() -> list[bytes]:
    """The secrets that open a token: the current one first, then the previous one during a rotation."""
    current = _secret(SECRET_ENV, required=True)
    assert current is not None
    old = _secret(OLD_SECRET_ENV, required=False)
    return [current, *([old] if old and old != current else [])]


# ------------------------------------------------------------------------------------------- tokens

def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def make_token(claims: LinkClaims, *, secret: bytes | None = None) -> str:
    """A token for ``claims``, signed with ``secret`` (default: the current ``PONTE_SIGNING_LINK_SECRET``)."""
    key = secret if secret is not None else signing_secrets()[0]
    tenant = claims.tenant.encode("utf-8")
    expires = int(claims.expires_at.timestamp())
    token = ""
    # the nonce makes every link different; it is drawn again in the rare case the token would not look
    # generated to the log masking (ponte.redaction.looks_random), so a printed path never shows it
    for _ in range(64):
        head = _HEAD.pack(VERSION, max(expires, 0), claims.envelope_id, claims.signer_id, secrets.token_bytes(4))
        payload = head + tenant
        token = _b64(payload + _mac(key, payload))
        if looks_random(token):
            break
    return token


def read_token(token: str, *, now: datetime | None = None, secrets_: list[bytes] | None = None) -> LinkClaims:
    """The claims of a genuine, unexpired token; :class:`BadLink` otherwise. The signature is checked
    first (in constant time), so an altered token says nothing about what it would have opened."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{40,400}", token or ""):
        raise BadLink("invalid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadLink("invalid") from None
    if len(raw) < _HEAD.size + 1 + _MAC_BYTES or _b64(raw) != token:
        raise BadLink("invalid")
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    keys = secrets_ if secrets_ is not None else signing_secrets()
    if not any(hmac.compare_digest(_mac(key, payload), mac) for key in keys):
        raise BadLink("invalid")
    version, expires, envelope_id, signer_id, _nonce = _HEAD.unpack(payload[: _HEAD.size])
    try:
        tenant = payload[_HEAD.size :].decode("utf-8")
    except UnicodeDecodeError:
        raise BadLink("invalid") from None
    if version != VERSION or not re.fullmatch(TENANT_ID, tenant):
        raise BadLink("invalid")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if expires_at <= (now or datetime.now(UTC)):
        raise BadLink("expired")
    return LinkClaims(tenant, envelope_id, signer_id, expires_at)


# -------------------------------------------------------------------------------------- which link

def client_user_id(contract_id: str, role: str) -> str:
    """The embedded recipient's ``clientUserId``, as the DocuSign mapping sets it at creation (the same
    template: ``ponte-<contract id>-<role>``); the view request must repeat it."""
    return f"ponte-{contract_id}-{role}"[:100]


def provider_spec(tenant: TenantConfig, provider: str) -> str:
    """The connector spec behind a signing-provider key (``docusign``, ``clicksign``...)."""
    config = tenant.connectors.get(provider)
    return config.spec if config is not None else provider


@dataclass(frozen=True)
class LinkProblem:
    field: str
    message: str
    hint: str


def _no_link_problem(key: str, spec: str) -> LinkProblem:
    if spec == "clicksign":
        why = (
            "Clicksign's v3 API documents no endpoint that gives a signer's link for Ponte to send "
            "(UNCONFIRMED, PROVIDERS.md §3.7), and Ponte never makes one up"
        )
        hint = (
            "set options.notifications.by: provider (Clicksign invites each signer itself, by the channel "
            "of their signer_chain slot: e-mail or WhatsApp), or sign with docusign"
        )
    else:
        why = f"Ponte has no signing link it could send for {spec}"
        hint = "set options.notifications.by: provider, or sign with docusign"
    return LinkProblem(
        "options.notifications.by",
        f"notifications.by: ponte cannot work with the signing provider {key} ({spec}): {why}",
        hint,
    )


def link_problems(tenant: TenantConfig) -> list[LinkProblem]:
    """Why this tenant's invitations would need a link that does not exist (empty: none would)."""
    if tenant.options.notifications.by != "ponte":
        return []
    key = tenant.options.signing_provider
    spec = provider_spec(tenant, key)
    if spec in LINK_PROVIDERS:
        return []
    return [_no_link_problem(key, spec)]


def require_links(tenant: TenantConfig, record: str | None = None, *, secret: bool = True) -> None:
    """Before an envelope is sent: every signer Ponte will invite can be sent a link that exists.

    A combination without one is a :class:`DataError` on the contract (it is dead-lettered, nothing is
    sent); with DocuSign a missing ``PONTE_SIGNING_LINK_SECRET`` is a ConfigurationError (the run stops
    before sending, rather than after the envelope went out to signers nobody can invite).
    """
    for problem in link_problems(tenant):
        raise DataError(problem.message, tenant=tenant.id, record=record, field=problem.field, hint=problem.hint)
    if secret and tenant.options.notifications.by == "ponte":
        signing_secrets()


def link_expiry(tenant: TenantConfig, deadline: datetime | None, now: datetime | None = None) -> datetime:
    """Until when a link sent now opens: the envelope's deadline, or the tenant's
    ``notifications.signing_link_days`` when that comes first."""
    now = now or datetime.now(UTC)
    end = deadline or now + timedelta(days=tenant.options.envelope_deadline_days)
    days = tenant.options.notifications.signing_link_days
    if days is not None:
        end = min(end, now + timedelta(days=days))
    return end


def signing_link(tenant: TenantConfig, envelope: Any, signer: Any, now: datetime | None = None) -> tuple[str, datetime]:
    """The link to send ``signer`` (a row of ``envelope_signers``) of ``envelope`` (a row of
    ``envelopes``), and until when it opens. Raises DataError when the provider has no such link."""
    spec = provider_spec(tenant, envelope.provider)
    if spec not in LINK_PROVIDERS:
        problem = _no_link_problem(envelope.provider, spec)
        raise DataError(problem.message, tenant=tenant.id, record=f"contract:{envelope.contract_id}",
                        field=problem.field, hint=problem.hint)
    until = link_expiry(tenant, envelope.expires_at, now)
    token = make_token(LinkClaims(tenant.id, int(envelope.id), int(signer.id), until))
    return f"{tenant.options.verification_base_url.rstrip('/')}/sign/{token}", until


__all__ = [
    "AUTHENTICATION_METHOD",
    "BadLink",
    "LinkClaims",
    "LinkProblem",
    "client_user_id",
    "link_expiry",
    "link_problems",
    "make_token",
    "read_token",
    "require_links",
    "signing_link",
    "signing_secrets",
]

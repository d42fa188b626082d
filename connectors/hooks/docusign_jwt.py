"""DocuSign's JWT grant: an RS256-signed assertion exchanged for an access token.

YAML cannot sign a JWT, so this is a hook. Options (templates over values and secrets):
``oauth_base`` (``https://account-d.docusign.com`` in demo), ``integration_key`` (the app's client id),
``user_id`` (the impersonated user's GUID), ``private_key`` (PEM of the RSA key), ``scope``
(default ``signature impersonation``) and ``lifetime_seconds`` (assertion lifetime, default 3600).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt

from connectors.hooks import register_auth
from connectors.runtime.auth import AuthContext, CachedToken, _token_from
from ponte import ConfigurationError, register_secret


class DocusignJwtGrant(CachedToken):
    def __init__(self, options: dict[str, Any], ctx: AuthContext) -> None:
        super().__init__(ctx, margin=300)
        missing = [k for k in ("oauth_base", "integration_key", "user_id", "private_key") if not options.get(k)]
        if missing:
            raise ConfigurationError(
                f"DocuSign JWT grant needs {', '.join(missing)}", hint="add them to the tenant's connector"
            )
        self.options = options
        register_secret(str(options["private_key"]))

    def assertion(self) -> str:
        now = int(self.ctx.clock())
        base = str(self.options["oauth_base"]).rstrip("/")
        claims = {
            "iss": self.options["integration_key"],
            "sub": self.options["user_id"],
            "aud": base.split("://", 1)[-1],
            "iat": now,
            "exp": now + int(self.options.get("lifetime_seconds", 3600)),
            "scope": self.options.get("scope", "signature impersonation"),
            "jti": uuid.uuid4().hex,
        }
        try:
            return jwt.encode(claims, str(self.options["private_key"]), algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"DocuSign private key is not a usable RSA PEM: {type(exc).__name__}",
                field="credentials.private_key",
                hint="paste the RSA private key generated for the integration key, PEM with its header lines",
            ) from None

    def fetch(self) -> tuple[str, float]:
        url = str(self.options["oauth_base"]).rstrip("/") + "/oauth/token"
        request = httpx.Request(
            "POST",
            url,
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self.assertion()},
        )
        token, data = _token_from(self.ctx.send(request), "access_token", "docusign jwt grant")
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime


register_auth("docusign_jwt")(DocusignJwtGrant)


"""Which hosts a URL named in a payload may be fetched from, per provider.

A URL inside a webhook body or a record read from a provider (a Clicksign ``signed_url``, a CV CRM
attachment ``link``) is outside input: even when the payload is authentic, Ponte must not fetch an
arbitrary address on its say-so (server-side request forgery). A URL passes only when its host is the
connector's own configured origin (same scheme, host and port, so the loopback sandbox works) or, over
HTTPS, one of the provider's known file hosts below. Back-sync (signed documents) and assistance
(attachments) both ask here before they download anything.
"""

from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

from connectors.runtime.client import Connector
from ponte.errors import DataError

#: hosts each provider serves files from, besides the connector's own base URL host (HTTPS only)
PROVIDER_HOSTS: dict[str, tuple[str, ...]] = {
    "clicksign": ("*.clicksign.com", "clicksign.com"),
    "docusign": ("*.docusign.net", "*.docusign.com"),
    "cvcrm": ("*.cvcrm.com.br",),
}


def host_of(url: str) -> str:
    """``host[:port]`` of a URL for messages (never the path or query, which may carry tokens)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an unreadable URL"
    if not host:
        return "a URL without a host"
    return f"{host}:{port}" if port else host


def allowed(url: str, connector: Connector) -> bool:
    """Whether ``url`` may be fetched on behalf of ``connector``'s provider."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username or parts.password or not parts.hostname:
        return False
    host = parts.hostname.lower()
    own = urlsplit(connector.base_url)
    if own.hostname and host == own.hostname.lower() and parts.scheme == own.scheme and port == own.port:
        return True
    if parts.scheme != "https":
        return False
    return any(fnmatch.fnmatch(host, pattern) for pattern in PROVIDER_HOSTS.get(connector.name, ()))


def check(url: str, connector: Connector, *, what: str, hint: str) -> None:
    """Raise a :class:`DataError` (the record is dead-lettered) unless ``url`` is one of the provider's hosts.

    ``what`` names the file in the message (``"signed document"``, ``"attachment"``); ``hint`` says
    what a person should do about it.
    """
    if allowed(url, connector):
        return
    own = host_of(connector.base_url)
    others = ", ".join(PROVIDER_HOSTS.get(connector.name, ()))
    hosts = f"{own} or, over HTTPS, {others}" if others else own
    raise DataError(
        f"refusing to download the {what} from {host_of(url)}: not a {connector.name} host "
        f"(allowed: {hosts}); nothing was fetched",
        source=connector.name,
        hint=hint,
        details={"host": host_of(url)},
    )

"""Fetching documents named by URLs in webhook payloads, only from the provider's own hosts.

A webhook body is attacker-reachable input until proven otherwise: even an authentic delivery should
not make Ponte fetch an arbitrary URL (server-side request forgery). A URL is fetched only when its host
is the connector's configured host or one of the provider's known download hosts, over HTTPS (plain
HTTP only for the connector's own configured origin, e.g. the loopback sandbox).
"""

from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

import httpx

from connectors.runtime.client import Connector
from ponte.errors import DataError, TransientError

#: hosts each provider serves signed files from, besides the connector's own base URL host
PROVIDER_DOWNLOAD_HOSTS: dict[str, tuple[str, ...]] = {
    "clicksign": ("*.clicksign.com", "clicksign.com"),
    "docusign": ("*.docusign.net", "*.docusign.com"),
}
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


def allowed(url: str, connector: Connector) -> bool:
    """Whether ``url`` may be fetched on behalf of ``connector``'s provider."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.username or parts.password or not parts.hostname:
        return False
    host = parts.hostname.lower()
    own = urlsplit(connector.base_url)
    if (
        own.hostname
        and host == own.hostname.lower()
        and parts.scheme == own.scheme
        and parts.port == own.port
    ):
        return True
    if parts.scheme != "https":
        return False
    return any(fnmatch.fnmatch(host, pattern) for pattern in PROVIDER_DOWNLOAD_HOSTS.get(connector.name, ()))


def fetch(url: str, connector: Connector, *, timeout: float = 30.0) -> bytes:
    """GET a provider file link after checking its host; redirects are not followed (they could leave)."""
    if not allowed(url, connector):
        raise DataError(
            f"refusing to download from {urlsplit(url).hostname or url!r}: not a {connector.name} host",
            source=connector.name,
            hint="the webhook named a download URL outside the provider's allowed hosts",
        )
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise TransientError(f"download from {connector.name} failed: {type(exc).__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"download from {connector.name} answered {response.status_code}")
    if response.status_code != 200:
        raise DataError(f"download from {connector.name} answered {response.status_code}")
    if len(response.content) > MAX_DOWNLOAD_BYTES:
        raise DataError("the downloaded document is larger than 50 MB")
    return response.content

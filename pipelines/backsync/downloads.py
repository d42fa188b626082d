"""Fetching documents named by URLs in webhook payloads, only from the provider's own hosts.

A webhook body is attacker-reachable input until proven otherwise: even an authentic delivery should
not make Ponte fetch an arbitrary URL (server-side request forgery). Which hosts pass is decided in
:mod:`pipelines.allowed_hosts` (the connector's own origin, or the provider's known download hosts over
HTTPS), shared with the assistance flow's attachment downloads; redirects are not followed.
"""

from __future__ import annotations

import httpx

from connectors.runtime.client import Connector
from pipelines import allowed_hosts
from ponte.errors import DataError, TransientError

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


def fetch(url: str, connector: Connector, *, timeout: float = 30.0) -> bytes:
    """GET a provider file link after checking its host; redirects are not followed (they could leave)."""
    allowed_hosts.check(
        url,
        connector,
        what="signed document",
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

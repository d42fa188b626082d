"""The signed document of a completed envelope, fetched from the provider. Rule: **reads are the truth**.

A download link carried by a webhook (Clicksign's ``document.signed_url``) is a hint, never the truth:
even an authentic delivery may carry a link that has expired, that points at a host Ponte must not
fetch from, or that does not answer. So the hint is tried once, through the connector runtime's one
download path (:meth:`Connector.fetch_url`: the provider's hosts only, on every redirect hop, size
capped while streaming); when it fails in any way, back-sync forgets it and asks the provider's API for
the document's current signed-file link (``GET /envelopes/{id}/documents``, ``links.files.signed``;
../shared/specs/clicksign collection, "Documents"), which is fetched the same way. A poisoned hint can
therefore delay a completion by one failed request, never block it: no poll or replay tries it again.

DocuSign has no link to hint at: its combined PDF and certificate are API downloads
(``GET /envelopes/{id}/documents/combined``, PROVIDERS.md §3.1 "Download").

A provider described in YAML alone (its spec's ``signing`` section) is treated as Clicksign: the
webhook's link (``signing.download.webhook_hint``) is a hint tried once, and the truth is the link at
``signing.download.from_status`` in a status read, fetched the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from connectors.runtime import Connector, dig
from pipelines.store.db import Store
from pipelines.store.models import Envelope
from ponte import DataError, PonteError, TransientError, get_logger

log = get_logger("backsync.downloads")

#: details keys: the links webhooks named (newest last), and digests of those that failed (never tried again)
HINTS = "download_urls"
FAILED_HINTS = "failed_download_urls"


def signed_document(store: Store, envelope: Envelope, provider: Connector) -> tuple[bytes, bytes | None]:
    """The signed PDF and the provider's certificate (None when the provider has no separate one)."""
    eid = str(envelope.provider_envelope_id)
    if provider.name == "docusign":
        combined = provider.download("download_combined", envelope_id=eid)
        certificate = provider.download("download_certificate", envelope_id=eid)
        return combined, certificate
    if provider.name == "clicksign":
        return _clicksign(store, envelope, provider), None
    signing = getattr(provider.spec, "signing", None)  # a provider described in YAML alone
    if signing is not None and signing.download is not None and signing.status is not None:
        return _hinted(store, envelope, provider, lambda: status_links(provider, signing, eid)), None
    raise DataError(
        f"back-sync cannot download signed documents from {provider.name}",
        source=provider.name,
        hint="back-sync supports docusign and clicksign",
    )


def _clicksign(store: Store, envelope: Envelope, provider: Connector) -> bytes:
    return _hinted(store, envelope, provider, lambda: current_links(provider, str(envelope.provider_envelope_id)))


def _hinted(store: Store, envelope: Envelope, provider: Connector, current: Callable[[], list[str]]) -> bytes:
    """The newest webhook link not known to fail, tried once; else the link the provider's API gives now."""
    details = envelope.details or {}
    failed = set(details.get(FAILED_HINTS) or [])
    hints = [u for u in details.get(HINTS) or [] if _digest(str(u)) not in failed]
    if hints:
        hint = str(hints[-1])
        try:
            return provider.fetch_url(hint, what="signed document")
        except PonteError as exc:
            log.warning(
                "envelope %s: the signed-file link a webhook named failed (%s: %s); asking %s for the "
                "current link",
                envelope.id, exc.kind, exc.message, provider.name,
            )
            _forget(store, envelope.id, hint)
    links = current()
    if not links:
        raise TransientError(
            f"{provider.name} has no signed file for envelope {envelope.provider_envelope_id} yet",
            source=provider.name,
        )
    return provider.fetch_url(links[-1], what="signed document")


def current_links(provider: Connector, provider_envelope_id: str) -> list[str]:
    """The signed-file links the provider's API gives now for each document of the envelope."""
    links = []
    for doc in provider.read("documents", params={"envelope_id": provider_envelope_id}):
        signed = ((doc.get("links") or {}).get("files") or {}).get("signed")
        if signed:
            links.append(str(signed))
    return links


def status_links(provider: Connector, signing: Any, provider_envelope_id: str) -> list[str]:
    """The signed-file link of a spec-described provider: ``signing.download.from_status`` in a status
    read (none while the provider has not produced the file)."""
    body = provider.read_one(signing.status.stream, provider_envelope_id)
    link = dig(body, signing.download.from_status)
    return [str(link)] if link else []


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _forget(store: Store, envelope_id: int, url: str) -> None:
    """A link that failed is never tried again (its digest is kept: the link itself may be a capability)."""
    with store.session() as session:
        row = session.get(Envelope, envelope_id)
        if row is None:
            return
        details = dict(row.details or {})
        failed = list(details.get(FAILED_HINTS) or [])
        if _digest(url) not in failed:
            details[FAILED_HINTS] = [*failed, _digest(url)][-20:]
        row.details = details

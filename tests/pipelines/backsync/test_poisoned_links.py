"""A webhook's download link is a hint: a poisoned one cannot block back-sync (reads are the truth).

Found as an attacker would: an authentic Clicksign completion whose ``document.signed_url`` pointed at a
foreign host, or at a link that no longer answers, made the download fail and left the envelope
``completed`` with that link remembered; every poll and replay tried it again and failed the same way.
Now the link is tried once through the runtime's download path; when it fails, back-sync asks the
Clicksign API for the document's current signed-file link, and the signed PDF reaches the CRM once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from pipelines.backsync.flow import drain_inbox, poll_stale, sync_contract
from pipelines.store import deadletters
from pipelines.store.models import Envelope
from tests.connectors.loopback import Loopback, Reply
from tests.pipelines.backsync.conftest import Hub
from tests.pipelines.backsync.helpers import crm_contracts, send_envelope


@pytest.fixture
def foreign() -> Iterator[Loopback]:
    with Loopback() as server:
        server.route("GET", "/signed.pdf", Reply(200, b"%PDF-1.7 an attacker's contract"))
        yield server


def _completion(hub: Hub, provider_envelope_id: str, signed_url: str) -> tuple[bytes, dict[str, str]]:
    """An authentic ``auto_close`` delivery, as Clicksign shapes and signs it, naming ``signed_url``."""
    env = hub.sb.state.clicksign.envelopes[provider_envelope_id]
    docs = [{"id": d["id"], "filename": d["attributes"]["filename"], "status": "closed",
             "metadata": d["attributes"]["metadata"], "signed_url": signed_url}
            for d in env["documents"].values()]
    body = json.dumps({
        "event": {"name": "auto_close", "occurred_at": "2026-12-05T10:00:00.000-03:00", "data": {}},
        "envelope": {"id": provider_envelope_id, "name": env["attributes"]["name"], "status": "closed",
                     "metadata": env["attributes"]["metadata"]},
        "document": docs[0], "documents": docs,
    }).encode()
    secret = hub.sb.config.clicksign_webhook_secret
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "event": "auto_close", "content-hmac": f"sha256={signature}"}


def _deliver(hub: Hub, body: bytes, headers: dict[str, str]) -> None:
    response = httpx.post(f"{hub.url}/webhooks/{hub.tenant.id}/clicksign/events", content=body,
                          headers={**headers, "x-delivery": uuid.uuid4().hex})
    assert response.status_code in (200, 202, 204), response.text


def _drain(hub: Hub) -> None:
    for _ in range(10):
        if drain_inbox(hub.store, hub.tenant, hub.opener).events == 0:
            return


@pytest.mark.parametrize("poison", ["foreign host", "dead link on the provider's host"])
def test_a_poisoned_signed_url_does_not_block_the_signed_pdf(hub: Hub, foreign: Loopback, poison: str) -> None:
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="clicksign", signers=2)
    hub.sb.set_faults("clicksign", {"webhook_loss_rate": 1.0})  # only our delivery arrives
    hub.sb.sign(env.provider_envelope_id, "1")
    hub.sb.sign(env.provider_envelope_id, "2")
    url = (f"{foreign.url}/signed.pdf" if poison == "foreign host"
           else f"{hub.sb.urls['clicksign']}/files/{uuid.uuid4().hex}")  # expired: the provider answers 404

    _deliver(hub, *_completion(hub, env.provider_envelope_id, url))
    _drain(hub)

    with hub.store.session() as session:
        done = session.get(Envelope, env.id)
        assert done is not None
        assert done.status == "completed" and done.signed_sha256
        assert done.details["crm"]["sha256"] == done.signed_sha256
    assert foreign.received == []  # nothing was ever fetched from the foreign host
    contracts = crm_contracts(hub.sb, done.details["reservation_id"])
    assert len(contracts) == 1 and contracts[0]["assinado"] == "S"
    crm_pdf = httpx.get(contracts[0]["link"]).content
    assert b"an attacker's contract" not in crm_pdf
    assert deadletters.list_open(hub.store, hub.tenant.id, "backsync") == []

    # the same poisoned delivery again, a poll and a manual sync: nothing more reaches the CRM
    _deliver(hub, *_completion(hub, env.provider_envelope_id, url))
    _drain(hub)
    poll_stale(hub.store, hub.tenant, hub.opener)
    sync_contract(hub.store, hub.tenant, env.contract_id, hub.opener)
    assert len(crm_contracts(hub.sb, done.details["reservation_id"])) == 1
    assert foreign.received == []


def test_a_link_that_failed_is_remembered_by_digest(hub: Hub) -> None:
    """So no later poll or replay tries it again, and the capability link is not kept a second time."""
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="clicksign", signers=1)
    hub.sb.set_faults("clicksign", {"webhook_loss_rate": 1.0})
    hub.sb.sign(env.provider_envelope_id, "1")
    dead = f"{hub.sb.urls['clicksign']}/files/{uuid.uuid4().hex}"
    _deliver(hub, *_completion(hub, env.provider_envelope_id, dead))
    _drain(hub)
    with hub.store.session() as session:
        row = session.get(Envelope, env.id)
        assert row is not None and row.details["crm"]["sha256"] == row.signed_sha256
        assert len(row.details["failed_download_urls"]) == 1
        assert dead not in json.dumps(row.details["failed_download_urls"])  # a digest, not the link

"""End to end over the sandbox and real HTTP: dispatch → signers sign in order → webhooks arrive at the
gateway (duplicated, out of order, some lost) → back-sync → the CRM holds the stamped signed PDF, whose
QR code (decoded by an independent renderer) opens a verification page with the stored file's SHA-256."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from connectors.sandbox.signing import Evidence
from pipelines.backsync.flow import drain_inbox, poll_stale, sync_contract
from pipelines.store.models import AuditEntry, Envelope, InboxEvent
from tests.pipelines.backsync.conftest import Hub
from tests.pipelines.backsync.helpers import crm_contracts, send_envelope


def _settle(hub: Hub, system: str, *, final_events: int) -> None:
    """Wait until the sandbox has delivered (or decided to lose) ``final_events`` distinct events."""
    hub.sb.dispatcher.wait_for(
        lambda attempts: len({a.event_id for a in attempts if a.system == system
                              and a.outcome in ("delivered", "lost", "failed")}) >= final_events,
        timeout=15,
    )


def _drain(hub: Hub) -> None:
    for _ in range(10):
        if drain_inbox(hub.store, hub.tenant, hub.opener).events == 0:
            return


def _envelope(hub: Hub, envelope_id: int) -> Envelope:
    with hub.store.session() as session:
        env = session.get(Envelope, envelope_id)
        assert env is not None
        env.signers  # noqa: B018 - load before the session closes
        return env


def _qr_urls(pdf: bytes) -> list[list[str]]:
    doc = pdfium.PdfDocument(pdf)
    return [[b.text for b in zxingcpp.read_barcodes(doc[i].render(scale=2).to_pil())] for i in range(len(doc))]


def test_docusign_chain_with_duplicate_and_reordered_webhooks_ends_signed_in_the_crm(hub: Hub) -> None:
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=2)
    hub.sb.set_faults("docusign", {"webhook_duplicate_rate": 0.6, "webhook_reorder_window_ms": 150, "seed": 3})
    hub.sb.sign(env.provider_envelope_id, "client")
    _settle(hub, "docusign", final_events=6)
    _drain(hub)
    mid = _envelope(hub, env.id)
    assert {s.role: s.status for s in mid.signers}["client"] == "signed"
    assert mid.status in ("sent", "delivered")
    hub.sb.sign(env.provider_envelope_id, "spouse")
    # 2 signers: envelope-sent, 2x(recipient-sent, -delivered, -completed), envelope-delivered, -completed
    _settle(hub, "docusign", final_events=9)
    _drain(hub)

    done = _envelope(hub, env.id)
    assert done.status == "completed"
    assert [s.status for s in done.signers] == ["signed", "signed"]
    with hub.store.session() as session:
        duplicates = sum(e.duplicates for e in session.scalars(select(InboxEvent)))
    assert duplicates > 0  # the faults really duplicated deliveries, and they were stored once

    # the CRM got the stamped PDF once, marked signed
    contracts = crm_contracts(hub.sb, done.details["reservation_id"])
    assert len(contracts) == 1 and contracts[0]["assinado"] == "S"
    crm_pdf = httpx.get(contracts[0]["link"]).content
    stored = Path(str(done.signed_path)).read_bytes()
    assert hashlib.sha256(crm_pdf).hexdigest() == hashlib.sha256(stored).hexdigest() == done.signed_sha256

    # every page of the contract (not the certificate) carries a QR code with the verification URL
    url = f"{hub.url}/verify/{done.verification_code}"
    pages = _qr_urls(stored)
    assert all(found == [url] for found in pages[: done.details["final"]["pages"][-1]])
    assert pages[-1] == []  # DocuSign's certificate of completion is left as it is

    # the QR link opens the page, which shows the same SHA-256 and masked CPFs only
    page = httpx.get(url)
    assert page.status_code == 200 and done.signed_sha256 in page.text
    assert "529.982.247-25" not in page.text and "52998224725" not in page.text and "***.***.***-25" in page.text
    proof = httpx.get(f"{url}.json").json()
    assert proof["sha256"] == done.signed_sha256 and proof["valid"] is True
    assert httpx.post(f"{url}/check", content=stored).json()["matched"] == "stamped"
    assert httpx.post(f"{url}/check", content=stored + b"\n").json()["matches"] is False
    # the provider's own sealed file proves the document too: the stamped file begins with its bytes
    original = stored[: done.details["final"]["provider_bytes"]]
    assert hashlib.sha256(original).hexdigest() == proof["provider_sha256"] != proof["sha256"]
    assert httpx.post(f"{url}/check", content=original).json()["matched"] == "provider"
    assert proof["provider_sha256"] in page.text

    # running everything again changes nothing and uploads nothing
    assert poll_stale(hub.store, hub.tenant, hub.opener).completed == []
    assert sync_contract(hub.store, hub.tenant, env.contract_id, hub.opener).message.endswith("(2/2 signers)")
    assert len(crm_contracts(hub.sb, done.details["reservation_id"])) == 1


def test_lost_webhooks_are_recovered_by_polling(hub: Hub) -> None:
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=2)
    hub.sb.set_faults("docusign", {"webhook_loss_rate": 1.0})
    hub.sb.sign(env.provider_envelope_id, "client")
    hub.sb.sign(env.provider_envelope_id, "spouse")
    _drain(hub)
    assert _envelope(hub, env.id).status == "sent"  # nothing arrived
    # not quiet long enough yet: the poll leaves it alone (providers cap polling)
    from datetime import timedelta
    assert poll_stale(hub.store, hub.tenant, hub.opener, quiet_for=timedelta(hours=1)).envelopes_synced == 0
    report = poll_stale(hub.store, hub.tenant, hub.opener, quiet_for=timedelta(0))
    assert report.completed == [env.contract_id]
    done = _envelope(hub, env.id)
    assert done.status == "completed" and done.signed_sha256
    assert crm_contracts(hub.sb, done.details["reservation_id"])[0]["assinado"] == "S"


def test_manual_sync_says_still_pending_then_brings_the_signature_home(hub: Hub) -> None:
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=2)
    hub.sb.set_faults("docusign", {"webhook_loss_rate": 1.0})
    first = sync_contract(hub.store, hub.tenant, env.contract_id, hub.opener)
    assert first.pending and "still pending" in first.message and "0/2" in first.message
    hub.sb.sign(env.provider_envelope_id, "client")
    second = sync_contract(hub.store, hub.tenant, env.contract_id, hub.opener)
    assert second.pending and "1/2" in second.message
    hub.sb.sign(env.provider_envelope_id, "spouse")
    third = sync_contract(hub.store, hub.tenant, env.contract_id, hub.opener)
    assert not third.pending and third.report.completed == [env.contract_id]
    assert crm_contracts(hub.sb, _envelope(hub, env.id).details["reservation_id"])[0]["assinado"] == "S"


#: what each signer leaves at signing (distinct per signer, so a mix-up between signers shows)
LEFT = {
    "client": Evidence(ip="200.160.2.3", latitude=-23.5613, longitude=-46.6565,
                       device="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1",
                       selfie_ref="sandbox://evidence/client/selfie.jpg",
                       document_photo_ref="sandbox://evidence/client/documento.jpg"),
    "spouse": Evidence(ip="177.71.4.9", latitude=-27.6012, longitude=-48.5217,
                       device="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/128.0 Safari/537.36",
                       selfie_ref="sandbox://evidence/spouse/selfie.jpg",
                       document_photo_ref="sandbox://evidence/spouse/documento.jpg"),
}


@pytest.mark.parametrize(("provider", "final_events"), [
    ("clicksign", 4),  # upload, sign, sign, auto_close (any order)
    ("docusign", 9),   # envelope-sent, 2x(recipient-sent, -delivered, -completed), envelope-delivered, -completed
])
def test_each_signers_evidence_lands_in_the_audit_log_on_completion(
    hub: Hub, provider: str, final_events: int
) -> None:
    """Clicksign sends the evidence in its webhooks; DocuSign's comes from the envelope's audit events
    (the connector's ``audit_events`` stream), read once the envelope is completed."""
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider=provider, signers=2, pages=2)
    hub.sb.set_faults(provider, {"webhook_duplicate_rate": 0.5, "webhook_reorder_window_ms": 100, "seed": 9})
    hub.sb.sign(env.provider_envelope_id, "1", evidence=LEFT["client"])
    hub.sb.sign(env.provider_envelope_id, "2", evidence=LEFT["spouse"])
    _settle(hub, provider, final_events=final_events)
    _drain(hub)
    done = _envelope(hub, env.id)
    assert done.status == "completed" and done.signed_sha256
    role_of = {s.id: s.role for s in done.signers}
    with hub.store.session() as session:
        evidence = {role_of[int(a.entity_id)]: a.details for a in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "signer_evidence"))}
    assert sorted(evidence) == ["client", "spouse"]
    for role, item in evidence.items():
        left = LEFT[role]
        assert (item["ip"], item["device"]) == (left.ip, left.device), role
        assert (item["latitude"], item["longitude"]) == (left.latitude, left.longitude), role
        assert item["status"] == "signed" and item["signed_at"]
        # personal data stays masked in the audit log too
        assert item["document"].startswith("***") and "***@" in item["email"]
        if provider == "clicksign":  # DocuSign keeps selfies out of its audit events (its certificate has them)
            assert (item["selfie_ref"], item["document_photo_ref"]) == (left.selfie_ref, left.document_photo_ref)
        else:
            assert item["certificate_sha256"] == done.details["final"]["certificate_sha256"]
    stored = Path(str(done.signed_path)).read_bytes()
    url = f"{hub.url}/verify/{done.verification_code}"
    assert all(found == [url] for found in _qr_urls(stored)[:2])
    contracts = crm_contracts(hub.sb, done.details["reservation_id"])
    assert [c["assinado"] for c in contracts] == ["S"]


def test_a_refusal_declines_the_envelope_and_nothing_is_uploaded(hub: Hub) -> None:
    env = send_envelope(hub.sb, hub.store, hub.tenant, provider="docusign", signers=2)
    hub.sb.sign(env.provider_envelope_id, "client")
    hub.sb.sign(env.provider_envelope_id, "spouse", action="refuse")
    _settle(hub, "docusign", final_events=8)
    time.sleep(0.2)
    _drain(hub)
    done = _envelope(hub, env.id)
    assert done.status == "declined"
    assert {s.role: s.status for s in done.signers} == {"client": "signed", "spouse": "declined"}
    assert crm_contracts(hub.sb, done.details["reservation_id"]) == []
    assert "declined" in sync_contract(hub.store, hub.tenant, env.contract_id, hub.opener).message

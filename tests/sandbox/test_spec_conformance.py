"""Each signing and notification stand-in, driven through one whole flow by Ponte's own code (mapping,
connector spec, dispatch step), answers and calls back the way the vendor's spec says.

Every exchange is captured at the stand-in (tests/support/spec_capture.py) and checked by
tests/support/vendor_specs.py: DocuSign answers against the eSignature swagger (``envelopeSummary``
for a create, ``envelope`` for a read, ``envelopesInformation``, ``EnvelopeRecipients``,
``envelopeAuditEventResponse``, ``errorDetails``...) and Connect messages against DocuSign's Connect
sample (connect.schema-v2.json); Clicksign answers against the collection (JSON:API resources of the
path's type, the attribute names the collection writes); WhatsApp's send answer against
``MessageResponsePayload`` and its status webhooks against ``WebhookPayload``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors.sandbox import Sandbox
from connectors.sandbox.documents import text_pdf
from mappings import MappingContext
from pipelines.connections import open_connector
from pipelines.dispatch.documents import Document
from pipelines.dispatch.notify import _whatsapp_record
from pipelines.dispatch.providers import send_clicksign, send_docusign
from pipelines.store import Store, open_store
from pipelines.store.models import Envelope as EnvelopeRow
from pipelines.store.models import EnvelopeSigner
from schemas.canonical.signing import Envelope, SignaturePosition, Signer
from tests.pipelines.dispatch.support import cpf
from tests.support.spec_capture import SpecCapture, capturing
from tests.support.tenants import sandbox_tenant

from .conftest import CLICKSIGN_HEADERS, DOCUSIGN_HEADERS

ROLES = ("client", "spouse", "witness")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    try:
        yield opened
    finally:
        opened.dispose()


def _envelope(provider: str, contract: str, pdf: bytes) -> tuple[Envelope, Document]:
    sha = hashlib.sha256(pdf).hexdigest()
    signers = [Signer(role=role, routing_order=order, name=f"{role.title()} Teste da Silva", document=cpf(40 + order),
                      email=f"{role}.{contract}@example.com") for order, role in enumerate(ROLES, start=1)]
    positions = [SignaturePosition(role=s.role, page=1, x=420 - 170 * i, y=760, width=160, height=48)
                 for i, s in enumerate(signers)]
    envelope = Envelope(tenant="demo", contract_id=contract, provider=provider, document_name=f"Contrato {contract}.pdf",
                        document_sha256=sha, idempotency_key=f"demo:contract:{contract}:{sha}", signers=signers,
                        positions=positions, expires_in_days=30, email_subject=f"Contrato {contract}")
    return envelope, Document(f"Contrato {contract}.pdf", pdf, 1, (595.28, 841.89), "crm_pdf")


def _pdf(contract: str) -> bytes:
    return text_pdf(f"Contrato {contract}", ["Cláusula 1: objeto.", "Cláusula 2: preço."])


def _delivered(sb: Sandbox, system: str, count: int) -> None:
    """Wait until the stand-in has recorded ``count`` delivered webhooks (the sink sees them first)."""
    sb.dispatcher.wait_for(lambda attempts: sum(a.system == system and a.outcome == "delivered"
                                                for a in attempts) >= count, timeout=20)


def _conforms(capture: SpecCapture, **at_least: int) -> None:
    capture.drain()
    assert [str(v) for v in capture.found] == [], "the stand-in drifted from the vendor's spec"
    for label, count in at_least.items():
        name = label.replace("_", " ")
        assert capture.checked[name] >= count, f"only {capture.checked[name]} {name}: {dict(capture.checked)}"


def test_docusign_answers_and_connect_messages_follow_docusigns_spec(fresh: Sandbox, store: Store) -> None:
    tenant = sandbox_tenant(fresh, unthrottled=True)
    ctx = MappingContext(tenant=tenant)
    with capturing("docusign flow") as capture, open_connector(tenant, "docusign") as conn:
        conn.register_webhook("connect", fresh.sink.url("ds-spec"))
        ids = {}
        for contract in ("901", "902", "903"):
            envelope, document = _envelope("docusign", contract, _pdf(contract))
            ids[contract] = send_docusign(store, conn, envelope, document, ctx, worker="test").provider_envelope_id
        for role in ROLES:  # 901 completes, signer after signer
            fresh.sign(ids["901"], role)
        fresh.sign(ids["902"], "client", action="refuse")  # 902 is declined
        conn.call("void_envelope", {"envelope_id": ids["903"], "reason": "Contrato substituído"})  # 903 voided
        # the reads back-sync makes
        assert len(list(conn.read("envelopes", params={"from_date": "2000-01-01"}))) == 3
        assert conn.read_one("envelopes", ids["901"])["status"] == "completed"
        assert [r["status"] for r in conn.read("recipients", params={"envelope_id": ids["901"]})] == ["completed"] * 3
        assert list(conn.read("audit_events", params={"envelope_id": ids["901"]}))
        assert conn.download("download_combined", envelope_id=ids["901"]).startswith(b"%PDF")
        api = fresh.api["docusign"]
        for suffix in ("documents", "custom_fields", "recipients?include_tabs=true"):
            assert httpx.get(f"{api}/envelopes/{ids['901']}/{suffix}", headers=DOCUSIGN_HEADERS).status_code == 200
        assert httpx.get(f"{api}/envelopes?envelope_ids={ids['902']}&include=recipients,custom_fields",
                         headers=DOCUSIGN_HEADERS).status_code == 200
        assert httpx.get(f"{api}/connect", headers=DOCUSIGN_HEADERS).status_code == 200
        assert httpx.get(f"{api}/envelopes/nope", headers=DOCUSIGN_HEADERS).status_code == 404
        # every Connect message: 901 sent, 3 x (recipient sent, delivered, completed), delivered, completed;
        # 902 sent, recipient sent, delivered, declined (x2); 903 sent, recipient sent, voided
        received = fresh.sink.wait_for("ds-spec", 12 + 6 + 3, timeout=20)
        _delivered(fresh, "docusign", 12 + 6 + 3)
    events = {r.json()["event"] for r in received}
    assert {"envelope-sent", "envelope-delivered", "envelope-completed", "envelope-declined", "envelope-voided",
            "recipient-sent", "recipient-delivered", "recipient-completed", "recipient-declined"} <= events
    _conforms(capture, docusign_request_bodies=5, docusign_responses=15, docusign_webhook_bodies=21)


def test_clicksign_answers_follow_the_collection(fresh: Sandbox, store: Store) -> None:
    tenant = sandbox_tenant(fresh, unthrottled=True, options={"signing_provider": "clicksign"})
    ctx = MappingContext(tenant=tenant)
    hook = httpx.post(f"{fresh.api['clicksign']}/webhooks", headers=CLICKSIGN_HEADERS, json={"data": {
        "type": "webhooks", "attributes": {"endpoint": fresh.sink.url("cs-spec"), "events": []}}})
    assert hook.status_code == 201
    with capturing("clicksign flow") as capture, open_connector(tenant, "clicksign") as conn:
        envelope, document = _envelope("clicksign", "911", _pdf("911"))
        created = send_clicksign(store, conn, envelope, document, ctx, provider_notifies=True, worker="test")
        eid = created.provider_envelope_id
        for role in ROLES:
            fresh.sign(eid, created.recipient_ids[role], provider="clicksign")
        # the reads back-sync and the outbox's look-ups make
        params = {"envelope_id": eid}
        assert [e["id"] for e in conn.read("envelopes", params={"name": "Contrato 911"})] == [eid]
        assert conn.read_one("envelopes", eid)["attributes"]["status"] == "closed"
        assert len(list(conn.read("documents", params=params))) == 1
        assert len(list(conn.read("signers", params=params))) == 3
        assert len(list(conn.read("requirements", params=params))) >= 6
        assert list(conn.read("events", params=params))
        fresh.sink.wait_for("cs-spec", 1 + 3 + 1)  # upload, 3 x sign, auto_close
        _delivered(fresh, "clicksign", 1 + 3 + 1)
    # the collection has no webhook schema: Clicksign's callbacks are counted as unchecked, not passed
    capture.drain()
    assert capture.unchecked["webhook clicksign sign"] == 3
    _conforms(capture, clicksign_request_bodies=13, clicksign_responses=15)


def test_whatsapp_send_answer_and_status_webhooks_follow_metas_spec(fresh: Sandbox) -> None:
    tenant = sandbox_tenant(fresh, unthrottled=True)
    httpx.post(f"{fresh.urls['whatsapp']}/_sandbox/webhook", json={"url": fresh.sink.url("wa-spec")})
    with capturing("whatsapp flow") as capture, open_connector(tenant, "whatsapp") as conn:
        sent = []
        for phone in ("+5548991234567", "+5548990000000"):  # the second is not on WhatsApp: failed
            signer = EnvelopeSigner(role="client", routing_order=1, name="Maria Teste da Silva", phone=phone,
                                    channel="whatsapp")
            record = _whatsapp_record(tenant, EnvelopeRow(details={}), signer, "https://assinar.example.com/s/921")
            sent.append(conn.call("send_template", record).id)
        fresh.whatsapp.set_status(sent[0], "read")
        received = fresh.sink.wait_for("wa-spec", 4)  # sent, delivered, read; failed
        _delivered(fresh, "whatsapp", 4)
    statuses = [r.json()["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] for r in received]
    assert sorted(statuses) == ["delivered", "failed", "read", "sent"]
    _conforms(capture, whatsapp_request_bodies=2, whatsapp_responses=2, whatsapp_webhook_bodies=4)

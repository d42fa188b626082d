"""Driven signers: routing order / groups, the providers' webhook sequences, signatures, real PDFs."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from connectors.sandbox import Evidence, Sandbox
from connectors.sandbox.base import ApiError
from connectors.sandbox.documents import page_count

from .conftest import CLICKSIGN_HEADERS, DOCUSIGN_HEADERS, pdf_b64
from .test_fidelity import _envelope_body


def test_docusign_routing_order_and_connect_sequence(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["docusign"], headers=DOCUSIGN_HEADERS)
    client.post("/connect", json={"urlToPublishTo": fresh.sink.url("ds"), "allUsers": "true", "events": []})
    eid = client.post("/envelopes", json=_envelope_body("chain-1", signers=3)).json()["envelopeId"]
    statuses = [s["status"] for s in client.get(f"/envelopes/{eid}/recipients").json()["signers"]]
    assert statuses == ["sent", "created", "created"]  # only routing order 1 is invited
    with pytest.raises(ApiError) as early:
        fresh.sign(eid, "conjuge")
    assert early.value.status == 409
    refused_http = httpx.post(f"{fresh.urls['docusign']}/_sandbox/envelopes/{eid}/act",
                              json={"as": "testemunha", "action": "sign"})
    assert refused_http.status_code == 409 and refused_http.json()["errorCode"] == "RECIPIENT_NOT_IN_SEQUENCE"

    evidence = Evidence(ip="200.1.2.3", latitude=-23.55, longitude=-46.63, selfie_ref="s3://selfie.jpg",
                        document_photo_ref="s3://rg.jpg")
    fresh.sign(eid, "cliente", evidence=evidence)
    assert [s["status"] for s in client.get(f"/envelopes/{eid}/recipients").json()["signers"]] == \
        ["completed", "sent", "created"]
    fresh.sign(eid, "2")
    fresh.sign(eid, "signer3@example.com")
    received = fresh.sink.wait_for("ds", 12)
    events = [(r.json()["event"], r.json()["data"].get("recipientId")) for r in received]
    assert events == [
        ("envelope-sent", None), ("recipient-sent", "1"),
        ("recipient-delivered", "1"), ("envelope-delivered", None), ("recipient-completed", "1"),
        ("recipient-sent", "2"), ("recipient-delivered", "2"), ("recipient-completed", "2"),
        ("recipient-sent", "3"), ("recipient-delivered", "3"), ("recipient-completed", "3"),
        ("envelope-completed", None),
    ]
    for r in received:
        digest = hmac.new(b"docusign-connect-secret", r.body, hashlib.sha256).digest()
        assert r.headers["x-docusign-signature-1"] == base64.b64encode(digest).decode()
    assert client.get(f"/envelopes/{eid}").json()["status"] == "completed"

    combined = client.get(f"/envelopes/{eid}/documents/combined")
    assert combined.headers["content-type"] == "application/pdf"
    assert "filename=" in combined.headers["content-disposition"]
    assert page_count(combined.content) == 2  # the contract plus the certificate
    certificate = client.get(f"/envelopes/{eid}/documents/certificate").content
    assert certificate.startswith(b"%PDF-")
    audit = client.get(f"/envelopes/{eid}/audit_events").json()["auditEvents"]
    signed = [dict((f["name"], f["value"]) for f in e["eventFields"]) for e in audit]
    assert any(e["Action"] == "Signed" and e["ClientIPAddress"] == "200.1.2.3" for e in signed)


def test_docusign_refuse_expire_and_void(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["docusign"], headers=DOCUSIGN_HEADERS)
    declined = client.post("/envelopes", json=_envelope_body("refuse-1")).json()["envelopeId"]
    fresh.sign(declined, "cliente", action="refuse", evidence=Evidence(reason="Valor errado"))
    body = client.get(f"/envelopes/{declined}", params={"include": "recipients"}).json()
    assert body["status"] == "declined" and body["recipients"]["signers"][0]["declinedReason"] == "Valor errado"
    expired = client.post("/envelopes", json=_envelope_body("expire-1")).json()["envelopeId"]
    fresh.sign(expired, "cliente", action="expire")
    assert client.get(f"/envelopes/{expired}").json()["status"] == "voided"
    draft = client.post("/envelopes", json={**_envelope_body("draft-1"), "status": "created"}).json()
    assert draft["status"] == "created"
    assert client.put(f"/envelopes/{draft['envelopeId']}", json={"status": "sent"}).status_code == 200
    assert client.put(f"/envelopes/{draft['envelopeId']}", json={"status": "voided"}).status_code == 400
    assert client.put(f"/envelopes/{draft['envelopeId']}",
                      json={"status": "voided", "voidedReason": "Reenviado"}).status_code == 200


def test_docusign_validation(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["docusign"], headers=DOCUSIGN_HEADERS)
    body = _envelope_body("bad")
    body["recipients"]["signers"][0]["email"] = "not-an-email"
    assert client.post("/envelopes", json=body).json()["errorCode"] == "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT"
    body = _envelope_body("bad")
    body["recipients"]["signers"][0]["tabs"]["signHereTabs"][0]["documentId"] = "9"
    assert client.post("/envelopes", json=body).json()["errorCode"] == "TAB_REFERS_TO_MISSING_DOCUMENT"
    body = _envelope_body("bad")
    body["documents"][0]["documentBase64"] = base64.b64encode(b"not a pdf").decode()
    assert client.post("/envelopes", json=body).status_code == 400
    assert client.get("/envelopes").json()["errorCode"] == "INVALID_REQUEST_PARAMETER"


def _clicksign_envelope(client: httpx.Client, sink_url: str | None = None) -> tuple[str, list[str]]:
    if sink_url:
        client.post("/webhooks", json={"data": {"type": "webhooks", "attributes": {"endpoint": sink_url}}})
    env = client.post("/envelopes", json={"data": {"type": "envelopes", "attributes": {
        "name": "Contrato 001/000123", "locale": "pt-BR", "auto_close": True, "remind_interval": 3,
        "block_after_refusal": True, "deadline_at": "2026-12-31T00:00:00.000-03:00",
        "metadata": {"ponte_key": "cs-1"}}}})
    assert env.status_code == 201, env.text
    eid = env.json()["data"]["id"]
    doc = client.post(f"/envelopes/{eid}/documents", json={"data": {"type": "documents", "attributes": {
        "filename": "contrato.pdf", "content_base64": pdf_b64(), "metadata": {"ponte_key": "cs-1"}}}}).json()
    signers = []
    for group, name in ((1, "Maria Cliente"), (2, "João Cônjuge"), (3, "Ana Testemunha")):
        signer = client.post(f"/envelopes/{eid}/signers", json={"data": {"type": "signers", "attributes": {
            "name": name, "email": f"{name.split()[0].lower()}@example.com", "group": group, "refusable": True,
            "has_documentation": True}}}).json()["data"]["id"]
        signers.append(signer)
        for attrs in ({"action": "agree", "role": "sign"}, {"action": "provide_evidence", "auth": "email"}):
            rel = {"document": {"data": {"type": "documents", "id": doc["data"]["id"]}},
                   "signer": {"data": {"type": "signers", "id": signer}}}
            created = client.post(f"/envelopes/{eid}/requirements", json={"data": {
                "type": "requirements", "attributes": attrs, "relationships": rel}})
            assert created.status_code == 201, created.text
    running = client.patch(f"/envelopes/{eid}", json={"data": {"id": eid, "type": "envelopes",
                                                               "attributes": {"status": "running"}}})
    assert running.status_code == 200 and running.json()["data"]["attributes"]["status"] == "running"
    assert client.post(f"/envelopes/{eid}/notifications", json={"data": {"type": "notifications", "attributes": {
        "message": "Por favor, assine"}}}).status_code == 201
    return eid, signers


def test_clicksign_groups_and_signed_webhooks(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["clicksign"], headers=CLICKSIGN_HEADERS)
    eid, _ = _clicksign_envelope(client, fresh.sink.url("cs"))
    assert client.post("/envelopes", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 415
    found = client.get("/envelopes", params={"filter[metadata][ponte_key]": "cs-1"}).json()
    assert [e["id"] for e in found["data"]] == [eid]
    with pytest.raises(ApiError):
        fresh.sign(eid, "João Cônjuge")  # group 2 before group 1
    for who in ("Maria Cliente", "joao@example.com", "3"):
        fresh.sign(eid, who, provider="clicksign")
    received = fresh.sink.wait_for("cs", 5)
    assert [r.headers["event"] for r in received] == ["upload", "sign", "sign", "sign", "auto_close"]
    for r in received:
        expected = hmac.new(b"clicksign-webhook-secret", r.body, hashlib.sha256).hexdigest()
        assert r.headers["content-hmac"] == f"sha256={expected}"
    sign_event = received[1].json()["event"]
    assert sign_event["data"]["signer"]["ip_address"] and sign_event["data"]["signer"]["selfie_url"]
    final = received[-1].json()
    assert final["envelope"]["status"] == "closed"
    signed = httpx.get(final["document"]["signed_url"])
    assert signed.headers["content-type"] == "application/pdf" and page_count(signed.content) == 2


def test_clicksign_refusal_and_deadline(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["clicksign"], headers=CLICKSIGN_HEADERS)
    eid, _ = _clicksign_envelope(client, fresh.sink.url("cs2"))
    fresh.sign(eid, "Maria Cliente", action="refuse")
    refusal = fresh.sink.wait_for("cs2", 1, where=lambda r: r.headers["event"] == "refusal")[0].json()
    assert refusal["envelope"]["status"] == "canceled" and refusal["event"]["data"]["reason"]
    other, _ = _clicksign_envelope(client)
    fresh.sign(other, "1", action="expire")
    deadline = fresh.sink.wait_for("cs2", 1, where=lambda r: r.headers["event"] == "deadline")[0].json()
    assert deadline["envelope"]["id"] == other


def test_clicksign_activation_needs_requirements(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["clicksign"], headers=CLICKSIGN_HEADERS)
    eid = client.post("/envelopes", json={"data": {"type": "envelopes", "attributes": {"name": "Vazio"}}}).json()["data"]["id"]
    refused = client.patch(f"/envelopes/{eid}", json={"data": {"type": "envelopes", "attributes": {"status": "running"}}})
    assert refused.status_code == 422 and refused.json()["errors"][0]["source"]["pointer"] == "/data/attributes/status"

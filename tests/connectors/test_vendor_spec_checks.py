"""The bodies Ponte sends conform to the vendors' specs in ../shared/specs, and the check that says so
cannot pass vacuously.

- The checker (tests/support/vendor_specs.py) catches an unknown field and a missing required field
  for each kind of spec: DocuSign's swagger, WhatsApp's OpenAPI, Sienge's YAMLs, the Clicksign
  collection, the DocuSign Connect sample and WhatsApp's webhook schema.
- The session plugin (tests/support/spec_capture.py) sees a request at the stand-in's side and fails
  the run for it.
- What the dispatch code really builds (mapping + connector spec), captured on the wire at the
  sandbox: the DocuSign envelope and Connect registration, the Clicksign envelope flow, the WhatsApp
  invitation.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from connectors.sandbox import Sandbox, start_sandbox
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
from tests.support import spec_capture
from tests.support.spec_capture import SpecCapture, capturing, install
from tests.support.tenants import sandbox_tenant
from tests.support.vendor_specs import (
    CLICKSIGN,
    DOCUSIGN,
    DOCUSIGN_CONNECT,
    RFC5322,
    WHATSAPP,
    Violation,
    check_email,
    check_request,
    check_response,
    check_webhook,
)

DS_PATH = "/restapi/v2.1/accounts/00000000-0000-0000-0000-0000000d0c05/envelopes"
WA_PATH = "/v23.0/100000000000001/messages"


def _one(found: list[Violation] | None, field: str, problem: str, spec: str) -> Violation:
    assert found is not None, "the endpoint should be in the spec"
    hits = [v for v in found if v.field == field and v.problem == problem]
    assert hits, f"expected {problem} at {field}; got {[str(v) for v in found]}"
    assert hits[0].spec == spec and hits[0].endpoint
    return hits[0]


def _template_message(**language: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "5548991234567",
            "type": "template", "template": {"name": "ponte_verificacao", "language": language,
                                             "components": [{"type": "body", "parameters": [
                                                 {"type": "text", "text": "Maria"}]}]}}


# ------------------------------------------------------------------ the checker catches what it should

def test_docusign_unknown_field_and_wrong_type_are_caught() -> None:
    body = {"emailSubject": "Contrato", "status": "sent",
            "recipients": {"signers": [{"email": "a@example.com", "name": "A", "recipientId": "1",
                                        "routingOrder": 1, "signingGroup": "x"}]}}
    found = check_request("docusign", "POST", DS_PATH, body)
    unknown = _one(found, "recipients.signers[].signingGroup", "unknown field", DOCUSIGN)
    assert unknown.endpoint == "POST /v2/accounts/{accountId}/envelopes" and unknown.direction == "request"
    assert any(v.field == "recipients.signers[].routingOrder" and "not of type 'string'" in v.problem
               for v in found or [])
    assert check_request("docusign", "POST", DS_PATH, {**body, "recipients": {"signers": [
        {"email": "a@example.com", "name": "A", "recipientId": "1", "routingOrder": "1"}]}}) == []


def test_whatsapp_missing_policy_and_unknown_field_are_caught() -> None:
    missing = check_request("whatsapp", "POST", WA_PATH, _template_message(code="pt_BR"))
    _one(missing, "template.language.policy", "missing required field", WHATSAPP)
    extra = {**_template_message(code="pt_BR", policy="deterministic"), "preview_url": True}
    _one(check_request("whatsapp", "POST", WA_PATH, extra), "preview_url", "unknown field", WHATSAPP)
    assert check_request("whatsapp", "POST", WA_PATH, _template_message(code="pt_BR", policy="deterministic")) == []


def test_sienge_missing_required_and_unknown_field_are_caught() -> None:
    found = check_request("sienge", "POST", "/demo/public/api/v1/hooks", {"url": "https://x/y", "eventType": "A"})
    _one(found, "events", "missing required field", "sienge/hooks-v1.yaml")
    _one(found, "eventType", "unknown field", "sienge/hooks-v1.yaml")
    # Ponte's own technical-assistance endpoint is in no Sienge spec: not checkable, not "valid"
    assert check_request("sienge", "POST", "/demo/public/api/v1/technical-assistances", {"x": 1}) is None


def test_clicksign_attribute_outside_the_collection_and_missing_attribute_are_caught() -> None:
    signer = {"data": {"type": "signers", "attributes": {
        "name": "Maria Teste", "email": "maria@example.com", "has_documentation": True,
        "documentation": "529.982.247-25", "refusable": True, "group": 1,
        "communicate_events": {"signature_request": "email", "signature_reminder": "email",
                               "document_signed": "email"}}}}
    found = check_request("clicksign", "POST", "/api/v3/envelopes/e1/signers", signer)
    _one(found, "data.attributes.documentation", "unknown field", CLICKSIGN)
    del signer["data"]["attributes"]["group"]
    _one(check_request("clicksign", "POST", "/api/v3/envelopes/e1/signers", signer),
         "data.attributes.group", "missing required field", CLICKSIGN)
    wrong_type = {"data": {"type": "signer", "attributes": {"message": "oi"}}}
    _one(check_request("clicksign", "POST", "/api/v3/envelopes/e1/notifications", wrong_type),
         "data.type", "invalid: 'signer', the collection uses ['notifications']", CLICKSIGN)


def test_response_and_webhook_checks_catch_drift_too() -> None:
    summary = {"envelopeId": "e1", "status": "sent", "statusDateTime": "x", "uri": "/envelopes/e1", "owner": "me"}
    found = check_response("docusign", "POST", DS_PATH, 201, summary)
    assert _one(found, "owner", "unknown field", DOCUSIGN).endpoint.endswith("→ 201")
    error = check_response("docusign", "GET", f"{DS_PATH}/e1", 404, {"errorCode": "X", "message": "m", "code": 1})
    _one(error, "code", "unknown field", DOCUSIGN)  # any 4xx is DocuSign's errorDetails
    resource = {"data": {"id": "s1", "type": "signer", "attributes": {"name": "Maria"}}}
    found = check_response("clicksign", "POST", "/api/v3/envelopes/e1/signers", 201, resource)
    _one(found, "data.type", "invalid: 'signer', the path names 'signers'", CLICKSIGN)
    _one(found, "data.attributes.has_documentation", "missing field the collection writes", CLICKSIGN)
    connect = {"event": "envelope-sent", "uri": "/x", "retryCount": "0", "configurationId": 1, "apiVersion": "v2.1",
               "generatedDateTime": "x", "data": {"envelopeId": "e1", "envelopeSummary": {"sender": {"x": 1}}}}
    found = check_webhook("docusign", connect, "envelope-sent")
    _one(found, "retryCount", "invalid: a number in the sample, got str", DOCUSIGN_CONNECT)
    _one(found, "data.envelopeSummary.sender.x", "unknown field", DOCUSIGN_CONNECT)
    status = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "5548", "phone_number_id": "1"},
        "statuses": [{"id": "wamid.1", "status": "read", "recipient_id": "5548", "seen_by": "x"}]}}]}]}
    found = check_webhook("whatsapp", status, "read")
    _one(found, "entry[].changes[].value.statuses[].timestamp", "missing required field", WHATSAPP)
    _one(found, "entry[].changes[].value.statuses[].seen_by", "unknown field", WHATSAPP)


def test_an_email_without_date_or_with_a_bare_message_id_is_caught() -> None:
    headers = b"From: Assinaturas <assinaturas@demo.example.com>\r\nTo: maria@example.com\r\nSubject: Convite\r\n"
    _one(check_email(headers + b"Message-ID: <1@demo.example.com>\r\n\r\nOla"), "Date", "missing required field",
         RFC5322)
    dated = headers + b"Date: Sat, 05 Dec 2026 13:34:00 -0300\r\n"
    _one(check_email(dated + b"Message-ID: 1@demo.example.com\r\n\r\nOla"), "Message-ID",
         "invalid: '1@demo.example.com' is not <id-left@id-right>", RFC5322)
    assert check_email(dated + b"Message-ID: <1@demo.example.com>\r\n\r\nOla") == []


# ------------------------------------------------------------- the session plugin, at the stand-in's side

@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start_sandbox(customers=2, seed=13, rate_limits=False) as sandbox:
        yield sandbox


def test_the_session_check_sees_the_wire_and_fails_the_run(sb: Sandbox) -> None:
    capture = SpecCapture(active=True, current="tests/pipelines/dispatch/test_x.py::test_y")
    undo = install(capture)
    try:
        reply = httpx.post(f"{sb.api['whatsapp']}/messages", json=_template_message(code="pt_BR"),
                           headers={"Authorization": "Bearer whatsapp-sandbox-token"})
        assert reply.status_code == 200  # the stand-in is lenient, as Graph is: the spec is not
        deadline = time.monotonic() + 5  # observed before the answer completes; a margin all the same
        while not capture.queue and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        undo()
    capture.drain()
    assert [str(v) for v in capture.found] == [
        "request whatsapp POST /{Version}/{Phone-Number-ID}/messages: template.language.policy: "
        f"missing required field [{WHATSAPP}]"]
    assert capture.checked == {"whatsapp request bodies": 1, "whatsapp responses": 1}

    config = SimpleNamespace(stash=pytest.Stash(), option=SimpleNamespace())
    config.stash[spec_capture._KEY] = capture
    config.stash[spec_capture._COLLECTED] = {"violations": {}, "checked": Counter(), "unchecked": Counter()}
    session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    spec_capture.pytest_sessionfinish(session, 0)  # type: ignore[arg-type]
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    entry = next(iter(config.stash[spec_capture._COLLECTED]["violations"].values()))
    assert entry["test"] == "tests/pipelines/dispatch/test_x.py::test_y" and entry["count"] == 1


# --------------------------------------------------------------- what the dispatch code really sends

@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'ponte.db'}")
    try:
        yield opened
    finally:
        opened.dispose()


def _canonical(provider: str, pdf: bytes) -> Envelope:
    sha = hashlib.sha256(pdf).hexdigest()
    signers = [Signer(role="client", routing_order=1, name="Maria Teste da Silva", document=cpf(11),
                      email="maria.teste@example.com"),
               Signer(role="spouse", routing_order=2, name="João Teste da Silva", document=cpf(12),
                      email="joao.teste@example.com", phone="+5548991234567", channel="whatsapp",
                      selfie_required=True)]
    positions = [SignaturePosition(role=s.role, page=1, x=400 - 180 * i, y=760, width=160, height=48)
                 for i, s in enumerate(signers)]
    return Envelope(tenant="demo", contract_id=f"{provider}-801", provider=provider,
                    document_name="Contrato 801.pdf", document_sha256=sha,
                    idempotency_key=f"demo:contract:{provider}-801:{sha}", signers=signers, positions=positions,
                    expires_in_days=30, email_subject="Contrato de compra e venda 801")


def _document(pdf: bytes) -> Document:
    return Document(name="Contrato 801.pdf", content=pdf, pages=1, page_size=(595.28, 841.89), source="crm_pdf")


def _pdf() -> bytes:
    from connectors.sandbox.documents import text_pdf

    return text_pdf("Contrato 801", ["Cláusula 1: objeto.", "Cláusula 2: preço."])


def _assert_conforms(capture: SpecCapture, *kinds: str) -> None:
    assert [str(v) for v in capture.found] == []
    for kind in kinds:
        assert capture.checked[kind] > 0, f"nothing checked for {kind}: {dict(capture.checked)}"


def test_the_docusign_envelope_and_connect_registration_conform(sb: Sandbox, store: Store) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True)
    pdf = _pdf()
    with capturing() as capture, open_connector(tenant, "docusign") as conn:
        conn.register_webhook("connect", sb.sink.url("ds-conformance"))
        send_docusign(store, conn, _canonical("docusign", pdf), _document(pdf), MappingContext(tenant=tenant),
                      worker="test")
    _assert_conforms(capture, "docusign request bodies", "docusign responses")
    assert capture.checked["docusign request bodies"] == 2


def test_the_clicksign_envelope_flow_conforms_to_the_collection(sb: Sandbox, store: Store) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True, options={"signing_provider": "clicksign"})
    pdf = _pdf()
    with capturing() as capture, open_connector(tenant, "clicksign") as conn:
        send_clicksign(store, conn, _canonical("clicksign", pdf), _document(pdf), MappingContext(tenant=tenant),
                       provider_notifies=True, worker="test")
    _assert_conforms(capture, "clicksign request bodies", "clicksign responses")
    # envelope, document, 2 signers, 2 + 3 requirements (agree + email; agree + whatsapp + selfie),
    # activation, notification
    assert capture.checked["clicksign request bodies"] == 11


@pytest.mark.parametrize("summary_template", [None, "ponte_convite_assinatura_resumo"])
def test_the_whatsapp_invitation_conforms(sb: Sandbox, summary_template: str | None) -> None:
    tenant = sandbox_tenant(sb, unthrottled=True,
                            options={"notifications": {"whatsapp_summary_template": summary_template}})
    signer = EnvelopeSigner(role="spouse", routing_order=2, name="João Teste da Silva", phone="+5548991234567",
                            channel="whatsapp")
    envelope = EnvelopeRow(details={"summary": {"valor_total": "R$ 450.000,00", "parcela": "R$ 3.750,00",
                                             "prazo_meses": "120"}})
    record = _whatsapp_record(tenant, envelope, signer, "https://assinar.example.com/s/801")
    assert len(record["template"]["components"][0]["parameters"]) == (5 if summary_template else 2)
    with capturing() as capture, open_connector(tenant, "whatsapp") as conn:
        assert conn.call("send_template", record).id.startswith("wamid.")
    _assert_conforms(capture, "whatsapp request bodies", "whatsapp responses")


def test_a_pdf_answer_is_not_mistaken_for_json() -> None:
    assert check_response("docusign", "GET", f"{DS_PATH}/e1/documents/combined", 200,
                          base64.b64decode(b"JVBERi0xLjQ="), "application/pdf") is None

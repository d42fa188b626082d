"""The shipped specs against the sandbox (issue #4's stand-ins of the real APIs), end to end.

The rest of this suite uses small loopback servers; this module checks that the specs and the
sandbox agree on paths, auth, paging, bodies and lookups.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import bind_spec
from connectors.runtime import Connector
from connectors.sandbox.launcher import start_sandbox
from connectors.smtp import Attachment, Email, SmtpConnector


def _pdf() -> str:
    from io import BytesIO

    from pypdf import PdfWriter

    writer, buffer = PdfWriter(), BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


PDF = _pdf()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with start_sandbox(customers=60, seed=7, rate_limits=False) as sb:
        yield sb


def conn(sandbox: Any, name: str) -> Connector:
    c, u = sandbox.credentials(), sandbox.urls
    values: dict[str, dict[str, str]] = {
        "sienge": {"base_url": u["sienge"], "subdomain": c["sienge"]["subdomain"]},
        "cvcrm": {"base_url": u["cvcrm"], "domain": "demo"},
        "docusign": {"base_url": u["docusign"], "account_id": c["docusign"]["account_id"]},
        "clicksign": {"base_url": u["clicksign"]},
        "whatsapp": {"base_url": u["whatsapp"], "phone_number_id": c["whatsapp"]["phone_number_id"],
                     "version": c["whatsapp"]["api_version"]},
    }
    secrets: dict[str, dict[str, str]] = {
        "sienge": {"username": c["sienge"]["user"], "password": c["sienge"]["password"]},
        "cvcrm": {"email": c["cvcrm"]["email"], "token": c["cvcrm"]["token"], "password": c["cvcrm"]["senha"],
                  "webhook_secret": "cv-url-secret-0123456789"},
        "docusign": {"access_token": c["docusign"]["token"], "connect_hmac_key": c["docusign"]["connect_hmac_key"]},
        "clicksign": {"access_token": c["clicksign"]["token"], "webhook_secret": c["clicksign"]["webhook_secret"]},
        "whatsapp": {"access_token": c["whatsapp"]["token"], "app_secret": c["whatsapp"]["app_secret"],
                     "verify_token": "verify-token-1"},
    }
    result = bind_spec(name, values[name], secrets[name], tenant="sandbox")
    assert isinstance(result, Connector)
    return result


@pytest.mark.parametrize("name", ["sienge", "cvcrm", "docusign", "clicksign"])
def test_check_passes_for_every_connector(sandbox: Any, name: str) -> None:
    results = conn(sandbox, name).check()
    assert results and all(r.ok for r in results), results


def test_sienge_reads_and_child_reads(sandbox: Any) -> None:
    sienge = conn(sandbox, "sienge")
    customers = list(sienge.read("customers"))
    assert len(customers) == 60 and len({c["id"] for c in customers}) == 60
    units = list(sienge.read("units"))
    assert units and all("enterpriseId" in u for u in units)
    one = sienge.read_one("customers", customers[0]["id"])
    assert one["id"] == customers[0]["id"]


def test_sienge_assistance_create_is_not_duplicated(sandbox: Any) -> None:
    sienge = conn(sandbox, "sienge")
    customer = next(sienge.read("customers"))
    unit = next(sienge.read("units"))
    record = {"externalId": "cv-as-1", "enterpriseId": unit["enterpriseId"], "unitId": unit["id"],
              "customerId": customer["id"], "description": "Infiltração no banheiro", "openedAt": "2026-11-01T10:00:00",
              "items": [{"description": "Rejunte", "minimumCompletionDays": 15}]}
    first = sienge.call("create_technical_assistance", record)
    again = sienge.call("create_technical_assistance", record, lookup_first=True)
    assert again.existing and again.id == first.id


def test_cvcrm_reservation_is_found_instead_of_duplicated(sandbox: Any) -> None:
    cv = conn(sandbox, "cvcrm")
    unidade = sandbox.cvcrm.state.unidades[next(iter(sandbox.cvcrm.state.unidades))]
    pessoa = next(iter(sandbox.cvcrm.state.pessoas.values()))
    record = {"idreserva_int": "sienge-sale-991", "idunidade": unidade["idunidade"], "idpessoa": pessoa["idpessoa"]}
    created = cv.call("create_reserva", record)
    repeated = cv.call("create_reserva", record)  # the CRM answers 409; Ponte looks it up instead
    assert repeated.existing and repeated.id == created.id
    uploaded = cv.call("upload_contrato", {"idreserva_cv": int(created.id or 0), "contratos": [
        {"contrato_base64": PDF, "contrato_nome": "contrato-991.pdf", "assinado": "S"}]})
    assert uploaded.status in (200, 201)
    assert list(cv.read("contratos", params={"idreserva": created.id}))


def test_docusign_envelope_lookup_and_download(sandbox: Any) -> None:
    ds = conn(sandbox, "docusign")
    record = {
        "emailSubject": "Contrato 991", "status": "sent",
        "documents": [{"documentId": "1", "name": "Contrato", "fileExtension": "pdf", "documentBase64": PDF}],
        "recipients": {"signers": [{"recipientId": "1", "routingOrder": "1", "name": "Ana Souza",
                                    "email": "ana@example.com", "roleName": "client",
                                    "tabs": {"signHereTabs": [{"anchorString": "/assinatura_client/",
                                                               "anchorUnits": "pixels"}]}}]},
    }
    created = ds.call("create_envelope", record, idempotency_key="sandbox:991:v1")
    found = ds.find_existing("create_envelope", record, idempotency_key="sandbox:991:v1")
    assert created.id and found is not None and found.id == created.id
    sandbox.sign(created.id, "client")
    pdf = ds.download("download_combined", envelope_id=created.id)
    assert pdf.startswith(b"%PDF")


def test_clicksign_envelope_flow(sandbox: Any) -> None:
    cs = conn(sandbox, "clicksign")
    envelope = cs.call("create_envelope", {"name": "Contrato 992", "locale": "pt-BR", "auto_close": True})
    document = cs.call("add_document", {"envelope_id": envelope.id, "filename": "contrato.pdf",
                                        "content_base64": "data:application/pdf;base64," + PDF})
    signer = cs.call("add_signer", {"envelope_id": envelope.id, "name": "Ana Souza", "email": "ana@example.com",
                                    "group": 1, "has_documentation": True, "refusable": True,
                                    "communicate_events": {"signature_request": "email",
                                                           "signature_reminder": "email",
                                                           "document_signed": "email"}})
    for action, extra in (("agree", {"role": "sign"}), ("provide_evidence", {"auth": "email"})):
        cs.call("add_requirement", {"envelope_id": envelope.id, "document_id": document.id,
                                    "signer_id": signer.id, "action": action, **extra})
    cs.call("activate_envelope", {"envelope_id": envelope.id})
    assert cs.read_one("envelopes", envelope.id or "")["attributes"]["status"] == "running"


def test_whatsapp_template_message(sandbox: Any) -> None:
    wa = conn(sandbox, "whatsapp")
    result = wa.call("send_template", {"to": "5548999990000", "template": {
        "name": "ponte_convite_assinatura", "language": {"code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                       {"type": "text", "text": "https://sign/1"}]}]}})
    assert result.id


def test_smtp_sends_to_the_sandbox(sandbox: Any) -> None:
    c = sandbox.credentials()["smtp"]
    smtp = bind_spec("smtp", {"host": c["host"], "port": c["port"], "security": "none",
                                   "from": "Ponte <assinaturas@demo.example.com>"},
                          {"username": c["user"], "password": c["password"]})
    assert isinstance(smtp, SmtpConnector)
    assert smtp.send(Email(to=["ana@example.com"], subject="Contrato", text="Olá",
                           attachments=[Attachment("c.pdf", b"%PDF-1.4", "application/pdf")]))

"""Sandbox responses validate against the vendors' own schemas in ../shared/specs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import jsonschema
import pytest

from connectors.sandbox import Sandbox

from .conftest import DOCUSIGN_HEADERS, WHATSAPP_HEADERS, openapi_schema, pdf_b64, swagger, swagger_schema


def as_array(item_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item_schema}


def _buyer(schema: dict[str, Any]) -> dict[str, Any]:
    fixed = json.loads(json.dumps(schema))
    fixed["properties"]["name"] = {"type": "string"}
    return as_array(fixed)


#: Errata of sales-contracts-v1.yaml: the file declares these lists as single objects (and a buyer's
#: name as boolean) while the API and PROVIDERS.md §1.3 return arrays of them. Each is corrected here,
#: visibly, rather than bending the sandbox to a typo.
SALES_CONTRACT_ERRATA = {
    "SalesContractGet.properties.salesContractCustomers": _buyer,
    "SalesContractGet.properties.salesContractUnits": as_array,
    "SalesContractGet.properties.paymentConditions": as_array,
    "SalesContractGet.properties.brokers": as_array,
}


def validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.validate(instance, schema, cls=jsonschema.Draft7Validator)


def test_customers_list_and_detail(sienge: httpx.Client) -> None:
    page = sienge.get("/customers", params={"limit": 200})
    assert page.status_code == 200
    validate(page.json(), swagger_schema("sienge/customers-v1.yaml", "GetResponseDocument"))
    results = page.json()["results"]
    assert any(c.get("cnpj") for c in results) and any(c.get("spouse") for c in results)
    one = sienge.get(f"/customers/{results[0]['id']}")
    validate(one.json(), swagger_schema("sienge/customers-v1.yaml", "CustomerGet"))


def test_sales_contracts(sienge: httpx.Client) -> None:
    page = sienge.get("/sales-contracts", params={"limit": 50}).json()
    validate(page, swagger_schema("sienge/sales-contracts-v1.yaml", "SalesContractsGet", SALES_CONTRACT_ERRATA))
    situations = {c["situation"] for c in page["results"]}
    assert situations <= {"0", "1", "2", "3"} and "3" in situations
    assert any(len(c["salesContractCustomers"]) == 2 for c in page["results"])
    detail = sienge.get(f"/sales-contracts/{page['results'][0]['id']}").json()
    validate(detail, swagger_schema("sienge/sales-contracts-v1.yaml", "SalesContractGet", SALES_CONTRACT_ERRATA))
    cancelled = sienge.get("/sales-contracts", params={"situation": "3"}).json()
    assert cancelled["results"] and all(c["cancellationDate"] for c in cancelled["results"])


def test_enterprises_and_units(sienge: httpx.Client) -> None:
    enterprises = sienge.get("/enterprises").json()
    validate(enterprises, swagger_schema("sienge/enterprise-v1.yaml", "GetResponseDocument"))
    detail = sienge.get(f"/enterprises/{enterprises['results'][0]['id']}").json()
    validate(detail, swagger_schema("sienge/enterprise-v1.yaml", "DetailedEnterprise"))
    units = sienge.get("/units", params={"enterpriseId": detail["id"]}).json()
    validate(units, swagger_schema("sienge/unit-v1.yaml", "GetResponseDocument"))
    assert units["results"] and all(u["enterpriseId"] == detail["id"] for u in units["results"])
    validate(sienge.get(f"/units/{units['results'][0]['id']}").json(), swagger_schema("sienge/unit-v1.yaml", "Unit"))


def test_hooks(sienge: httpx.Client, sandbox: Sandbox) -> None:
    created = sienge.post("/hooks", json={"url": sandbox.sink.url("fidelity"), "events": ["CUSTOMER_UPDATED"],
                                          "token": "t0ken"})
    assert created.status_code == 200
    validate(created.json(), swagger_schema("sienge/hooks-v1.yaml", "Hook"))
    listing = sienge.get("/hooks").json()
    validate(listing, swagger_schema("sienge/hooks-v1.yaml", "PaginatedResponse"))
    validate(sienge.get(f"/hooks/{created.json()['id']}").json(), swagger_schema("sienge/hooks-v1.yaml", "Hook"))
    assert sienge.delete(f"/hooks/{created.json()['id']}").status_code == 200
    assert sienge.get(f"/hooks/{created.json()['id']}").status_code == 404


def _envelope_body(key: str, signers: int = 2) -> dict[str, Any]:
    return {
        "emailSubject": "Contrato para assinatura", "status": "sent",
        "documents": [{"documentId": "1", "name": "contrato.pdf", "fileExtension": "pdf", "documentBase64": pdf_b64()}],
        "recipients": {"signers": [
            {"email": f"signer{i}@example.com", "name": f"Signatário {i}", "recipientId": str(i),
             "routingOrder": str(i), "roleName": ["cliente", "conjuge", "testemunha"][i - 1],
             "tabs": {"signHereTabs": [{"documentId": "1", "pageNumber": "1", "xPosition": 400 - 120 * i,
                                        "yPosition": 700}]}}
            for i in range(1, signers + 1)]},
        "customFields": {"textCustomFields": [{"name": "ponte_key", "value": key, "show": "false"}]},
    }


def test_docusign_envelope_and_connect(docusign: httpx.Client, sandbox: Sandbox) -> None:
    spec = "docusign/esignature.rest.swagger-v2.json"
    connect = docusign.post("/connect", json={"urlToPublishTo": sandbox.sink.url("ds-fidelity"), "allUsers": "true",
                                              "events": ["envelope-sent", "envelope-completed"]})
    assert connect.status_code == 201
    validate(connect.json(), swagger_schema(spec, "connectCustomConfiguration"))
    summary = docusign.post("/envelopes", json=_envelope_body("fidelity-1", signers=1))
    assert summary.status_code == 201
    validate(summary.json(), swagger_schema(spec, "envelopeSummary"))
    eid = summary.json()["envelopeId"]
    validate(docusign.get(f"/envelopes/{eid}").json(), swagger_schema(spec, "envelope"))
    validate(docusign.get(f"/envelopes/{eid}/recipients").json(), swagger_schema(spec, "EnvelopeRecipients"))
    found = docusign.get("/envelopes", params={"from_date": "2020-01-01", "custom_field": "ponte_key=fidelity-1"})
    validate(found.json(), swagger_schema(spec, "envelopesInformation"))
    assert [e["envelopeId"] for e in found.json()["envelopes"]] == [eid]

    sandbox.sign(eid, "cliente")
    received = sandbox.sink.wait_for("ds-fidelity", 2)
    sample = swagger("docusign/connect.schema-v2.json")
    for delivery in received:
        expected = base64.b64encode(hmac.new(b"docusign-connect-secret", delivery.body, hashlib.sha256).digest())
        assert delivery.headers["x-docusign-signature-1"] == expected.decode()
        _conforms_to_sample(delivery.json(), sample, "$")
    assert [r.json()["event"] for r in received] == ["envelope-sent", "envelope-completed"]


def _conforms_to_sample(value: Any, sample: Any, where: str) -> None:
    """The Connect file is a sample message: every key we send must exist there with the same JSON type."""
    if isinstance(sample, dict):
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in sample, f"{where}.{key} is not in DocuSign's Connect message"
            _conforms_to_sample(item, sample[key], f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(value, list), where
        merged: dict[str, Any] = {}
        for element in sample:
            if isinstance(element, dict):
                merged.update(element)
        for item in value:
            _conforms_to_sample(item, merged if merged else (sample[0] if sample else item), f"{where}[]")
    elif isinstance(sample, bool):
        assert isinstance(value, bool), where
    elif isinstance(sample, int | float):
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    else:
        assert isinstance(value, str), f"{where}: DocuSign sends strings, got {value!r}"


def test_whatsapp_send_response(sandbox: Sandbox) -> None:
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "5548991234567", "type": "template",
            "template": {"name": "ponte_verificacao", "language": {"policy": "deterministic", "code": "pt_BR"},
                         "components": [{"type": "body", "parameters": [{"type": "text", "text": "123456"}]}]}}
    # The request itself is a valid TemplateMessage per Meta's spec...
    spec = "whatsapp/business-messaging-api_v23.0.yaml"
    jsonschema.validate(body, openapi_schema(spec, "TemplateMessage"), cls=jsonschema.Draft202012Validator)
    response = httpx.post(f"{sandbox.api['whatsapp']}/messages", json=body, headers=WHATSAPP_HEADERS)
    assert response.status_code == 200
    # ...and the answer is a MessageResponsePayload.
    jsonschema.validate(response.json(), openapi_schema(spec, "MessageResponsePayload"),
                        cls=jsonschema.Draft202012Validator)
    assert response.json()["messages"][0]["id"].startswith("wamid.")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_docusign_errors_are_error_details(sandbox: Sandbox, headers: dict[str, str]) -> None:
    response = httpx.get(f"{sandbox.api['docusign']}/envelopes/nope", headers=headers or None)
    assert response.status_code == 401
    validate(response.json(), swagger_schema("docusign/esignature.rest.swagger-v2.json", "errorDetails"))
    missing = httpx.get(f"{sandbox.api['docusign']}/envelopes/nope", headers=DOCUSIGN_HEADERS)
    assert missing.status_code == 404 and missing.json()["errorCode"] == "ENVELOPE_DOES_NOT_EXIST"

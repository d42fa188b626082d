"""The shipped specs against loopback stand-ins that check what the real APIs check (paths, auth,
bodies), so a spec that drifts from PROVIDERS.md fails here."""

from __future__ import annotations

import base64
import json

import pytest

from connectors.runtime.client import Connector
from ponte.errors import DataError
from tests.connectors.conftest import Sleeps
from tests.connectors.loopback import Loopback, Received, Reply

BASIC = "Basic " + base64.b64encode(b"ponte-sandbox:sandbox-secret").decode()


def sienge(server: Loopback) -> Connector:
    return Connector.open("sienge", {"base_url": server.url, "subdomain": "demo"},
                          {"username": "ponte-sandbox", "password": "sandbox-secret", "webhook_token": "hook-token-123"},
                          sleep=Sleeps())


def listing(rows: list[dict]):  # type: ignore[no-untyped-def]
    def handler(req: Received) -> Reply:
        if req.headers.get("authorization") != BASIC:
            return Reply(401, {"status": 401, "developerMessage": "Unauthorized"})
        limit, offset = int(req.query.get("limit", 100)), int(req.query.get("offset", 0))
        if limit > 200:
            return Reply(400, {"status": 400, "developerMessage": "limit > 200"})
        return Reply(200, {"resultSetMetadata": {"count": len(rows), "offset": offset, "limit": limit},
                           "results": rows[offset:offset + limit]})
    return handler


P = "/demo/public/api/v1"


def test_sienge_reads_all_customers_in_pages_of_200(server: Loopback) -> None:
    server.route("GET", f"{P}/customers", listing([{"id": i, "cpf": "x"} for i in range(450)]))
    with sienge(server) as conn:
        assert len(list(conn.read("customers"))) == 450
        assert conn.api_calls == 3
    assert [h.query["limit"] for h in server.hits()] == ["200"] * 3


def test_sienge_units_of_each_enterprise(server: Loopback) -> None:
    server.route("GET", f"{P}/enterprises", listing([{"id": 1}, {"id": 2}]))
    units = [{"id": 10, "enterpriseId": 1}, {"id": 20, "enterpriseId": 2}, {"id": 21, "enterpriseId": 2}]
    server.route("GET", f"{P}/units", lambda req: listing(
        [u for u in units if str(u["enterpriseId"]) == req.query["enterpriseId"]])(req))
    with sienge(server) as conn:
        assert [u["id"] for u in conn.read("units")] == [10, 20, 21]


def test_sienge_technical_assistance_create_body_and_lookup(server: Loopback) -> None:
    created: list[dict] = []

    def create(req: Received) -> Reply:
        created.append(req.json())
        return Reply(201, {"id": 77, "externalId": req.json()["externalId"], "status": "OPEN"})

    server.route("POST", f"{P}/technical-assistances", create)
    record = {"externalId": "cv-981", "enterpriseId": 1, "unitId": 10, "customerId": 5,
              "description": "Infiltração", "openedAt": "2026-05-01",
              "items": [{"description": "Rejunte", "minimumCompletionDays": 15}]}
    with sienge(server) as conn:
        result = conn.call("create_technical_assistance", record)
        with pytest.raises(DataError) as info:  # said before sending, not by a Sienge 400
            conn.call("create_technical_assistance", {**record, "items": [{"description": "Pintura"}]})
    assert result.id == "77" and info.value.field == "minimumCompletionDays"
    assert created == [{"externalId": "cv-981", "enterpriseId": 1, "unitId": 10, "customerId": 5,
                        "description": "Infiltração", "openedAt": "2026-05-01",
                        "items": [{"description": "Rejunte", "minimumCompletionDays": 15}]}]


def test_sienge_assistance_path_is_configurable_per_tenant(server: Loopback) -> None:
    server.route("GET", "/demo/public/api/v1/assistencias-tecnicas", listing([{"id": 1}]))
    conn = Connector.open("sienge", {"base_url": server.url, "subdomain": "demo",
                                     "assistance_path": "/assistencias-tecnicas"},
                          {"username": "ponte-sandbox", "password": "sandbox-secret"})
    assert list(conn.read("technical_assistances")) == [{"id": 1}]


def test_sienge_registers_hooks_with_token_and_events(server: Loopback) -> None:
    server.route("GET", f"{P}/hooks", listing([]))
    server.route("POST", f"{P}/hooks", lambda req: Reply(201, {"id": "0c0e-uuid", **req.json()}))
    with sienge(server) as conn:
        result = conn.register_webhook("hooks", "https://hub.example.com/webhooks/sienge/acme")
    body = server.hits("POST")[0].json()
    assert result.id == "0c0e-uuid" and body["token"] == "hook-token-123"
    assert "SALES_CONTRACT_CANCELED" in body["events"] and "TECHNICAL_ASSISTANCE_FINISHED" in body["events"]


# -------------------------------------------------------------------------------------------- CV CRM

CV_HEADERS = {"email": "integracao@demo.cvcrm.com.br", "token": "cvcrm-sandbox-token"}


def cv(server: Loopback) -> Connector:
    return Connector.open("cvcrm", {"base_url": server.url, "domain": "demo"},
                          {**CV_HEADERS, "password": "cvcrm-sandbox-senha", "webhook_secret": "s" * 32},
                          sleep=Sleeps())


def cv_guard(handler):  # type: ignore[no-untyped-def]
    def wrapped(req: Received) -> Reply:
        if req.headers.get("email") != CV_HEADERS["email"] or req.headers.get("token") != CV_HEADERS["token"]:
            return Reply(401, {"codigo": 401, "mensagem": "Token inválido"})
        return handler(req)
    return wrapped


def test_cvcrm_client_upsert_is_retried_safely_because_cv_upserts(server: Loopback) -> None:
    server.route("POST", "/api/v1/cadastros/clientes", [Reply(503), Reply(200, {"idpessoa": 31})])
    server.routes[("POST", "/api/v1/cadastros/clientes")] = cv_guard(server.routes[("POST", "/api/v1/cadastros/clientes")])
    with cv(server) as conn:
        result = conn.call("upsert_cliente", {"idpessoa_int": "sienge-5", "nome": "Ana", "documento_tipo": "cpf",
                                              "documento": "52998224725", "telefone": "+5548999990000"})
    assert result.id == "31" and len(server.hits("POST")) == 2
    assert server.hits("POST")[1].json() == {"idpessoa_int": "sienge-5", "nome": "Ana", "documento_tipo": "cpf",
                                             "documento": "52998224725", "telefone": "+5548999990000"}


def test_cvcrm_reservation_create_after_timeout_is_found_not_duplicated(server: Loopback) -> None:
    reservas: list[dict] = []

    def create(req: Received) -> Reply:
        reservas.append({"idreserva": 500 + len(reservas), "idreserva_int": req.json()["idreserva_int"]})
        return Reply(201, reservas[-1], delay=0.5)

    server.route("POST", "/api/v1/comercial/reservas", cv_guard(create))
    server.route("GET", "/api/v1/comercial/reservas", cv_guard(lambda req: Reply(200, {
        "total": 1, "reservas": [r for r in reservas if r["idreserva_int"] == req.query.get("idreserva_int")]})))
    conn = Connector.open("cvcrm", {"base_url": server.url, "domain": "demo"}, CV_HEADERS, sleep=Sleeps())
    conn._http.timeout = conn._http.timeout.__class__(5, read=0.2)
    result = conn.call("create_reserva", {"idreserva_int": "sienge-contract-9", "idempreendimento_int": "1",
                                          "idunidade_int": "2", "idpessoa_int": "sienge-5"})
    assert result.existing and result.id == "500" and len(reservas) == 1


def test_cvcrm_signed_contract_upload_and_situation_change(server: Loopback) -> None:
    server.route("POST", "/api/v1/comercial/reservas/contratos", cv_guard(lambda req: Reply(200, {"sucesso": True})))
    server.route("POST", "/api/v1/relacionamento/assistencias/981/alterar-situacao/3",
                 cv_guard(lambda req: Reply(200, {"sucesso": True})))
    pdf = base64.b64encode(b"%PDF-1.7 signed").decode()
    with cv(server) as conn:
        conn.call("upload_contrato", {"idreserva_cv": 500, "contratos": [
            {"contrato_base64": pdf, "contrato_nome": "contrato-assinado.pdf", "assinado": "S"}]})
        conn.call("alterar_situacao_assistencia", {"idassistencia": 981, "idsituacao": 3})
    upload = server.hits("POST", "/api/v1/comercial/reservas/contratos")[0].json()
    assert upload == {"idreserva_cv": 500, "contratos": [{"contrato_base64": pdf, "contrato_nome": "contrato-assinado.pdf",
                                                          "assinado": "S"}]}
    assert len(server.hits("POST", "/api/v1/relacionamento/assistencias/981/alterar-situacao/3")) == 1


def test_cvcrm_v3_reads_log_in_once_with_a_bearer_token(server: Loopback) -> None:
    def login(req: Received) -> Reply:
        ok = req.json() == {"email": CV_HEADERS["email"], "senha": "cvcrm-sandbox-senha", "painel": "gestor"}
        return Reply(200, {"token": "cv-bearer-1", "expires_in": 21600}) if ok else Reply(401, {})

    server.route("POST", "/api/v3/auth/token", login)
    server.route("GET", "/api/v3/comercial/reservas/500/contratos-assinados", lambda req: Reply(
        200, {"link": "https://cert", "link_contrato_assinado": None})
        if req.headers.get("authorization") == "Bearer cv-bearer-1" else Reply(401, {}))
    with cv(server) as conn:
        for _ in range(2):
            assert next(iter(conn.read("contratos_assinados", params={"idreserva": 500})))["link"] == "https://cert"
    assert len(server.hits("POST", "/api/v3/auth/token")) == 1


def test_cvcrm_assistencias_are_paged_by_total(server: Loopback) -> None:
    rows = [{"idassistencia": i} for i in range(120)]
    server.route("GET", "/api/v1/relacionamento/assistencias", cv_guard(lambda req: Reply(200, {
        "total": len(rows), "assistencias": rows[int(req.query["offset"]):int(req.query["offset"]) + int(req.query["limit"])]})))
    with cv(server) as conn:
        assert len(list(conn.read("assistencias"))) == 120
    assert len(server.hits()) == 3


# ------------------------------------------------------------------------------------------ DocuSign

ACCOUNT = "00000000-0000-0000-0000-0000000d0c05"
DS = f"/restapi/v2.1/accounts/{ACCOUNT}"


def docusign(server: Loopback) -> Connector:
    return Connector.open("docusign", {"base_url": server.url, "account_id": ACCOUNT},
                          {"access_token": "docusign-sandbox-token", "connect_hmac_key": "docusign-connect-secret"},
                          sleep=Sleeps())


def test_docusign_envelope_with_routing_order_tabs_and_our_key(server: Loopback) -> None:
    server.route("POST", f"{DS}/envelopes", lambda req: Reply(201, {"envelopeId": "env-1", "status": "sent"})
                 if req.headers.get("authorization") == "Bearer docusign-sandbox-token" else Reply(401, {}))
    record = {
        "emailSubject": "Contrato 42", "status": "sent",
        "documents": [{"documentId": "1", "name": "Contrato", "fileExtension": "pdf", "documentBase64": "JVBERi0="}],
        "recipients": {"signers": [
            {"recipientId": "1", "routingOrder": "1", "name": "Ana", "email": "ana@example.com",
             "tabs": {"signHereTabs": [{"documentId": "1", "pageNumber": "3", "xPosition": "400", "yPosition": "700"}]}},
            {"recipientId": "2", "routingOrder": "2", "name": "Bruno", "email": "bruno@example.com",
             "tabs": {"signHereTabs": [{"anchorString": "/assinatura_spouse/", "anchorUnits": "pixels"}]}},
        ]},
        "customFields": {"textCustomFields": [{"name": "ponte_contract_id", "value": "42"}]},
    }
    with docusign(server) as conn:
        assert conn.call("create_envelope", record, idempotency_key="acme:42:v1").id == "env-1"
    body = server.hits("POST")[0].json()
    signers = body["recipients"]["signers"]
    assert [(s["routingOrder"], s["name"]) for s in signers] == [("1", "Ana"), ("2", "Bruno")]
    assert signers[0]["tabs"]["signHereTabs"] == [{"documentId": "1", "pageNumber": "3", "xPosition": "400",
                                                   "yPosition": "700"}]
    assert signers[1]["tabs"]["signHereTabs"][0]["anchorString"] == "/assinatura_spouse/"
    assert body["customFields"]["textCustomFields"] == [
        {"name": "ponte_key", "value": "acme:42:v1", "show": "false", "required": "false"},
        {"name": "ponte_contract_id", "value": "42"}]


def test_docusign_lookup_by_custom_field_and_combined_download(server: Loopback) -> None:
    server.route("GET", f"{DS}/envelopes", lambda req: Reply(200, {
        "envelopes": [{"envelopeId": "env-7"}] if req.query.get("custom_field") == "ponte_key=acme:42:v1" else [],
        "totalSetSize": "1"}))
    server.route("GET", f"{DS}/envelopes/env-7/documents/combined", lambda req: Reply(
        200, b"%PDF-1.7 combined+certificate" if req.query.get("certificate") == "true" else b"%PDF nocert",
        {"Content-Type": "application/pdf", "Content-Disposition": "file; filename=combined.pdf"}))
    with docusign(server) as conn:
        found = conn.find_existing("create_envelope", {}, idempotency_key="acme:42:v1")
        assert found is not None and found.id == "env-7"
        assert conn.download("download_combined", envelope_id="env-7") == b"%PDF-1.7 combined+certificate"


# ----------------------------------------------------------------------------------------- Clicksign


def test_clicksign_envelope_flow_speaks_json_api(server: Loopback) -> None:
    def jsonapi(kind: str, ident: str):  # type: ignore[no-untyped-def]
        def handler(req: Received) -> Reply:
            assert req.headers["authorization"] == "clicksign-sandbox-token"
            assert req.headers["content-type"] == "application/vnd.api+json"
            data = req.json()["data"]
            assert data["type"] == kind
            return Reply(201 if req.method == "POST" else 200, {"data": {"id": ident, "type": kind, **data}})
        return handler

    server.route("POST", "/api/v3/envelopes", jsonapi("envelopes", "e1"))
    server.route("GET", "/api/v3/envelopes/e1/documents", Reply(200, {"data": [], "links": {}}))
    server.route("POST", "/api/v3/envelopes/e1/documents", jsonapi("documents", "d1"))
    server.route("GET", "/api/v3/envelopes/e1/signers", Reply(200, {"data": []}))
    server.route("POST", "/api/v3/envelopes/e1/signers", jsonapi("signers", "s1"))
    server.route("POST", "/api/v3/envelopes/e1/requirements", jsonapi("requirements", "r1"))
    server.route("PATCH", "/api/v3/envelopes/e1", jsonapi("envelopes", "e1"))
    server.route("POST", "/api/v3/envelopes/e1/notifications", jsonapi("notifications", "n1"))
    conn = Connector.open("clicksign", {"base_url": server.url},
                          {"access_token": "clicksign-sandbox-token", "webhook_secret": "x" * 10}, sleep=Sleeps())
    assert conn.call("create_envelope", {"name": "Contrato 42", "locale": "pt-BR", "auto_close": True}).id == "e1"
    assert conn.call("add_document", {"envelope_id": "e1", "filename": "c.pdf", "content_base64": "JVBERi0="}).id == "d1"
    conn.call("add_signer", {"envelope_id": "e1", "name": "Ana", "email": "ana@example.com", "group": 1,
                             "has_documentation": True, "refusable": False,
                             "communicate_events": {"signature_request": "email", "signature_reminder": "email",
                                                    "document_signed": "email"}})
    conn.call("add_requirement", {"envelope_id": "e1", "action": "agree", "role": "sign", "document_id": "d1", "signer_id": "s1"})
    conn.call("activate_envelope", {"envelope_id": "e1"})
    conn.call("notify", {"envelope_id": "e1", "message": "Assine, por favor"})
    signer = server.hits("POST", "/api/v3/envelopes/e1/signers")[0].json()["data"]["attributes"]
    assert signer["group"] == 1 and signer["communicate_events"]["signature_request"] == "email"
    requirement = server.hits("POST", "/api/v3/envelopes/e1/requirements")[0].json()["data"]
    assert requirement["relationships"] == {"document": {"data": {"type": "documents", "id": "d1"}},
                                            "signer": {"data": {"type": "signers", "id": "s1"}}}
    assert server.hits("PATCH")[0].json() == {"data": {"type": "envelopes", "id": "e1", "attributes": {"status": "running"}}}


# ------------------------------------------------------------------------------------------ WhatsApp


def test_whatsapp_template_message(server: Loopback) -> None:
    server.route("POST", "/v23.0/100000000000001/messages", lambda req: Reply(
        200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.1"}]})
        if req.headers.get("authorization") == "Bearer whatsapp-sandbox-token" else Reply(401, {}))
    conn = Connector.open("whatsapp", {"base_url": server.url, "phone_number_id": "100000000000001"},
                          {"access_token": "whatsapp-sandbox-token", "app_secret": "a" * 8, "verify_token": "v" * 8})
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                  {"type": "text", "text": "https://sign/1"}]}]
    result = conn.call("send_template", {"to": "5548999990000", "template": {
        "name": "ponte_convite_assinatura", "language": {"code": "pt_BR"}, "components": components}})
    assert result.id == "wamid.1"
    assert server.hits()[0].json()["template"] == {
        "name": "ponte_convite_assinatura", "language": {"policy": "deterministic", "code": "pt_BR"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                       {"type": "text", "text": "https://sign/1"}]}]}


def test_check_says_what_works_and_what_is_forbidden(server: Loopback) -> None:
    server.route("GET", f"{P}/customers", listing([{"id": 1}]))
    server.route("GET", f"{P}/enterprises", listing([{"id": 1}]))
    server.route("GET", f"{P}/units", listing([]))
    server.route("GET", f"{P}/sales-contracts", Reply(403, {"status": 403, "developerMessage": "Forbidden"}))
    with sienge(server) as conn:
        results = {r.stream: r for r in conn.check()}
    assert results["customers"].ok and not results["sales_contracts"].ok
    assert "403" in results["sales_contracts"].detail


@pytest.mark.parametrize("name", ["sienge", "cvcrm", "docusign", "clicksign", "whatsapp", "zapsign"])
def test_base_url_is_overridable_per_tenant(name: str) -> None:
    values = {"base_url": "http://127.0.0.1:18100", "subdomain": "demo", "domain": "demo", "account_id": "acc",
              "phone_number_id": "1"}
    conn = Connector.open(name, values, {})
    assert conn.base_url.startswith("http://127.0.0.1:18100")
    assert json.dumps(conn.base_url)

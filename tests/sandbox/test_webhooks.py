"""Sienge hooks, technical assistance, CV CRM webhooks: headers, ids-only bodies and retries."""

from __future__ import annotations

import uuid

import httpx

from connectors.sandbox import Sandbox

from .conftest import CVCRM_HEADERS, SIENGE_AUTH


def test_sienge_delivery_headers_and_retries(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["sienge"], auth=SIENGE_AUTH)
    hook = client.post("/hooks", json={"url": fresh.sink.url("sienge"), "token": "s3cr3t",
                                       "events": ["CUSTOMER_UPDATED", "SALES_CONTRACT_CANCELED"]}).json()
    fresh.sink.script("sienge", [500, 503])  # two failures, then the receiver recovers
    fresh.sienge.mutate_customer(3, email="outro@example.com.br")
    received = fresh.sink.wait_for("sienge", 3)
    assert [r.status for r in received] == [500, 503, 200]
    first = received[0]
    assert first.json() == {"customerId": 3}
    assert first.headers["authorization"] == "Bearer s3cr3t"
    assert first.headers["x-sienge-event"] == "CUSTOMER_UPDATED"
    assert first.headers["x-sienge-tenant"] == "demo"
    assert first.headers["x-sienge-hook-id"] == hook["id"]
    assert first.headers["user-agent"] == "sienge-hooks"
    uuid.UUID(first.headers["x-sienge-id"])
    assert {r.headers["x-sienge-id"] for r in received} == {first.headers["x-sienge-id"]}  # same event, retried
    # The change is visible through the API (webhooks are hints, reads are truth).
    assert client.get("/customers/3").json()["email"] == "outro@example.com.br"

    contract = next(c for c in fresh.sienge.state.contracts.values() if c["situation"] == "2")
    assert client.post(f"/sales-contracts/{contract['id']}/cancellation",
                       json={"date": "2026-11-20", "reason": "Distrato"}).status_code == 201
    cancelled = fresh.sink.wait_for("sienge", 1, where=lambda r: r.headers["x-sienge-event"] == "SALES_CONTRACT_CANCELED")
    assert cancelled[0].json() == {"salesContractId": contract["id"]}
    assert client.get(f"/sales-contracts/{contract['id']}").json()["situation"] == "3"


def test_sienge_gives_up_after_the_schedule(fresh: Sandbox) -> None:
    fresh.sienge.config.sienge_retry_delays[:] = [0.05, 0.05]
    httpx.post(f"{fresh.api['sienge']}/hooks", auth=SIENGE_AUTH,
               json={"url": fresh.sink.url("down"), "events": ["CUSTOMER_UPDATED"]})
    fresh.sink.script("down", [500, 500, 500, 500])
    fresh.sienge.mutate_customer(1, name="Nome Alterado")
    attempts = fresh.dispatcher.wait_for(lambda a: any(x.outcome == "failed" for x in a))
    assert [a.outcome for a in attempts if a.system == "sienge"] == ["retrying", "retrying", "failed"]


def test_technical_assistance_contract(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["sienge"], auth=SIENGE_AUTH)
    contract = next(c for c in fresh.sienge.state.contracts.values() if c["situation"] == "2")
    body = {"externalId": "cv-1", "enterpriseId": contract["enterpriseId"],
            "unitId": contract["salesContractUnits"][0]["id"], "customerId": contract["salesContractCustomers"][0]["id"],
            "description": "Infiltração", "openedAt": "2026-11-20T10:00:00-03:00",
            "items": [{"description": "Banheiro", "minimumCompletionDays": 5}, {"description": "Sala"}],
            "attachments": [{"name": "foto.jpg", "contentBase64": "aGVsbG8="}]}
    refused = client.post("/technical-assistances", json=body)
    assert refused.status_code == 400
    assert refused.json()["errors"] == [{"field": "items[1].minimumCompletionDays",
                                         "message": refused.json()["developerMessage"]}]
    body["items"][1]["minimumCompletionDays"] = 10
    created = client.post("/technical-assistances", json=body)
    assert created.status_code == 201
    record = created.json()
    assert record["status"] == "OPEN" and record["externalId"] == "cv-1" and record["id"] >= 1
    assert client.post("/technical-assistances", json=body).status_code == 409
    found = client.get("/technical-assistances", params={"externalId": "cv-1"}).json()
    assert found["resultSetMetadata"]["count"] == 1

    client.post("/hooks", json={"url": fresh.sink.url("ta"), "events": [
        "TECHNICAL_ASSISTANCE_IN_PROGRESS", "TECHNICAL_ASSISTANCE_FINISHED"]})
    fresh.sienge.move_assistance(record["id"], "in-progress")
    httpx.post(f"{fresh.urls['sienge']}/_sandbox/technical-assistances/{record['id']}/finish")
    received = fresh.sink.wait_for("ta", 2)
    assert [r.headers["x-sienge-event"] for r in received] == ["TECHNICAL_ASSISTANCE_IN_PROGRESS",
                                                                "TECHNICAL_ASSISTANCE_FINISHED"]
    assert received[0].json() == {"technicalAssistanceId": record["id"]}
    assert client.get(f"/technical-assistances/{record['id']}").json()["status"] == "FINISHED"


def test_cvcrm_webhook_ids_only(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["cvcrm"], headers=CVCRM_HEADERS)
    url = fresh.sink.url("cv") + "?secret=long-secret-in-url"
    registered = client.post("/v1/integracoes/webhooks", json={
        "nome": "ponte", "funcionalidade": "AS", "endereco": url, "gatilho": 3, "ativoPainel": "S",
        "idempreendimento": [], "idassunto": [], "idsubassunto": []})
    assert registered.status_code == 201
    assert client.get("/v1/integracoes/webhooks").json()["webhooks"][0]["gatilho"] == 3
    workflow = client.get("/v1/configuracoes/workflows/AS").json()["situacoes"]
    final = next(s for s in workflow if s["final"] and not s["cancelada"])
    moved = client.post(f"/v1/relacionamento/assistencias/1/alterar-situacao/{final['idsituacao']}")
    assert moved.status_code == 200
    delivery = fresh.sink.wait_for("cv")[0]
    body = delivery.json()
    assert set(body) == {"idwebhook", "funcionalidade", "gatilho", "id", "enviado_em"}
    assert (body["funcionalidade"], body["gatilho"], body["id"]) == ("AS", 3, 1)
    assert delivery.query == "secret=long-secret-in-url"
    assert not any(h.startswith("x-") and "sign" in h for h in delivery.headers)
    assert client.get("/v1/relacionamento/assistencias/1").json()["data_conclusao"]
    assert client.post("/v1/relacionamento/assistencias/1/alterar-situacao/99").status_code == 400

"""CV CRM: upsert keeps the CRM's enrichment, reservas by external key, contracts, assistências."""

from __future__ import annotations

import httpx

from connectors.sandbox import Sandbox

from .conftest import CVCRM_HEADERS, pdf_b64


def _cliente(sandbox: Sandbox, nth: int) -> dict:
    """The nth Sienge customer the CRM does not know yet."""
    known = sandbox.cvcrm.state.by_documento
    c = [c for c in sandbox.sienge.state.customers.values() if (c.get("cpf") or c["cnpj"]) not in known][nth]
    return {"idpessoa_int": str(c["id"]), "nome": c["name"], "documento_tipo": "cpf" if c.get("cpf") else "cnpj",
            "documento": c.get("cpf") or c["cnpj"], "telefone": c["phones"][0]["number"], "email": c["email"]}


def test_upsert_by_documento_keeps_enrichment(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["cvcrm"], headers=CVCRM_HEADERS)
    body = _cliente(fresh, 0)
    first = client.post("/v1/cadastros/clientes", json=body).json()
    assert first["acao"] == "criado" and first["idpessoa"]
    fresh.cvcrm.enrich_cliente(body["documento"], contatos=[{"tipo": "recado", "telefone": "4830000000"}],
                               associacoes=[{"tipo": "Cônjuge", "documento": "11144477735"}])
    again = client.post("/v1/cadastros/clientes", json={**body, "nome": body["nome"] + " Jr"}).json()
    assert again == {**first, "acao": "atualizado", "mensagem": "Cliente atualizado"}
    pessoa = client.get("/v1/cadastros/clientes", params={"documento": body["documento"]}).json()["pessoas"][0]
    assert pessoa["nome"].endswith(" Jr") and pessoa["contatos"] and pessoa["associacoes"]
    missing = client.post("/v1/cadastros/clientes", json={k: v for k, v in body.items() if k != "telefone"})
    assert missing.status_code == 400 and missing.json()["campo"] == "telefone"
    bad = client.post("/v1/cadastros/clientes", json={**body, "documento": "12345678900", "documento_tipo": "cpf"})
    assert bad.status_code == 400 and bad.json()["campo"] == "documento"
    assert client.get("/v1/cadastros/clientes", params={"documento": "52998224725"}).status_code == 404


def test_reserva_contract_upload(fresh: Sandbox) -> None:
    client = httpx.Client(base_url=fresh.api["cvcrm"], headers=CVCRM_HEADERS)
    body = _cliente(fresh, 1)
    client.post("/v1/cadastros/clientes", json=body)
    unit = next(iter(fresh.sienge.state.units.values()))
    created = client.post("/v1/comercial/reservas", json={
        "idreserva_int": "sienge-1", "documento": body["documento"], "idunidade_int": str(unit["id"]),
        "valor_contrato": 350000.0, "data_venda": "2026-11-01"})
    assert created.status_code == 201
    rid = created.json()["idreserva"]
    assert client.post("/v1/comercial/reservas", json={"idreserva_int": "sienge-1", "documento": body["documento"],
                                                       "idunidade_int": str(unit["id"])}).status_code == 409
    found = client.get("/v1/comercial/reservas", params={"idreserva_int": "sienge-1"}).json()
    assert found["total"] == 1 and found["reservas"][0]["idreserva"] == rid
    upload = client.post("/v1/comercial/reservas/contratos", json={
        "idreserva_cv": rid, "idreserva_int": "sienge-1",
        "contratos": [{"contrato_base64": pdf_b64(), "contrato_nome": "contrato-assinado.pdf", "assinado": "S",
                       "validado": "S"}]})
    assert upload.status_code == 201
    contratos = client.get(f"/v1/comercial/reservas/{rid}/contratos").json()["contratos"]
    assert contratos[0]["assinado"] == "S"
    assert httpx.get(contratos[0]["link"]).content.startswith(b"%PDF-")
    not_pdf = client.post("/v1/comercial/reservas/contratos", json={
        "idreserva_cv": rid, "contratos": [{"contrato_base64": "aGVsbG8=", "contrato_nome": "x.pdf"}]})
    assert not_pdf.status_code == 400
    cancel = client.post(f"/v1/comercial/reservas/{rid}/cancelar-reserva", json={"motivo": "Distrato"})
    assert cancel.status_code == 200
    assert client.get(f"/v1/comercial/reservas/{rid}").json()["situacao"] == "Cancelada"


def test_assistencias_seeded_and_writable(sandbox: Sandbox, cvcrm: httpx.Client) -> None:
    listing = cvcrm.get("/v1/relacionamento/assistencias", params={"offset": 0, "limit": 10}).json()
    assert listing["total"] == 3 and len(listing["assistencias"]) == 3
    first = listing["assistencias"][0]
    assert "prazo_minimo_dias" not in first["itens"][0]  # the pipeline must catch this before Sienge does
    assert first["empreendimento"]["idempreendimento_int"]
    put = cvcrm.put(f"/v1/relacionamento/assistencias/{first['idassistencia']}",
                    json={"dados_assistencia": {"idassistencia_erp": "77"}, "prioridade": "A"})
    assert put.status_code == 200
    after = cvcrm.get(f"/v1/relacionamento/assistencias/{first['idassistencia']}").json()
    assert after["idassistencia_erp"] == "77" and after["prioridade"] == "A"
    assert cvcrm.put(f"/v1/relacionamento/assistencias/{first['idassistencia']}",
                     json={"data_conclusao": "2026-11-01"}).status_code == 400

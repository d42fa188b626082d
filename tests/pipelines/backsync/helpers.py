"""Test stand-in for dispatch (issue #7): an envelope at the sandbox provider plus its store rows.

It follows dispatch's contract (an ``Envelope`` row "sent" with ``provider_envelope_id``, signers with
``provider_recipient_id``, order 1 "sent" and later orders "waiting", the CRM reservation id in
``details``), so these tests can switch to the real dispatcher by replacing :func:`send_envelope`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from connectors.sandbox import Sandbox
from connectors.sandbox.documents import text_pdf
from pipelines.connections import open_connector
from pipelines.store import Store
from pipelines.store.models import Envelope, EnvelopeSigner, utcnow
from schemas.tenant import TenantConfig

CVCRM_HEADERS = {"email": "integracao@demo.cvcrm.com.br", "token": "cvcrm-sandbox-token"}
_counter = itertools.count(1)


@dataclass
class Person:
    role: str
    name: str
    email: str
    cpf: str


PEOPLE = [
    Person("client", "Maria Aparecida da Silva", "maria.silva@example.com.br", "52998224725"),
    Person("spouse", "João Carlos da Silva", "joao.silva@example.com.br", "94580730224"),
    Person("witness", "Clara Nunes Teixeira", "clara.teixeira@example.com", "15736819384"),
]


def create_reservation(sb: Sandbox) -> int:
    """A CV CRM reservation (sale) for the client, so a signed contract has somewhere to go."""
    api = sb.api["cvcrm"]
    client = PEOPLE[0]
    httpx.post(f"{api}/v1/cadastros/clientes", headers=CVCRM_HEADERS, json={
        "idpessoa_int": f"t-{client.cpf}", "nome": client.name, "documento_tipo": "cpf",
        "documento": client.cpf, "telefone": "48991234567", "email": client.email,
    }).raise_for_status()
    unit = next(iter(sb.state.cvcrm.unidades.values()))
    response = httpx.post(f"{api}/v1/comercial/reservas", headers=CVCRM_HEADERS, json={
        "idreserva_int": f"bs-{uuid.uuid4().hex[:10]}", "documento": client.cpf, "idunidade": unit["idunidade"],
        "valor_contrato": "450000.00",
    })
    response.raise_for_status()
    return int(response.json()["idreserva"])


def contract_pdf(title: str, pages: int = 3) -> bytes:
    lines = [f"Cláusula {i}: o comprador declara conhecer o imóvel." for i in range(1, 40 * pages)]
    return text_pdf(title, lines)


def _docusign(tenant: TenantConfig, store: Store, name: str, pdf: bytes, people: list[Person]) -> tuple[str, list[str]]:
    record = {
        "emailSubject": f"Documento para assinatura: {name}",
        "status": "sent",
        "documents": [{"documentId": "1", "name": name, "fileExtension": "pdf",
                       "documentBase64": base64.b64encode(pdf).decode()}],
        "recipients": {"signers": [
            {"recipientId": str(i + 1), "routingOrder": str(i + 1), "name": p.name, "email": p.email,
             "roleName": p.role,
             "tabs": {"signHereTabs": [{"documentId": "1", "pageNumber": "1", "xPosition": "400",
                                        "yPosition": "700"}]}}
            for i, p in enumerate(people)
        ]},
    }
    with open_connector(tenant, "docusign", store=store) as ds:
        result = ds.call("create_envelope", record, idempotency_key=f"test:{uuid.uuid4().hex}")
    assert result.id
    return result.id, [str(i + 1) for i in range(len(people))]


def _clicksign(tenant: TenantConfig, store: Store, name: str, pdf: bytes, people: list[Person]) -> tuple[str, list[str]]:
    # with the attributes the Clicksign collection's examples always fill, as dispatch's: the session's
    # spec check (tests/support/spec_capture.py) holds these bodies to the collection too
    deadline = (utcnow() + timedelta(days=30)).isoformat(timespec="seconds")
    with open_connector(tenant, "clicksign", store=store) as cs:
        eid = cs.call("create_envelope", {"name": name, "locale": "pt-BR", "auto_close": True, "remind_interval": 3,
                                          "block_after_refusal": True, "deadline_at": deadline}).id
        doc = cs.call("add_document", {"envelope_id": eid, "filename": name,
                                       "content_base64": base64.b64encode(pdf).decode()}).id
        ids = []
        for group, p in enumerate(people, start=1):
            sid = cs.call("add_signer", {"envelope_id": eid, "name": p.name, "email": p.email,
                                         "has_documentation": True, "refusable": True, "group": group,
                                         "communicate_events": {}}).id
            cs.call("add_requirement", {"envelope_id": eid, "action": "agree", "role": "sign",
                                        "document_id": doc, "signer_id": sid})
            ids.append(str(sid))
        cs.call("activate_envelope", {"envelope_id": eid, "deadline_at": deadline})
    assert eid
    return str(eid), ids


def send_envelope(
    sb: Sandbox, store: Store, tenant: TenantConfig, *, provider: str | None = None, signers: int = 2,
    contract_id: str | None = None, reservation: int | None = None, pages: int = 3,
) -> Envelope:
    """Send a contract for signature at the sandbox and record it as dispatch would."""
    provider = provider or tenant.options.signing_provider
    contract_id = contract_id or str(7000 + next(_counter))
    reservation = reservation or create_reservation(sb)
    name = f"Contrato {contract_id}.pdf"
    pdf = contract_pdf(name, pages)
    people = PEOPLE[:signers]
    send = _docusign if provider == "docusign" else _clicksign
    pid, recipient_ids = send(tenant, store, name, pdf, people)
    digest = hashlib.sha256(pdf).hexdigest()
    with store.session() as session:
        env = Envelope(
            tenant=tenant.id, contract_id=contract_id, document_name=name, document_hash=digest,
            idempotency_key=f"{tenant.id}:contract:{contract_id}:{digest}:{uuid.uuid4().hex[:6]}",
            provider=provider, provider_envelope_id=pid, status="sent", sent_at=utcnow(),
            details={"reservation_id": reservation},
        )
        for order, (person, rid) in enumerate(zip(people, recipient_ids, strict=True), start=1):
            env.signers.append(EnvelopeSigner(
                role=person.role, routing_order=order, name=person.name, email=person.email,
                document=person.cpf, channel="email", provider_recipient_id=rid,
                status="sent" if order == 1 else "waiting",
            ))
        session.add(env)
        session.flush()
        session.expunge_all()
    return env


def register_gateway(sb: Sandbox, tenant: TenantConfig, store: Store, gateway_url: str) -> None:
    """Point DocuSign Connect and Clicksign webhooks at the gateway, as docs/backsync.md says."""
    with open_connector(tenant, "docusign", store=store) as ds:
        ds.register_webhook("connect", f"{gateway_url}/webhooks/{tenant.id}/docusign/connect")
    response = httpx.post(
        f"{sb.api['clicksign']}/webhooks",
        headers={"Authorization": "clicksign-sandbox-token", "Content-Type": "application/vnd.api+json"},
        json={"data": {"type": "webhooks", "attributes": {
            "endpoint": f"{gateway_url}/webhooks/{tenant.id}/clicksign/events", "events": [], "status": "active"}}},
    )
    response.raise_for_status()


def crm_contracts(sb: Sandbox, reservation: int) -> list[dict[str, Any]]:
    response = httpx.get(f"{sb.api['cvcrm']}/v1/comercial/reservas/{reservation}/contratos", headers=CVCRM_HEADERS)
    response.raise_for_status()
    return list(response.json()["contratos"])

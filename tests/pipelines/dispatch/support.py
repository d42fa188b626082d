"""Seeding the CV CRM sandbox with sales whose contracts are ready to sign, through the real API."""

from __future__ import annotations

import base64
import itertools
import os
from dataclasses import dataclass
from typing import Any

from connectors.runtime.client import Connector
from pipelines.connections import TenantConnectors, open_connector
from pipelines.dispatch.verify import confirm_code, send_code
from pipelines.documents.render import text_to_pdf
from pipelines.store.db import Store
from schemas.tenant import TenantConfig


def cpf(n: int) -> str:
    """A valid CPF (check digits computed) unique per ``n``."""
    base = [int(d) for d in f"{(n * 7919 + 123456) % 10**9:09d}"]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(base, range(size + 1, 1, -1), strict=False))
        base.append((total * 10 % 11) % 10)
    return "".join(map(str, base))


_ids = itertools.count(1 + os.getpid() % 1000 * 1000)


@dataclass
class Sale:
    reservation_id: int
    contract_id: int
    people: dict[str, dict[str, Any]]

    @property
    def ref(self) -> str:
        return f"{self.reservation_id}:{self.contract_id}"


def person(role: str, n: int, *, email: bool = True, phone: bool = True) -> dict[str, Any]:
    first = {"titular": "Maria", "Cônjuge": "João", "testemunha": "Clara"}.get(role, "Ana")
    data: dict[str, Any] = {"nome": f"{first} Teste{n} da Silva", "documento": cpf(n)}
    data["email"] = f"{role.lower().replace('ô', 'o')}{n}@example.com" if email else None
    data["celular"] = f"4899{n:07d}" if phone else None
    return data


def upsert(cvcrm: Connector, data: dict[str, Any]) -> int:
    record = {"idpessoa_int": f"t{data['documento']}", "nome": data["nome"], "documento_tipo": "cpf",
              "documento": data["documento"], "telefone": data.get("celular") or "4833334444",
              "celular": data.get("celular"), "email": data.get("email") or "sem-email@example.com"}
    result = cvcrm.call("upsert_cliente", record)
    return int(result.data["idpessoa"])


_CVCRM: dict[tuple[str, str], Connector] = {}


def _cvcrm(tenant: TenantConfig) -> Connector:
    """One CV CRM connector per sandbox for seeding (opening one parses its spec: slow)."""
    key = (tenant.id, tenant.connectors["cvcrm"].values["base_url"])
    if key not in _CVCRM:
        _CVCRM[key] = open_connector(tenant, "cvcrm")
    return _CVCRM[key]


def seed_sale(sb: Any, tenant: TenantConfig, *, roles: tuple[str, ...] = ("titular", "Cônjuge", "testemunha"),
              pdf_pages: int = 2, validado: str = "S", overrides: dict[str, dict[str, Any]] | None = None) -> Sale:
    """A reservation with people in ``roles`` and one uploaded, validated contract PDF."""
    n = next(_ids) * 3
    cvcrm = _cvcrm(tenant)
    if True:
        people: dict[str, dict[str, Any]] = {}
        ids: dict[str, int] = {}
        for offset, role in enumerate(roles):
            data = person(role, n + offset)
            changes = (overrides or {}).get(role, {})
            data.update({k: v for k, v in changes.items() if v is not None})
            ids[role] = upsert(cvcrm, data)
            # the CRM's API insists on these at creation; a CRM user cleared them afterwards
            for key, value in changes.items():
                if value is None:
                    data[key] = None
                    for field in ("celular", "telefone") if key == "celular" else (key,):
                        sb.state.cvcrm.pessoas[ids[role]][field] = None
            people[role] = data
        unidade = next(iter(sb.state.cvcrm.unidades.values()))
        body = {"idreserva_int": f"dispatch-{n}", "idpessoa": ids[roles[0]], "idunidade": unidade["idunidade"],
                "associados": [{"idpessoa": ids[r], "tipo": r} for r in roles[1:]],
                "valor_contrato": "612345.67"}
        created = cvcrm.call("create_reserva", body)
        reservation = int(created.data["idreserva"])
        body_text = "\n".join(f"Cláusula {i}: texto do contrato {n}." for i in range(40 * pdf_pages))
        pdf, _ = text_to_pdf(f"Contrato {n}", body_text)
        up = cvcrm.call("upload_contrato", {"idreserva_cv": reservation, "contratos": [
            {"contrato_base64": base64.b64encode(pdf).decode(), "contrato_nome": f"Contrato de venda {n}",
             "assinado": "N", "validado": validado}]})
        contract = int(up.data["contratos"][0]["idreservacontrato"])
    return Sale(reservation, contract, people)


def verify_manager(store: Store, tenant: TenantConfig) -> None:
    with TenantConnectors(tenant, store) as conns:
        email = str(tenant.options.contract_managers[0])
        confirm_code(store, tenant, email, send_code(store, tenant, email, conns.get("smtp")))

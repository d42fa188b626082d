"""A running sandbox, the webhook gateway over real HTTP, hooks registered, a migrated store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connectors.runtime.client import Connector
from connectors.sandbox import start_sandbox
from orchestration.gateway.app import create_app
from pipelines.assistance import AssistanceRequest, run_assistance
from pipelines.assistance.report import AssistanceReport
from pipelines.connections import open_connector
from pipelines.store.db import Store
from schemas.tenant import TenantConfig
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant

FAST_RETRIES = [0.05, 0.1, 0.2]


class NoWaitBudget:
    """The sandbox runs with rate limits off; client-side budgets are tested in tests/connectors."""

    def reserve(self, bucket: Any, cost: float = 1.0) -> float:
        return 0.0


@dataclass
class Env:
    sb: Any
    store: Store
    tenant: TenantConfig
    sienge: Connector
    cvcrm: Connector
    gateway: str
    buyers: list[tuple[int, int]] = field(default_factory=list)

    def run(self, **request: Any) -> AssistanceReport:
        return run_assistance(self.store, self.tenant, self.sienge, self.cvcrm, AssistanceRequest(**request))

    def crm_file(self, content: bytes) -> str:
        """A file kept by the sandbox CRM; returns its link (on the CRM's own host)."""
        token = uuid.uuid4().hex
        self.sb.state.cvcrm.files[token] = content
        return f"{self.sb.urls['cvcrm']}/files/{token}"

    def open_request(self, n: int, *, items: list[dict[str, Any]] | None = None,
                     files: dict[str, bytes] | None = None, links: dict[str, str] | None = None) -> str:
        """A buyer opens a request in the CRM portal (fires the CV ``AS`` webhook); returns its CRM id.

        ``files`` are uploaded to the CRM; ``links`` are attachments given as a bare URL (name -> link).
        """
        idpessoa, idunidade = self.buyers[n % len(self.buyers)]
        anexos = [{"nome": name, "link": self.crm_file(content)} for name, content in (files or {}).items()]
        anexos += [{"nome": name, "link": link} for name, link in (links or {}).items()]
        record = self.sb.cvcrm.open_assistencia(
            idpessoa=idpessoa, unidade=idunidade, descricao=f"Pedido de reparo {n}",
            itens=items or [{"iditem": 1000 + n, "descricao": f"Reparo {n}", "prazo_minimo_dias": 7}],
            anexos=anexos,
        )
        return str(record["idassistencia"])

    def crm(self, crm_id: str) -> dict[str, Any]:
        return dict(self.sb.state.cvcrm.assistencias[int(crm_id)])

    def settle(self, system: str, expected: int, timeout: float = 15) -> None:
        """Wait until ``expected`` webhook deliveries of ``system`` ended (delivered, failed or lost)."""
        def done(attempts: list[Any]) -> bool:
            finished = {a.delivery_id for a in attempts
                        if a.system == system and a.outcome in ("delivered", "failed", "lost")}
            return len(finished) >= expected
        self.sb.dispatcher.wait_for(done, timeout=timeout)
        time.sleep(0.1)  # duplicates of a delivered event may still be in flight


def _register_buyers(sb: Any, cvcrm: Connector, count: int = 4) -> list[tuple[int, int]]:
    """Customers the import would have put in the CRM (with their Sienge id), and their units."""
    buyers = []
    live = [c for c in sb.seed_data.contracts if c["situation"] == "2"][:count]
    for contract in live:
        customer = sb.seed_data.customers[contract["salesContractCustomers"][0]["id"] - 1]
        document = customer.get("cpf") or customer.get("cnpj")
        result = cvcrm.call("upsert_cliente", {
            "idpessoa_int": str(customer["id"]), "nome": customer["name"],
            "documento_tipo": "cpf" if customer.get("cpf") else "cnpj", "documento": document,
            "telefone": customer["phones"][0]["number"], "email": customer["email"],
        })
        unit_id = str(contract["salesContractUnits"][0]["id"])
        unidade = next(u for u in sb.state.cvcrm.unidades.values() if u["idunidade_int"] == unit_id)
        buyers.append((int(result.id), int(unidade["idunidade"])))
    return buyers


@pytest.fixture
def env_factory(store: Store) -> Iterator[Callable[..., Env]]:
    """Build an environment; ``faults`` per system, ``options`` merged into options.assistance."""
    stack: list[Any] = []

    def make(faults: dict[str, Any] | None = None, seed_assistances: int = 0,
             event_prefix: str | None = None, **options: Any) -> Env:
        sb = start_sandbox(rate_limits=False, faults=faults, assistances=seed_assistances,
                           sienge_retry_delays=FAST_RETRIES, cvcrm_retry_delays=FAST_RETRIES)
        stack.append(sb)
        overrides: dict[str, Any] = {}
        if options:
            overrides["options"] = {"assistance": options}
        if event_prefix:
            overrides["connectors"] = {"sienge": {"values": {"assistance_event_prefix": event_prefix}}}
        tenant = sandbox_tenant(sb, **overrides)
        server = serve_asgi(create_app(store, {tenant.id: tenant}))
        gateway = server.__enter__()
        stack.append(server)
        sienge = open_connector(tenant, "sienge", store=store, budget=NoWaitBudget())
        cvcrm = open_connector(tenant, "cvcrm", store=store, budget=NoWaitBudget())
        stack.extend([sienge, cvcrm])
        secret = tenant.connector("cvcrm").resolve_credentials(tenant.id)["webhook_secret"]
        opened = tenant.options.assistance.situation_opened
        cvcrm.register_webhook("events", f"{gateway}/webhooks/{tenant.id}/cvcrm/events/{secret}",
                               funcionalidade="AS", gatilho=opened if opened is not None else 0)
        sienge.register_webhook("hooks", f"{gateway}/webhooks/{tenant.id}/sienge/hooks")
        return Env(sb, store, tenant, sienge, cvcrm, gateway, _register_buyers(sb, cvcrm))

    yield make
    for item in reversed(stack):
        if isinstance(item, Connector):
            item.close()
        elif hasattr(item, "__exit__"):
            item.__exit__(None, None, None)
        else:
            item.stop()

"""A world with one drift of each kind, over the sandbox and real loopback HTTP.

The sandbox's CV CRM holds Sienge's customers and sales (imported by the real import), and the signing
provider's envelopes (sent as dispatch records them: tests/pipelines/backsync/helpers.py). Nothing is registered
for provider webhooks, so every webhook is lost: what the providers did reaches Ponte only through
back-sync's own reads, or the reconciliation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connectors.sandbox import Sandbox, start_sandbox
from pipelines.backsync.apply import apply_events
from pipelines.backsync.flow import read_provider
from pipelines.connections import open_connector
from pipelines.imports.flow import run_import
from pipelines.store import Store
from pipelines.store.models import Envelope
from schemas.tenant import TenantConfig
from tests.pipelines.backsync.helpers import send_envelope
from tests.pipelines.dispatch.support import Sale, seed_sale
from tests.support.tenants import sandbox_tenant_file


@dataclass
class World:
    sb: Sandbox
    store: Store
    tenant: TenantConfig
    #: drift seeded, by kind
    completed: Envelope | None = None  # envelope_status: completed at the provider
    declined: Envelope | None = None  # envelope_status: refused at the provider
    unfinished: Envelope | None = None  # signed_pdf_missing: completed at Ponte, never uploaded
    sale: Sale | None = None  # ready_not_sent
    person: dict = field(default_factory=dict)  # import_content: {sienge id, document, name}
    reservation: dict = field(default_factory=dict)  # import_content: {sienge sale id, CV id, value}

    def opener(self, key: str):
        return open_connector(self.tenant, key, store=self.store)

    def envelope(self, envelope_id: int) -> Envelope:
        with self.store.session() as session:
            env = session.get(Envelope, envelope_id)
            assert env is not None
            session.expunge(env)
            return env


@pytest.fixture
def world(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PONTE_TENANTS_DIR", str(tmp_path / "tenants"))
    monkeypatch.setenv("PONTE_DATABASE_URL", store.url)
    monkeypatch.setenv("COLUMNS", "250")
    with start_sandbox(customers=6, seed=5, rate_limits=False) as sb:
        tenant = sandbox_tenant_file(sb, tmp_path / "tenants", unthrottled=True,
                                     options={"verification_base_url": "http://127.0.0.1:9"})
        yield World(sb, store, tenant)


def import_all(world: World) -> None:
    with world.opener("sienge") as sienge, world.opener("cvcrm") as cvcrm:
        report = run_import(world.store, world.tenant, sienge, cvcrm)
    assert report.total("dead_lettered") == 0


def seed_drift(world: World) -> World:
    """One drift of each kind (two of envelope_status: a completion and a refusal)."""
    sb, store, tenant = world.sb, world.store, world.tenant
    import_all(world)

    # envelope_status: the provider finished two envelopes; every webhook was lost
    world.completed = send_envelope(sb, store, tenant, provider="docusign", signers=2)
    sb.sign(world.completed.provider_envelope_id, "client")
    sb.sign(world.completed.provider_envelope_id, "spouse")
    world.declined = send_envelope(sb, store, tenant, provider="docusign", signers=2)
    sb.sign(world.declined.provider_envelope_id, "client", "refuse")

    # signed_pdf_missing: completed, and Ponte applied it, but the finalization never ran (a crash)
    world.unfinished = send_envelope(sb, store, tenant, provider="docusign", signers=1)
    sb.sign(world.unfinished.provider_envelope_id, "client")
    pid = str(world.unfinished.provider_envelope_id)
    with world.opener("docusign") as docusign:
        apply_events(store, tenant.id, "docusign", pid, read_provider(docusign, pid), source="test")
    assert world.envelope(world.unfinished.id).status == "completed"

    # ready_not_sent: a validated, unsigned contract nobody sent
    world.sale = seed_sale(sb, tenant, roles=("titular", "Cônjuge"))

    # import_content: a CRM user renamed an imported person (a field Sienge owns), and added a contact
    # to another one (a field the CRM owns: not drift)
    people = list(sb.state.sienge.customers.items())
    (sienge_id, customer), (_other_id, other) = people[0], people[1]
    document = _document(customer)
    world.person = {"id": str(sienge_id), "document": document, "name": customer["name"]}
    sb.cvcrm.enrich_cliente(document, nome="Nome Trocado no CRM")
    sb.cvcrm.enrich_cliente(_document(other), contatos=[{"tipo": "email", "valor": "outro@example.com"}])
    # ... and changed an imported reservation's value (Sienge's) and its notes (the CRM's)
    reserva = next(r for r in sb.state.cvcrm.reservas.values() if r["idreserva_int"].isdigit())
    world.reservation = {"sale": reserva["idreserva_int"], "id": reserva["idreserva"],
                         "value": reserva["valor_contrato"]}
    reserva.update(valor_contrato="1.00", observacoes="cliente pediu desconto")
    return world


def _document(customer: dict) -> str:
    raw = customer.get("cpf") or customer.get("cnpj") or ""
    return "".join(ch for ch in raw if ch.isalnum()).upper()


def crm_person(world: World, document: str) -> dict:
    return next(p for p in world.sb.state.cvcrm.pessoas.values() if p["documento"] == document)


def crm_contracts(world: World, reservation: int | str) -> list[dict]:
    return list(world.sb.state.cvcrm.contratos[int(reservation)])

"""Fixtures: a sandbox of one's own, the gateway (with the verification page) served on loopback and
a tenant whose verification links point at that gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.sandbox import Sandbox, start_sandbox
from orchestration.gateway.app import create_app
from orchestration.gateway.verify import verify_routes
from pipelines.connections import open_connector
from pipelines.store import Store
from schemas.tenant import TenantConfig
from tests.pipelines.backsync.helpers import register_gateway
from tests.support.servers import serve_asgi
from tests.support.tenants import sandbox_tenant


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with start_sandbox(customers=10, seed=5, rate_limits=False,
                       docusign_retry_delays=[0.05, 0.1, 0.2], clicksign_retry_delays=[0.05, 0.1, 0.2]) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONTE_HOME", str(tmp_path / "home"))


@dataclass
class Hub:
    sb: Sandbox
    store: Store
    tenant: TenantConfig
    url: str

    def opener(self, key: str):
        return open_connector(self.tenant, key, store=self.store)


def make_hub(sb: Sandbox, store: Store, url: str, **options: object) -> Hub:
    tenant = sandbox_tenant(sb, options={"verification_base_url": url, "signature_pages": "all", **options})
    return Hub(sb, store, tenant, url)


@pytest.fixture
def hub(sb: Sandbox, store: Store) -> Iterator[Hub]:
    """Sandbox + gateway + tenant; webhooks of DocuSign and Clicksign registered to the gateway."""
    holder: dict[str, TenantConfig] = {}
    app = create_app(store, holder, extra_routes=verify_routes(store))
    with serve_asgi(app) as url:
        h = make_hub(sb, store, url)
        holder[h.tenant.id] = h.tenant
        register_gateway(sb, h.tenant, store, url)
        yield h

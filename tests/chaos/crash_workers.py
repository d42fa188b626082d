"""The flows as separate processes the crash suite kills with SIGKILL (imported once by the fork server)."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta

from mappings import load_mapping
from pipelines import connections
from pipelines.backsync.flow import drain_inbox, poll_stale
from pipelines.connections import TenantConnectors, open_connector
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.imports.flow import run_import
from pipelines.store.db import Store
from ponte.errors import PonteError
from schemas.tenant import TenantConfig

LEASE = 0.3

# parse specs and compile mappings in the fork server, so each forked worker starts hot
for _name in ("sienge", "cvcrm", "docusign"):
    connections.load_spec(_name)
for _mapping in ("cvcrm/contrato_to_contract", "cvcrm/contrato_to_envelope", "docusign/envelope_to_definition"):
    load_mapping(_mapping)


def import_run(db_url: str, tenant_json: str) -> None:
    store = Store(db_url)
    tenant = TenantConfig.model_validate_json(tenant_json)
    with open_connector(tenant, "sienge", store=store) as sienge, open_connector(tenant, "cvcrm", store=store) as cvcrm:
        run_import(store, tenant, sienge, cvcrm)


def dispatch_run(db_url: str, tenant_json: str) -> None:
    store = Store(db_url)
    tenant = TenantConfig.model_validate_json(tenant_json)
    # a claim still held by a killed worker raises; the next run takes it after the lease
    with TenantConnectors(tenant, store) as conns, suppress(PonteError):
        run_dispatch(store, tenant, DispatchRequest(all_ready=True, lease_seconds=LEASE), conns)


def backsync_run(db_url: str, tenant_json: str) -> None:
    store = Store(db_url)
    tenant = TenantConfig.model_validate_json(tenant_json)

    def opener(key: str):
        return open_connector(tenant, key, store=store)

    while drain_inbox(store, tenant, opener, lease_seconds=LEASE).events:
        pass
    poll_stale(store, tenant, opener, quiet_for=timedelta(0))

"""Typed Dagster resources: the state store, tenant files and connectors.

Resources hold configuration only; every run opens what it needs, so the same definitions run in-process,
in a celery worker or a Kubernetes pod.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from connectors.runtime import Connector
from pipelines.connections import open_connector
from pipelines.store import Store, open_store
from schemas import TenantConfig, list_tenants, load_tenant


class StoreResource(ConfigurableResource):
    """The state store. Empty URL: PONTE_DATABASE_URL or the SQLite file under .ponte/."""

    database_url: str = ""
    _store: Store | None = PrivateAttr(default=None)

    def get(self) -> Store:
        if self._store is None:
            self._store = open_store(self.database_url or None)
        return self._store


class TenantsResource(ConfigurableResource):
    """Tenant files (tenants/*.yaml unless PONTE_TENANTS_DIR says otherwise)."""

    def load(self, tenant_id: str) -> TenantConfig:
        return load_tenant(tenant_id)

    def all(self) -> list[TenantConfig]:
        return list_tenants()


class ConnectorsResource(ConfigurableResource):
    """Opens a tenant's connectors with the shared rate budget of the state store."""

    def open(self, tenant: TenantConfig, key: str, store: Store) -> Connector:
        return open_connector(tenant, key, store=store)

    @contextlib.contextmanager
    def sienge_and_crm(self, tenant: TenantConfig, store: Store) -> Iterator[tuple[Connector, Connector]]:
        """The tenant's Sienge and CV CRM connectors, both closed on the way out (the first one too when
        the second fails to open)."""
        with contextlib.ExitStack() as stack:
            sienge = stack.enter_context(self.open(tenant, "sienge", store))
            cvcrm = stack.enter_context(self.open(tenant, "cvcrm", store))
            yield sienge, cvcrm

"""Build the gateway app from the environment (tenants dir, PONTE_DATABASE_URL); used by uvicorn."""

from __future__ import annotations

from starlette.applications import Starlette

from orchestration.gateway.app import create_app
from pipelines.store import Store
from schemas.tenant import list_tenants


def app_from_environment() -> Starlette:
    store = Store()
    tenants = {tenant.id: tenant for tenant in list_tenants()}
    return create_app(store, tenants)

"""Build the gateway app from the environment (tenants dir, PONTE_DATABASE_URL); used by uvicorn."""

from __future__ import annotations

from starlette.applications import Starlette

from orchestration.gateway.app import create_app
from orchestration.gateway.sign import sign_routes
from orchestration.gateway.verify import verify_routes
from pipelines.store import Store
from schemas import list_tenants


def app_from_environment() -> Starlette:
    store = Store()
    tenants = {tenant.id: tenant for tenant in list_tenants()}
    # the QR code on signed PDFs points at /verify/{code} on this same app, and the links in Ponte's own
    # signing invitations at /sign/{token} (both at the tenant's options.verification_base_url)
    return create_app(store, tenants, extra_routes=[*verify_routes(store, tenants), *sign_routes(store, tenants)])

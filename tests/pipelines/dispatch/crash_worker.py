"""The dispatcher as a separate process the crash test kills (imported once by the fork server)."""

from __future__ import annotations

import os

from connectors.spec.loader import load_spec as _load
from mappings import load_mapping
from pipelines import connections
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.store.db import Store
from schemas.tenant import TenantConfig

# compile the mappings in the fork server, so each forked dispatcher starts hot
for _name in ("cvcrm/contrato_to_contract", "cvcrm/contrato_to_envelope", "docusign/envelope_to_definition"):
    load_mapping(_name)

LEASE = 0.3

# Parsing a connector spec's YAML takes ~0.3 s and the loader does not cache; each forked dispatcher
# would pay it per connector. Parsed once here, in the fork server (the specs do not change in a test).
_specs = {name: connections.load_spec(name) for name in ("cvcrm", "docusign")}
connections.load_spec = lambda name: _specs.get(name) or _load(name)  # type: ignore[assignment]


def dispatch(db_url: str, tenant_json: str, ref: str, crash_at: str | None) -> None:
    if crash_at:
        os.environ["PONTE_DISPATCH_CRASH_AT"] = crash_at
    store = Store(db_url)
    tenant = TenantConfig.model_validate_json(tenant_json)
    run_dispatch(store, tenant, DispatchRequest(contracts=[ref], lease_seconds=LEASE))

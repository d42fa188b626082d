"""Ponte's Dagster definitions: `dagster dev` and `dagster definitions validate` load this module.

Thin by design: each flow has a small folder in ``orchestration/`` (imports, dispatch, backsync,
assistance) exposing ``DEFS``, a ``Definitions`` with its assets, jobs, schedules and sensors; this module
merges them with the shared resources.
"""

from __future__ import annotations

import importlib

from dagster import Definitions

from orchestration.resources import ConnectorsResource, StoreResource, TenantsResource
from ponte.logging import configure_logging

configure_logging()

FLOWS = [
    "orchestration.imports.defs",
    "orchestration.dispatch.defs",
    "orchestration.backsync.defs",
    "orchestration.assistance.defs",
]


def _flow_defs() -> list[Definitions]:
    found = []
    for module_name in FLOWS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that flow is not built yet
            raise
        found.append(module.DEFS)
    return found


defs = Definitions.merge(
    *_flow_defs(),
    Definitions(
        resources={
            "store": StoreResource(),
            "tenants": TenantsResource(),
            "connectors": ConnectorsResource(),
        }
    ),
)

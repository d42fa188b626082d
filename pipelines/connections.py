"""Opening a tenant's connectors: spec + tenant values + secrets from the environment + shared budget.

Pipelines and the gateway go through here so every connector of a tenant shares one rate budget in the
state store (several processes respect one limit) and secrets are resolved in one place.
"""

from __future__ import annotations

import threading
from typing import Any

from connectors import SmtpConnector
from connectors.runtime import Connector, RateBudget
from connectors.spec import HttpConnectorSpec, RateLimit, SmtpConnectorSpec, load_spec
from pipelines.store.db import Store
from ponte import ConfigurationError
from schemas import TenantConfig


def shared_budget(store: Store | None) -> RateBudget | None:
    if store is None:
        return None
    from pipelines.store.rate_budget import SqlRateBudget

    return SqlRateBudget(store)


def open_connector(tenant: TenantConfig, key: str, *, store: Store | None = None, **kwargs: Any) -> Connector:
    """The connector ``key`` of ``tenant`` (e.g. "sienge"), ready to call."""
    config = tenant.connector(key)
    secrets = config.resolve_credentials(tenant.id)
    if "budget" not in kwargs:
        kwargs["budget"] = shared_budget(store)
    try:
        spec = load_spec(config.spec)
        if isinstance(spec, HttpConnectorSpec):
            update: dict[str, Any] = {}
            if config.rate_limit:
                update["rate_limit"] = RateLimit(**config.rate_limit)
            if config.file_hosts:
                update["file_hosts"] = [*spec.file_hosts, *config.file_hosts]
            if config.max_download_bytes:
                update["max_download_bytes"] = config.max_download_bytes
            if update:
                spec = spec.model_copy(update=update)
        return Connector.open(spec, values=config.values, secrets=secrets, tenant=tenant.id, **kwargs)
    except ConfigurationError as exc:
        raise exc.context(tenant=tenant.id) from None


def open_smtp(tenant: TenantConfig, key: str = "smtp", *, store: Store | None = None) -> SmtpConnector:
    """The SMTP connector ``key`` of ``tenant`` (SMTP specs are their own kind, not HTTP)."""
    config = tenant.connector(key)
    spec = load_spec(config.spec)
    if not isinstance(spec, SmtpConnectorSpec):
        raise ConfigurationError(
            f"connector {key!r} (spec {config.spec}) is not an SMTP connector", tenant=tenant.id
        )
    # optional login secrets the tenant leaves out are empty (no AUTH), not the renderer's MISSING marker
    secrets = {"username": "", "password": "", **config.resolve_credentials(tenant.id)}
    try:
        return SmtpConnector(
            spec, values=config.values, secrets=secrets, tenant=tenant.id, budget=shared_budget(store)
        )
    except ConfigurationError as exc:
        raise exc.context(tenant=tenant.id) from None


class ConnectorCache:
    """One connector per (tenant, key) for long-lived processes (gateway, sensors)."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._items: dict[tuple[str, str], Connector] = {}
        self._lock = threading.Lock()

    def get(self, tenant: TenantConfig, key: str) -> Connector:
        with self._lock:
            item = self._items.get((tenant.id, key))
            if item is None:
                item = open_connector(tenant, key, store=self._store)
                self._items[(tenant.id, key)] = item
            return item

    def close(self) -> None:
        with self._lock:
            for item in self._items.values():
                item.close()
            self._items.clear()

"""Opening a tenant's connectors: spec + tenant values + secrets from the environment + shared budget.

The one way Ponte code opens an outside system for a tenant. Pipelines, the gateway and the CLI go
through here so every connector of a tenant shares one rate budget in the state store (several
processes respect one limit), the tenant's overrides (rate limit, file hosts, download cap) apply
everywhere, and secrets are resolved in one place.

* :func:`open_connector` (tenant, key) → the connector, HTTP or SMTP by its spec;
* :class:`TenantConnectors`: one run's connectors of one tenant, opened on first use, closed together;
* :class:`ConnectorPool`: long-lived processes (gateway, sign links): a :class:`TenantConnectors` per
  tenant, kept open between requests.

(``connectors.bind_spec`` is the layer below: a spec bound to explicit values and secrets, no tenant.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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


def open_connector(tenant: TenantConfig, key: str, *, store: Store | None = None, **kwargs: Any) -> Any:
    """The connector ``key`` of ``tenant`` (e.g. "sienge"), ready to call: a
    :class:`~connectors.runtime.Connector` for an HTTP spec, a :class:`SmtpConnector` for an SMTP one."""
    config = tenant.connector(key)
    spec = load_spec(config.spec)
    if isinstance(spec, SmtpConnectorSpec):
        return open_smtp(tenant, key, store=store)
    secrets = config.resolve_credentials(tenant.id)
    if "budget" not in kwargs:
        kwargs["budget"] = shared_budget(store)
    try:
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


#: key → an open connector; what a caller hands :class:`TenantConnectors` instead of the tenant's files
Opener = Callable[[str], Any]


class TenantConnectors:
    """One tenant's connectors for one run: ``get(key)`` (or ``conns(key)``) opens ``key`` on first use.

    A run may touch five systems (CV CRM, the signing provider, SMTP, WhatsApp); most need two or three.
    Opening on first use keeps a run from failing on a connector it never needed, and one object to
    close keeps callers from leaking HTTP clients. ``opener`` replaces how a key is opened (tests, the
    CLI's own budget); by default it is :func:`open_connector` for ``tenant`` with ``store``'s budget.
    """

    def __init__(self, tenant: TenantConfig | None = None, store: Store | None = None,
                 opener: Opener | None = None) -> None:
        if opener is None and tenant is None:
            raise TypeError("TenantConnectors needs a tenant or an opener")
        self.tenant = tenant
        self.store = store
        self._opener = opener
        self._open: dict[str, Any] = {}
        self._borrowed: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._open:
                if self._opener is not None:
                    self._open[key] = self._opener(key)
                else:
                    assert self.tenant is not None
                    self._open[key] = open_connector(self.tenant, key, store=self.store)
            return self._open[key]

    __call__ = get

    def provide(self, key: str, connector: Any) -> None:
        """Use an already-open connector (the caller keeps ownership; it is not closed here)."""
        self._open[key] = connector
        self._borrowed.add(key)

    def api_calls(self) -> dict[str, int]:
        return {k: int(getattr(c, "api_calls", 0)) for k, c in self._open.items()}

    def close(self) -> None:
        with self._lock:
            for key, conn in self._open.items():
                if key not in self._borrowed:
                    conn.close()
            self._open.clear()
            self._borrowed.clear()

    def __enter__(self) -> TenantConnectors:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ConnectorPool:
    """Long-lived processes (gateway, sign links): one :class:`TenantConnectors` per tenant, kept open."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._tenants: dict[str, TenantConnectors] = {}
        self._lock = threading.Lock()

    def get(self, tenant: TenantConfig, key: str) -> Any:
        with self._lock:
            conns = self._tenants.get(tenant.id)
            if conns is None:
                conns = self._tenants[tenant.id] = TenantConnectors(tenant, self._store)
        return conns.get(key)

    def close(self) -> None:
        with self._lock:
            for conns in self._tenants.values():
                conns.close()
            self._tenants.clear()

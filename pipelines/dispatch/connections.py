"""The connectors one dispatch run needs, opened lazily and closed together.

Dispatch may touch five systems (CV CRM, the signing provider, SMTP, WhatsApp); most runs need two or
three. Opening on first use keeps a run from failing on a connector it never needed, and one object
to close keeps long-lived callers (back-sync, sensors) from leaking HTTP clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.connections import open_connector, open_smtp
from pipelines.store.db import Store
from schemas import TenantConfig

Opener = Callable[[TenantConfig, str, Store], Any]


def _default_opener(tenant: TenantConfig, key: str, store: Store) -> Any:
    if tenant.connector(key).spec == "smtp" or key == "smtp":
        return open_smtp(tenant, key, store=store)
    return open_connector(tenant, key, store=store)


class ConnectorSet:
    """``get(key)`` → the tenant's connector ``key`` (HTTP or SMTP), opened once."""

    def __init__(self, tenant: TenantConfig, store: Store, opener: Opener | None = None) -> None:
        self.tenant = tenant
        self.store = store
        self._opener = opener or _default_opener
        self._open: dict[str, Any] = {}
        self._borrowed: set[str] = set()

    def get(self, key: str) -> Any:
        if key not in self._open:
            self._open[key] = self._opener(self.tenant, key, self.store)
        return self._open[key]

    def provide(self, key: str, connector: Any) -> None:
        """Use an already-open connector (the caller keeps ownership; it is not closed here)."""
        self._open[key] = connector
        self._borrowed.add(key)

    def api_calls(self) -> dict[str, int]:
        return {k: int(getattr(c, "api_calls", 0)) for k, c in self._open.items()}

    def close(self) -> None:
        for key, conn in self._open.items():
            if key not in self._borrowed:
                conn.close()
        self._open.clear()

    def __enter__(self) -> ConnectorSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

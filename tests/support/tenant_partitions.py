"""Tests see the tenant partition keys as production does after a ``tenant_files`` sensor tick.

Runs are partitioned by tenant with dynamic partitions (``tenants``) that the ``tenant_files`` sensor adds
from the tenant files. In production every run, schedule and sensor has the instance at hand; a test that
materializes for a tenant on a fresh instance, or ticks a schedule or sensor without a persistent instance,
would otherwise have to tick that sensor first. This plugin

* adds the keys of the tenant files (and ``demo``) to each Dagster instance a test creates, and
* answers from the tenant files where Dagster has no instance to read the keys from (``materialize``
  without an instance, a schedule or sensor context without an instance ref).

A test of the sensor itself still sees files added or removed after the instance was made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest


def _tenant_files_store() -> Any:
    """A dynamic partitions store holding the tenant files' keys (read when asked)."""
    from dagster._core.instance.types import DynamicPartitionsStore

    class TenantFiles(DynamicPartitionsStore):
        def _keys(self) -> list[str]:
            from orchestration.partitions import tenant_ids

            return list(dict.fromkeys(["demo", *tenant_ids()]))

        def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
            return self._keys()

        def get_paginated_dynamic_partitions(self, partitions_def_name: str, limit: int, ascending: bool,
                                             cursor: str | None = None) -> Any:
            raise NotImplementedError

        def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
            return partition_key in self._keys()

        def get_dynamic_partitions_definition_id(self, partitions_def_name: str) -> str:
            return "|".join(self._keys())

    return TenantFiles()


@pytest.fixture(autouse=True)
def tenant_partition_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from dagster import DagsterInstance, DynamicPartitionsDefinition, partition_loading_context

    from orchestration.partitions import TENANTS, ensure_tenant_partitions, tenant_ids

    original_init = DagsterInstance.__init__
    original_has = DynamicPartitionsDefinition.has_partition_key
    original_store = DynamicPartitionsDefinition._ensure_dynamic_partitions_store

    def init(self: DagsterInstance, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        ensure_tenant_partitions(self, ["demo", *tenant_ids()])

    def store(self: DynamicPartitionsDefinition, dynamic_partitions_store: Any) -> Any:
        if dynamic_partitions_store is None and self.name == TENANTS:
            return _tenant_files_store()
        return original_store(self, dynamic_partitions_store)

    def has_partition_key(self: DynamicPartitionsDefinition, partition_key: str, current_time: Any = None,
                          dynamic_partitions_store: Any = None) -> bool:
        if dynamic_partitions_store is None and self.name == TENANTS:
            with partition_loading_context() as ctx:
                if ctx.dynamic_partitions_store is None:
                    dynamic_partitions_store = _tenant_files_store()
        return original_has(self, partition_key, current_time, dynamic_partitions_store)

    monkeypatch.setattr(DagsterInstance, "__init__", init)
    monkeypatch.setattr(DynamicPartitionsDefinition, "has_partition_key", has_partition_key)
    monkeypatch.setattr(DynamicPartitionsDefinition, "_ensure_dynamic_partitions_store", store)
    yield

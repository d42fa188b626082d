"""Runs are partitioned by tenant: one partition per tenant file, so a re-sync targets one tenant."""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from schemas.tenant import list_tenants


def tenant_ids() -> list[str]:
    return [tenant.id for tenant in list_tenants()]


tenant_partitions = StaticPartitionsDefinition(tenant_ids() or ["demo"])

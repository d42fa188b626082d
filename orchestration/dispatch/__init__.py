"""Envelope dispatch in Dagster: a tenant-partitioned asset, its job and a per-tenant schedule."""

"""Dagster wiring of the signing and import reconciliation (asset with drift check, job, schedules)."""

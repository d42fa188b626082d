"""Dagster wiring of the technical-assistance sync (asset with drift check, schedules, sensor)."""

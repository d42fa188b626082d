"""Orchestration: Dagster definitions, the webhook gateway and the ``ponte`` CLI.

Thin by design: it wires and schedules; business rules live in ``pipelines``.
"""

"""Dagster definitions of the status back-sync flow (see defs.py)."""

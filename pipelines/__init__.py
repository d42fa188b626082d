"""The four flows as plain Python (import, dispatch, back-sync, assistance) and the state store they share.

Nothing here knows Dagster or the CLI: orchestration drives pipelines, never the reverse.
"""

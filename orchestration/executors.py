"""Which Dagster executor runs Ponte's jobs: in-process on one machine, celery workers when scaled out.

``PONTE_EXECUTOR=celery`` selects Dagster's celery executor; its broker, result backend and queue come
from ``PONTE_CELERY_BROKER_URL``, ``PONTE_CELERY_BACKEND_URL`` and ``PONTE_CELERY_QUEUE`` (default
``ponte``). The workers must listen on the same broker and queue (see docs/deploy.md).
"""

from __future__ import annotations

import os
from typing import Any

from dagster import ExecutorDefinition, in_process_executor

DEFAULT_QUEUE = "ponte"


def celery_execution_config(broker: str, backend: str, queue: str = DEFAULT_QUEUE) -> dict[str, Any]:
    """The celery executor's ``execution: config:`` block; workers read the same block (``-y``)."""
    return {"broker": broker, "backend": backend, "config_source": {"task_default_queue": queue}}


def executor_from_environment(default: ExecutorDefinition = in_process_executor) -> ExecutorDefinition:
    """The celery executor when ``PONTE_EXECUTOR=celery``, else ``default``."""
    choice = os.environ.get("PONTE_EXECUTOR", "").strip().lower()
    if choice in ("", "default", "in_process"):
        return default
    if choice != "celery":
        from ponte import ConfigurationError

        raise ConfigurationError(
            f"PONTE_EXECUTOR={choice!r} is not an executor Ponte knows", hint="use celery or leave it unset"
        )
    from dagster_celery import celery_executor  # only the scale-out deployment needs it installed

    return celery_executor.configured(
        {
            "broker": {"env": "PONTE_CELERY_BROKER_URL"},
            "backend": {"env": "PONTE_CELERY_BACKEND_URL"},
            "config_source": {"task_default_queue": os.environ.get("PONTE_CELERY_QUEUE", DEFAULT_QUEUE)},
        },
        name="celery",
    )

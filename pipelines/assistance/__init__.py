"""Technical-assistance sync between CV CRM and Sienge; its dead-letter replay is pipelines.assistance.replay.

Which file for which job: CRM -> Sienge in ``to_sienge.py``, Sienge -> CRM in ``from_sienge.py``,
reconciliation in ``reconcile.py``, stored webhooks in ``events.py``, what they share in ``core.py``,
and one whole run (:class:`AssistanceSync`, :func:`run_assistance`) in ``flow.py``.

Public surface: :func:`run_assistance` with :class:`AssistanceRequest`, :class:`AssistanceReport` /
:class:`Drift`, and the pure state machine in :mod:`pipelines.assistance.machine`. The ``ponte demo``
round trip lives with the other demo steps (``orchestration/cli/demo_assistance.py``).
"""

from __future__ import annotations

from pipelines.assistance.flow import (
    CRM_EVENT_PREFIX,
    DEFAULT_EVENT_PREFIX,
    AssistanceRequest,
    AssistanceSync,
    run_assistance,
)
from pipelines.assistance.replay import replay_assistance
from pipelines.assistance.report import DRIFT_KINDS, AssistanceReport, Drift

__all__ = [
    "CRM_EVENT_PREFIX",
    "DEFAULT_EVENT_PREFIX",
    "DRIFT_KINDS",
    "AssistanceReport",
    "AssistanceRequest",
    "AssistanceSync",
    "Drift",
    "replay_assistance",
    "run_assistance",
]

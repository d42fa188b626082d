"""Technical-assistance sync between CV CRM and Sienge (see flow.py); its dead-letter replay is pipelines.assistance.replay.

Public surface: :func:`run_assistance` with :class:`AssistanceRequest`, :class:`AssistanceReport` /
:class:`Drift`, the pure state machine in :mod:`pipelines.assistance.state`, and
:func:`pipelines.assistance.demo.round_trip` for ``ponte demo``.
"""

from __future__ import annotations

from pipelines.assistance.flow import AssistanceRequest, AssistanceSync, run_assistance
from pipelines.assistance.replay import replay_assistance
from pipelines.assistance.report import AssistanceReport, Drift

__all__ = [
    "AssistanceReport",
    "AssistanceRequest",
    "AssistanceSync",
    "Drift",
    "replay_assistance",
    "run_assistance",
]

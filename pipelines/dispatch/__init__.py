"""Envelope dispatch: CRM contracts become envelopes at DocuSign or Clicksign, exactly once.

Public surface (import from the submodules; this package stays light so the CLI starts fast)::

    from pipelines.dispatch.flow import DispatchRequest, run_dispatch        # the entry point
    from pipelines.dispatch.notify import notify_next_signers              # back-sync calls this
    from pipelines.dispatch.verify import send_code, confirm_code          # `ponte tenant verify-email`
    from pipelines.dispatch.package import state, ensure_available         # the envelope package

Importing the package registers the "dispatch" replayer for `ponte deadletter replay`.
"""

from __future__ import annotations

from typing import Any

from pipelines.replay import register_replayer


def _replay(store: Any, letter: Any, run_id: str | None) -> None:
    from pipelines.dispatch.flow import replay_dispatch

    replay_dispatch(store, letter, run_id)


register_replayer("dispatch", _replay)

"""Envelope dispatch: CRM contracts become envelopes at DocuSign or Clicksign, exactly once.

Public surface (import from the submodules; this package stays light so the CLI starts fast)::

    from pipelines.dispatch.flow import DispatchRequest, run_dispatch        # the entry point
    from pipelines.dispatch.notify import notify_next_signers              # back-sync calls this
    from pipelines.dispatch.verify import send_code, confirm_code          # `ponte tenant verify-email`
    from pipelines.dispatch.package import state, ensure_available         # the envelope package
"""

from __future__ import annotations

"""Reconciliation of signing and import: Ponte's state compared with the providers' and the CRM's.

One module per drift kind (``envelopes``: envelope_status, ``signed_pdfs``: signed_pdf_missing,
``unsent``: ready_not_sent, ``imported``: import_content), each a detector with its safe repair or the
reason it only reports; :func:`pipelines.reconcile.runner.run_reconcile` runs them for one tenant and
returns a :class:`pipelines.reconcile.report.DriftReport`. Technical assistance has its own
(``pipelines/assistance``, ``reconcile=True``). See docs/reliability.md, "Reconciliation".

Import from the submodules; this package stays light so the CLI starts fast::

    from pipelines.reconcile.runner import ReconcileRequest, run_reconcile
"""

from __future__ import annotations

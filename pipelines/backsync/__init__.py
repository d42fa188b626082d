"""Status back-sync: provider news → envelope and signer state machines → stamped signed PDF in the CRM.

Public entry points: :func:`pipelines.backsync.flow.drain_inbox`, :func:`~pipelines.backsync.flow.poll_stale`,
:func:`~pipelines.backsync.flow.sync_contract`; :func:`pipelines.backsync.history.contract_history` and
:func:`~pipelines.backsync.history.verification` for what people see. See docs/backsync.md.
"""

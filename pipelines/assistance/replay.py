"""Replaying an assistance dead letter: the one record runs again through its normal path (re-read first)."""

from __future__ import annotations

from pipelines.assistance.flow import AssistanceRequest, run_assistance
from pipelines.connections import open_connector
from pipelines.store.db import Store
from pipelines.store.models import DeadLetter
from ponte import ConfigurationError
from schemas import load_tenant


def replay_assistance(store: Store, letter: DeadLetter, run_id: str | None) -> None:
    """``assistencia:<crm id>`` is sent to Sienge again; ``technical_assistance:<sienge id>`` re-applied."""
    kind, _, record_id = letter.record_key.partition(":")
    if kind == "assistencia":
        request = AssistanceRequest(events=False, crm_ids=[record_id], run_id=run_id)
    elif kind == "technical_assistance":
        request = AssistanceRequest(events=False, sienge_ids=[record_id], run_id=run_id)
    else:
        raise ConfigurationError(f"unknown assistance dead letter {letter.record_key!r}")
    tenant = load_tenant(letter.tenant)
    with (
        open_connector(tenant, "sienge", store=store) as sienge,
        open_connector(tenant, "cvcrm", store=store) as cvcrm,
    ):
        run_assistance(store, tenant, sienge, cvcrm, request)

"""Replaying dead letters after a fix: each flow re-runs the one record through its normal path.

The source is re-read (reads are truth), so a record fixed in Sienge or the CRM replays with its new
content, and a record that fails again keeps one open dead letter with the new reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.connections import open_connector
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import DeadLetter
from ponte.errors import ConfigurationError
from schemas.tenant import load_tenant


@dataclass
class ReplayOutcome:
    dead_letter_id: int
    record_key: str
    resolved: bool
    reason: str | None = None


def _replay_import(store: Store, letter: DeadLetter, run_id: str | None) -> None:
    from pipelines.imports.flow import ImportRequest, run_import

    entity, _, record_id = letter.record_key.partition(":")
    tenant = load_tenant(letter.tenant)
    with (
        open_connector(tenant, "sienge", store=store) as sienge,
        open_connector(tenant, "cvcrm", store=store) as cvcrm,
    ):
        run_import(store, tenant, sienge, cvcrm, ImportRequest(ids={entity: [record_id]}, run_id=run_id))


REPLAYERS: dict[str, Callable[[Store, DeadLetter, str | None], None]] = {"import": _replay_import}


def register_replayer(flow: str, replayer: Callable[[Store, DeadLetter, str | None], None]) -> None:
    REPLAYERS[flow] = replayer


#: flows that register their replayer when imported
FLOW_PACKAGES = ("pipelines.assistance", "pipelines.dispatch", "pipelines.backsync")


def _load_flow_replayers() -> None:
    for package in FLOW_PACKAGES:
        try:
            importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name != package:
                raise


def replay(store: Store, letter: DeadLetter, run_id: str | None = None) -> ReplayOutcome:
    if letter.flow not in REPLAYERS:
        _load_flow_replayers()
    replayer = REPLAYERS.get(letter.flow)
    if replayer is None:
        raise ConfigurationError(f"no replay for flow {letter.flow!r}", hint=f"flows: {', '.join(REPLAYERS)}")
    replayer(store, letter, run_id)
    still_open = [
        d
        for d in deadletters.list_open(store, letter.tenant, letter.flow)
        if d.record_key == letter.record_key
    ]
    if still_open:
        return ReplayOutcome(letter.id, letter.record_key, False, still_open[0].reason)
    return ReplayOutcome(letter.id, letter.record_key, True)

"""Replaying dead letters after a fix: each flow re-runs the one record through its normal path.

The source is re-read (reads are truth), so a record fixed in Sienge or the CRM replays with its new
content, and a record that fails again keeps one open dead letter with the new reason.

Every flow that writes dead letters has its replayer in :data:`REPLAYERS`, one explicit table (a test
holds it equal to the flows that write dead letters). A replayer is named by its module so the CLI
imports only the flow it replays.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.connections import open_connector
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import DeadLetter
from ponte.errors import ConfigurationError, PonteError
from schemas.tenant import load_tenant

Replayer = Callable[[Store, DeadLetter, str | None], None]


@dataclass
class ReplayOutcome:
    dead_letter_id: int
    record_key: str
    resolved: bool
    reason: str | None = None


def replay_import(store: Store, letter: DeadLetter, run_id: str | None) -> None:
    from pipelines.imports.flow import ImportRequest, run_import
    from pipelines.imports.report import ENTITIES

    entity, _, record_id = letter.record_key.partition(":")
    if entity not in ENTITIES or not record_id:
        raise ConfigurationError(
            f"unknown import dead letter {letter.record_key!r}",
            hint=f"import dead letters are <entity>:<Sienge id>, entity one of {', '.join(ENTITIES)}",
        )
    tenant = load_tenant(letter.tenant)
    with (
        open_connector(tenant, "sienge", store=store) as sienge,
        open_connector(tenant, "cvcrm", store=store) as cvcrm,
    ):
        run_import(store, tenant, sienge, cvcrm, ImportRequest(ids={entity: [record_id]}, run_id=run_id))


#: flow -> "module:function" of its replayer; every flow that writes dead letters is here
REPLAYERS: dict[str, str] = {
    "import": "pipelines.replay:replay_import",
    "dispatch": "pipelines.dispatch.flow:replay_dispatch",
    "backsync": "pipelines.backsync.replay:replay_backsync",
    "assistance": "pipelines.assistance.replay:replay_assistance",
}


def replayer_for(flow: str) -> Replayer | None:
    target = REPLAYERS.get(flow)
    if target is None:
        return None
    module, _, name = target.partition(":")
    replayer: Replayer = getattr(importlib.import_module(module), name)
    return replayer


def replay(store: Store, letter: DeadLetter, run_id: str | None = None) -> ReplayOutcome:
    """Run ``letter``'s record through its flow again. Never raises for a Ponte error: a replay that
    fails (again, or before it could start) comes back unresolved with the reason."""
    replayer = replayer_for(letter.flow)
    if replayer is None:
        return ReplayOutcome(
            letter.id, letter.record_key, False,
            f"no replay for flow {letter.flow!r} (flows that replay: {', '.join(REPLAYERS)})",
        )
    try:
        replayer(store, letter, run_id)
    except PonteError as exc:
        return ReplayOutcome(letter.id, letter.record_key, False, str(exc))
    still_open = [
        d
        for d in deadletters.list_open(store, letter.tenant, letter.flow)
        if d.record_key == letter.record_key
    ]
    if still_open:
        return ReplayOutcome(letter.id, letter.record_key, False, still_open[0].reason)
    return ReplayOutcome(letter.id, letter.record_key, True)

"""Replaying dead letters after a fix: each flow re-runs the one record through its normal path.

The source is re-read (reads are truth), so a record fixed in Sienge or the CRM replays with its new
content, and a record that fails again keeps one open dead letter with the new reason.

Every flow that writes dead letters has its replayer in :data:`REPLAYERS`, one explicit table (a test
holds it equal to the flows that write dead letters). A replayer is named by its module so the CLI
imports only the flow it replays.

:func:`replay_all` (``ponte deadletter replay --all``) pages through the open letters by id, a page at
a time, never loading the table. A flow in :data:`BATCH_REPLAYERS` replays a chunk of letters of one
tenant in one run (the import: one import run per 1,000 letters, entities in stage order, so customers
replay before the sales that wait for them); the other flows replay letter by letter.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.connections import open_connector
from pipelines.store import deadletters
from pipelines.store.db import Store
from pipelines.store.models import DeadLetter
from ponte import ConfigurationError, PonteError
from schemas import load_tenant

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


def replay_import_many(store: Store, letters: list[DeadLetter], run_id: str | None) -> dict[int, str]:
    """Replay import letters of one tenant in ONE import run (by Sienge id, entities in stage order).
    Returns the reason of each letter that could not take part (a key that names no entity)."""
    from pipelines.imports.flow import ImportRequest, run_import
    from pipelines.imports.report import ENTITIES

    refused: dict[int, str] = {}
    ids: dict[str, list[str]] = {}
    for letter in letters:
        entity, _, record_id = letter.record_key.partition(":")
        if entity not in ENTITIES or not record_id:
            refused[letter.id] = str(ConfigurationError(
                f"unknown import dead letter {letter.record_key!r}",
                hint=f"import dead letters are <entity>:<Sienge id>, entity one of {', '.join(ENTITIES)}",
            ))
            continue
        wanted = ids.setdefault(entity, [])
        if record_id not in wanted:
            wanted.append(record_id)
    if not ids:
        return refused
    tenants = {letter.tenant for letter in letters}
    if len(tenants) != 1:
        raise ConfigurationError(f"one import run replays one tenant's letters, got {sorted(tenants)}")
    tenant = load_tenant(tenants.pop())
    with (
        open_connector(tenant, "sienge", store=store) as sienge,
        open_connector(tenant, "cvcrm", store=store) as cvcrm,
    ):
        run_import(store, tenant, sienge, cvcrm, ImportRequest(ids=ids, run_id=run_id))
    return refused


#: flow -> "module:function" of its replayer; every flow that writes dead letters is here
REPLAYERS: dict[str, str] = {
    "import": "pipelines.replay:replay_import",
    "dispatch": "pipelines.dispatch.flow:replay_dispatch",
    "backsync": "pipelines.backsync.replay:replay_backsync",
    "assistance": "pipelines.assistance.replay:replay_assistance",
}

#: flow -> "module:function" replaying many letters of one tenant at once, for ``replay_all``; takes
#: (store, letters, run_id) and returns {letter id: reason} for letters it could not replay
BATCH_REPLAYERS: dict[str, str] = {
    "import": "pipelines.replay:replay_import_many",
}
#: letters per batch replay (one import run each)
CHUNK = 1000
#: letters read at a time for flows replayed one by one
PAGE = 500
#: the order ``replay_all`` takes a flow's letters in (record-key prefixes; "" = all the rest)
ORDER: dict[str, tuple[str, ...]] = {"import": ("enterprise:", "unit:", "customer:", "sale:", "")}

BatchReplayer = Callable[[Store, list[DeadLetter], str | None], dict[int, str]]


def _load(target: str | None) -> Any:
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def replayer_for(flow: str) -> Replayer | None:
    replayer: Replayer | None = _load(REPLAYERS.get(flow))
    return replayer


def batch_replayer_for(flow: str) -> BatchReplayer | None:
    replayer: BatchReplayer | None = _load(BATCH_REPLAYERS.get(flow))
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
    still_open = deadletters.find_open(store, letter.tenant, letter.flow, letter.record_key)
    if still_open is not None:
        return ReplayOutcome(letter.id, letter.record_key, False, still_open.reason)
    return ReplayOutcome(letter.id, letter.record_key, True)


@dataclass
class ReplaySummary:
    """What ``replay_all`` did: counts, the first failures, and every failure counted by reason."""

    total: int = 0
    done: int = 0
    resolved: int = 0
    failed: int = 0
    #: batch runs (one import run each) and letters replayed one by one
    runs: int = 0
    first_failures: list[ReplayOutcome] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: ReplayOutcome, keep: int = 20) -> None:
        self.done += 1
        if outcome.resolved:
            self.resolved += 1
            return
        self.failed += 1
        self.reasons[deadletters.template(outcome.reason or "")] += 1
        if len(self.first_failures) < keep:
            self.first_failures.append(outcome)


Progress = Callable[[ReplaySummary, list[ReplayOutcome]], None]


def replay_all(
    store: Store,
    *,
    tenant: str | None = None,
    flow: str | None = None,
    run_id: str | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> ReplaySummary:
    """Replay every open dead letter (of ``tenant``/``flow``) open when it starts, a page at a time;
    ``progress`` hears after each page. Never raises for a Ponte error (see :func:`replay`)."""
    groups = deadletters.open_groups(store, tenant, flow)
    summary = ReplaySummary(total=sum(count for _t, _f, count, _top in groups))
    for group_tenant, group_flow, _count, top in groups:
        batch = batch_replayer_for(group_flow)
        for letters in _pages(store, group_tenant, group_flow, top, chunk if batch else PAGE):
            if batch is not None:
                outcomes = _replay_batch(store, batch, letters, run_id)
                summary.runs += 1
            else:
                outcomes = [replay(store, letter, run_id) for letter in letters]
                summary.runs += len(letters)
            for outcome in outcomes:
                summary.add(outcome)
            if progress is not None:
                progress(summary, outcomes)
    return summary


def _pages(store: Store, tenant: str, flow: str, top: int, size: int) -> Iterator[list[DeadLetter]]:
    """The open letters of ``tenant``/``flow`` up to id ``top``, ``size`` at a time, each once: keyset
    pages (a letter that closes meanwhile shifts nothing), in the flow's order of record keys."""
    seen: set[int] = set()
    for prefix in ORDER.get(flow, ("",)):
        after = 0
        while True:
            rows = deadletters.open_after(store, tenant, flow, after, size, up_to=top, prefix=prefix)
            if not rows:
                break
            after = rows[-1].id
            fresh = [row for row in rows if row.id not in seen]
            seen.update(row.id for row in fresh)
            if fresh:
                yield fresh


def _replay_batch(
    store: Store, batch: BatchReplayer, letters: list[DeadLetter], run_id: str | None
) -> list[ReplayOutcome]:
    """One batch run over ``letters``; each comes back resolved, or open with its (new) reason."""
    try:
        refused = batch(store, letters, run_id)
    except PonteError as exc:
        return [ReplayOutcome(letter.id, letter.record_key, False, str(exc)) for letter in letters]
    now = deadletters.states(store, [letter.id for letter in letters])
    outcomes = []
    for letter in letters:
        if letter.id in refused:
            outcomes.append(ReplayOutcome(letter.id, letter.record_key, False, refused[letter.id]))
            continue
        status, reason, failures = now.get(letter.id, ("gone", None, 0))
        if status != "open":
            outcomes.append(ReplayOutcome(letter.id, letter.record_key, True))
        elif failures == letter.failures:  # neither closed nor failed again: the run decided nothing
            outcomes.append(ReplayOutcome(
                letter.id, letter.record_key, False,
                f"still open: the replay reached no decision (a transient failure? see the log); was: {reason}",
            ))
        else:
            outcomes.append(ReplayOutcome(letter.id, letter.record_key, False, reason))
    return outcomes

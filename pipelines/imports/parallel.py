"""Map, validate and hash import batches in worker processes while the run reads and writes.

One Python process runs on one core, and mapping and validating a customer (two mappings, check
digits, phones, e-mail, the canonical model) is as much CPU as everything else the run does for it.
Workers take that part: a batch of raw Sienge records in; per record its payload and content hash, or
the error its translation raised, out, in the same order. Everything with side effects stays in the
run: reading, the id map, the CRM writes, the dead letters, the cursor. What a run writes, and in
which order, is the same with workers or without.

- Only entities whose mappings need no id-map lookup go to workers (``Translator.runs_alone``); sales
  look buyers and units up in the store, so they stay in the run.
- Workers start only for a stage whose first batch is full: small incremental runs and webhook
  imports never pay for processes. They fork from a server process started clean, never from the
  run (it has threads), and the run translates batches itself until they are ready.
- A worker that dies (killed, out of memory) costs nothing but time: its batches are translated again
  in the run (translation has no side effects) and the run goes on without workers.
- Batches travel as JSON bytes (orjson) both ways, not pickled: a customer's raw record and its
  payload cost ~10 µs a record to pickle and unpickle, against ~6 µs as JSON, and the run's part of
  it (encoding what it sends, decoding what comes back) shrinks most. Records are JSON to begin with
  (the connector parses pages as standard JSON), so the round trip gives back equal records. Anything
  orjson cannot encode exactly (a Decimal, a huge integer) travels pickled, and so do translation
  errors.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson

from pipelines.imports.collector import tune_for_bulk
from pipelines.imports.translate import Translator
from ponte import PonteError, get_logger
from schemas import TenantConfig

log = get_logger("import")

Raw = dict[str, Any]
#: one record's translation: (payload, content hash), or the error it raised
Staged = tuple[Any, str] | PonteError

_translator: Translator | None = None


def _without_tracebacks(exc: BaseException) -> BaseException:
    """The error alone: its traceback and the errors it was raised from dropped. A kept error's
    traceback holds the frames that hold the batch (a cycle through the batch's list of results), and
    an error raised from a pydantic ValidationError made that cycle uncollectable (the ValidationError
    is not tracked by the cyclic collector): on dirty data, a third of the records failing, workers grew
    to 800 MiB each at 200,000 customers. The message, record, field and hint are what the dead
    letter keeps."""
    exc.__traceback__ = None
    exc.__cause__ = None
    exc.__context__ = None
    return exc


def stage_batch(translator: Translator, entity: str, batch: list[Raw]) -> list[Staged]:
    """Each record's payload and hash, or its translation error (a bad record never stops a batch)."""
    out: list[Staged] = []
    for raw in batch:
        try:
            out.append(translator.staged(entity, raw))
        except PonteError as exc:
            out.append(_without_tracebacks(exc))  # type: ignore[arg-type]
    return out


def _no_lookup(entity: str, _source: str, _source_id: str, _target: str) -> str | None:
    raise RuntimeError(f"id-map lookup for {entity} in an import worker: only lookup-free mappings run there")


def _start_worker(tenant: TenantConfig) -> None:
    global _translator
    _translator = Translator(tenant, _no_lookup)
    tune_for_bulk()


def _worker_ready() -> bool:
    return True


#: what crosses the process boundary: JSON bytes, or the objects themselves (pickled)
Packed = bytes | list[Any]


def _pack(items: list[Any]) -> Packed:
    if any(isinstance(item, PonteError) for item in items):
        return items
    try:
        return orjson.dumps(items)
    except TypeError:  # e.g. a Decimal or an integer past 64 bits: pickled instead, unchanged
        return items


def _unpack_batch(packed: Packed) -> list[Raw]:
    return orjson.loads(packed) if isinstance(packed, bytes) else packed


def _unpack_staged(packed: Packed) -> list[Staged]:
    if isinstance(packed, bytes):
        return [(payload, digest) for payload, digest in orjson.loads(packed)]
    return packed


def _stage_in_worker(entity: str, batch: Packed) -> Packed:
    assert _translator is not None, "the worker was not started with a tenant"
    return _pack(stage_batch(_translator, entity, _unpack_batch(batch)))


def _context() -> multiprocessing.context.BaseContext:
    """Workers fork from a server process that imported the translation code and compiled the
    mappings once (a fresh worker would spend ~0.5 s of CPU on that), and that server never forks the
    run itself, which has threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pipelines.imports.worker_preload"])
    return context


class StagingPool:
    """Worker processes for one import run; ``close`` them when the run ends.

    They start in a thread: the first worker waits for the fork server to import the mapping code
    and compile the mappings (~0.5 s), and the run translates its first batches meanwhile instead of
    waiting with it (its thread waited 0.4-0.7 s of a 5 s import of 50,000 customers).
    """

    def __init__(self, tenant: TenantConfig, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._warming: list[Future[bool]] = []
        self._failed: BaseException | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._starter = threading.Thread(target=self._start, args=(tenant,), name="import-workers-start",
                                         daemon=True)
        self._starter.start()

    def _start(self, tenant: TenantConfig) -> None:
        try:
            executor = ProcessPoolExecutor(
                self.workers,
                mp_context=_context(),
                initializer=_start_worker,
                initargs=(tenant,),
            )
            # one no-op per worker starts them all now
            warming = [executor.submit(_worker_ready) for _ in range(self.workers)]
        except BaseException as exc:  # e.g. a daemonic process may not have children
            self._failed = exc
            return
        with self._lock:
            if not self._closed:
                self._executor, self._warming = executor, warming
                return
        executor.shutdown(wait=True, cancel_futures=True)  # the run ended before the workers started

    def wait(self, timeout: float) -> bool:
        """Block until the workers have started (or failed to); whether they are usable."""
        self._starter.join(timeout)
        for future in list(self._warming):
            with contextlib.suppress(Exception):  # a failed start is reported by ``usable``
                future.result(timeout)
        return self.usable

    @property
    def usable(self) -> bool:
        """Started and not broken; until then the run translates by itself."""
        if self._failed is not None:
            failed, self._failed = self._failed, None
            self._give_up(f"import workers did not start ({failed}); translating in the run itself")
            return False
        if self._executor is None:
            return False
        if not all(future.done() for future in self._warming):
            return False
        failed = next((exc for f in self._warming if (exc := f.exception()) is not None), None)
        if failed is not None:
            self._give_up(f"import workers did not start ({failed}); translating in the run itself")
            return False
        return True

    def submit(self, entity: str, batch: list[Raw]) -> Future[Packed] | None:
        """The batch on its way to a worker; None when the workers are gone (the run translates it)."""
        if self._executor is None:
            return None
        try:
            return self._executor.submit(_stage_in_worker, entity, _pack(batch))
        except BrokenProcessPool as exc:
            self._give_up(f"an import worker stopped ({exc}); translating in the run itself")
            return None

    def _give_up(self, why: str) -> None:
        log.warning("%s", why)
        self.close()

    def result(self, future: Future[Packed], translator: Translator, entity: str,
               batch: list[Raw]) -> list[Staged]:
        """The batch's translation from its worker, or from the run when the workers broke."""
        try:
            return _unpack_staged(future.result())
        except BrokenProcessPool as exc:
            if self._executor is not None:
                self._give_up(f"an import worker stopped ({exc}); translating in the run itself")
            return stage_batch(translator, entity, batch)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if threading.current_thread() is not self._starter:
            self._starter.join()  # a start under way shuts its workers down as soon as they exist


def staged_batches(
    batches: Iterable[list[Raw]],
    entity: str,
    translator: Translator,
    pool: StagingPool | None,
) -> Iterator[tuple[list[Raw], list[Staged]]]:
    """Each batch with its translation, in order. Up to two batches per worker are in flight while
    the run stores the one before them."""
    window: deque[tuple[list[Raw], Future[Packed] | list[Staged]]] = deque()
    depth = 2 * pool.workers if pool is not None else 0
    for batch in batches:
        future = pool.submit(entity, batch) if pool is not None and pool.usable else None
        window.append((batch, future if future is not None else stage_batch(translator, entity, batch)))
        while window and (len(window) > depth or not isinstance(window[0][1], Future)):
            yield _settle(window.popleft(), entity, translator, pool)
    while window:
        yield _settle(window.popleft(), entity, translator, pool)


def _settle(
    entry: tuple[list[Raw], Future[Packed] | list[Staged]],
    entity: str,
    translator: Translator,
    pool: StagingPool | None,
) -> tuple[list[Raw], list[Staged]]:
    batch, staged = entry
    if isinstance(staged, Future):
        assert pool is not None
        return batch, pool.result(staged, translator, entity, batch)
    return batch, staged

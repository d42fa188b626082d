"""Read the next pages of a stream while the current one is being mapped and stored.

A page from Sienge is mostly waiting: the server builds it, the socket carries it. Mapping and storing
the page before it are CPU work. Run in a thread, the reading overlaps that work instead of adding
to it (the waiting releases the GIL), and a bounded queue keeps memory flat: at most ``depth``
batches are read ahead.

The reader thread owns the source iterator: nothing else may use the same connector while it runs.
An error in the source is raised in the consumer, where the source would have raised it; a consumer
that stops early (an error of its own, a closed generator) stops the reader at its next batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"
_POLL_SECONDS = 0.1
#: how long a stopping consumer waits for the reader to notice (it may be inside an HTTP call)
_JOIN_SECONDS = 30.0


def read_ahead(source: Iterable[T], depth: int = 2, name: str = "read-ahead") -> Generator[T, None, None]:
    """The items of ``source``, produced by a thread up to ``depth`` items ahead of the consumer."""
    if depth < 1:
        raise ValueError("read-ahead depth must be at least 1")
    items: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: object) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not put(_ITEM, item):
                    break
            else:
                put(_END, None)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_ERROR, exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == _END:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(_JOIN_SECONDS)

"""Bounded caches for the validators' results (tax ids, phones, e-mail addresses).

One record meets the same value several times (the mapping, a transform such as ``document_kind``, the
canonical model), so the second and third checks are lookups. The hits come from one record meeting its
own values again, rarely from another record, so the caches stay small: they are emptied when full, and
a long import's memory does not follow its length.
"""

from __future__ import annotations

from typing import Any, TypeVar

LIMIT = 4_096

V = TypeVar("V")


def remember(cache: dict[Any, V], key: object, value: V, *extra_keys: object) -> V:
    """Store ``value`` under ``key`` (and ``extra_keys``), emptying the cache first when it is full."""
    if len(cache) >= LIMIT:
        cache.clear()
    cache[key] = value
    for extra in extra_keys:
        cache[extra] = value
    return value

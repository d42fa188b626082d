"""Reading ahead in a thread: same items, same order, errors where the source would raise them,
memory bounded, and a consumer that stops early stops the reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.readahead import read_ahead
from ponte.errors import TransientError


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=5))
def test_every_item_arrives_once_in_order(items: list[int], depth: int) -> None:
    assert list(read_ahead(items, depth=depth)) == items


def test_an_error_in_the_source_is_raised_to_the_consumer_after_the_items_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise TransientError("Sienge answered 503", hint="the next run retries")

    got: list[int] = []
    with pytest.raises(TransientError, match="503"):
        for item in read_ahead(pages()):
            got.append(item)
    assert got == [1, 2]


def test_the_reader_stays_at_most_depth_items_ahead() -> None:
    produced: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(100):
            produced.append(n)
            yield n

    reader = read_ahead(pages(), depth=2)
    assert next(reader) == 0
    time.sleep(0.3)  # plenty of time to run ahead, if it could
    # one handed over, two queued, one in the producer's hand waiting for room
    assert len(produced) <= 4
    reader.close()


def test_a_consumer_that_stops_early_stops_and_closes_the_source() -> None:
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    threads_before = threading.active_count()
    for item in read_ahead(pages(), depth=2, name="test-read-ahead"):
        if item == 3:
            break  # the generator is closed by the for loop's end: its finally stops the reader
    assert closed.wait(5), "the source was not closed"
    assert not any(t.name == "test-read-ahead" for t in threading.enumerate())
    assert threading.active_count() <= threads_before


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next(read_ahead([1], depth=0))

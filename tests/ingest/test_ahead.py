"""The import's reader thread: items in order, errors where they happened, no thread left."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from app.ingest.ahead import ahead_on_a_thread


def test_items_arrive_in_order_and_are_computed_ahead() -> None:
    made: list[int] = []

    def numbers() -> Iterator[int]:
        for i in range(10):
            made.append(i)
            yield i

    seen = []
    for i in ahead_on_a_thread(numbers(), depth=2):
        seen.append(i)
        if i == 0:
            threading.Event().wait(0.2)  # the worker fills the queue meanwhile
            assert len(made) >= 3
    assert seen == list(range(10))


def test_an_error_in_the_worker_is_raised_at_its_item() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 3: broken line")

    seen = []
    with pytest.raises(ValueError, match="row 3: broken line"):
        for i in ahead_on_a_thread(failing()):
            seen.append(i)
    assert seen == [1, 2]


def test_stopping_early_stops_the_worker() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="store failed"):
        for i in ahead_on_a_thread(endless()):
            if i == 5:
                raise RuntimeError("store failed")
    assert threading.active_count() == before
    items = ahead_on_a_thread(endless())
    assert next(items) == 0
    items.close()
    assert threading.active_count() == before

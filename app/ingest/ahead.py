"""Work one step ahead on a thread: the one prefetching helper of the import pipeline."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Full, Queue
from typing import Any, TypeVar

T = TypeVar("T")


def ahead_on_a_thread(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield the items of an iterator that a worker thread computes up to `depth` ahead.

    An exception in the worker is raised here, at the item where it happened; when the caller
    stops early (an exception of its own, or closing this generator) the worker stops too.
    """
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # handed over to the consumer, raised there
            put((False, exc))
            return
        put((False, None))

    worker = threading.Thread(target=work, name="import-reader", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = queue.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        stop.set()
        worker.join()

"""AnswerCache: the tiles a worker keeps by their ETag, within a byte budget and a time."""

from __future__ import annotations

import pytest

from app.api import caching
from app.api.caching import AnswerCache


def test_the_least_recently_used_go_first_once_the_budget_is_held() -> None:
    kept = AnswerCache(max_bytes=1000)
    for n in range(10):
        kept.put(f"t{n}", bytes([n]) * 100)
    assert all(kept.get(f"t{n}") == bytes([n]) * 100 for n in range(10))
    kept.get("t0")  # used again: t1 is now the least recently used
    kept.put("t10", b"x" * 100)
    assert kept.get("t1") is None and kept.get("t0") is not None and kept.get("t10") == b"x" * 100
    kept.put("t11", b"y" * 100)  # again one out: t2
    assert kept.get("t2") is None
    assert sum(len(b) for b in (kept.get(f"t{n}") for n in range(12)) if b) <= 1000


def test_a_body_larger_than_a_tenth_of_the_budget_is_not_kept() -> None:
    kept = AnswerCache(max_bytes=1000)
    kept.put("small", b"s" * 100)
    kept.put("big", b"b" * 101)
    assert kept.get("big") is None and kept.get("small") == b"s" * 100


def test_nothing_is_kept_longer_than_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: now[0])
    kept = AnswerCache(max_bytes=1000, keep_s=600)
    kept.put("t", b"tile")
    now[0] += 599
    assert kept.get("t") == b"tile"
    now[0] += 2
    assert kept.get("t") is None
    kept.put("t", b"new")  # kept again from now on
    assert kept.get("t") == b"new"


def test_a_budget_of_nothing_keeps_nothing() -> None:
    kept = AnswerCache(max_bytes=0)
    kept.put("t", b"")
    kept.put("u", b"tile")
    assert kept.get("u") is None

"""Ids repeated within one import are counted across batches and named with their rows."""

from __future__ import annotations

import numpy as np

from app.ingest.repeats import KEPT, RepeatedIds


def add(repeats: RepeatedIds, ids: list[str], first_row: int, source: str = "s") -> None:
    repeats.add(
        np.full(len(ids), source, dtype=object),
        np.array(ids, dtype=object),
        np.arange(first_row, first_row + len(ids), dtype=np.int64),
    )


def test_repeats_within_a_batch_and_across_batches_are_counted_with_their_rows() -> None:
    repeats = RepeatedIds()
    add(repeats, ["a", "b", "a", "c", "a"], 1)
    add(repeats, ["b", "d", "d"], 6)
    assert (repeats.ids, repeats.rows) == (3, 4)
    assert repeats.examples == {"a": [1, 3, 5], "b": [2, 6], "d": [7, 8]}
    (note,) = repeats.notes()
    assert note.startswith("warning: 3 ids appear more than once (4 rows repeat an earlier row's")
    assert note.endswith("'a' in rows 1, 3 and 5; 'b' in rows 2 and 6; 'd' in rows 7 and 8")


def test_the_same_id_under_another_source_is_another_key() -> None:
    repeats = RepeatedIds()
    add(repeats, ["a"], 1, source="kommun")
    add(repeats, ["a"], 2, source="polis")
    assert (repeats.ids, repeats.rows, repeats.notes()) == (0, 0, [])


def test_a_file_of_unique_ids_says_nothing() -> None:
    repeats = RepeatedIds()
    for start in range(1, 30_000, 10_000):
        add(repeats, [f"id{i}" for i in range(start, start + 10_000)], start)
    assert (repeats.ids, repeats.rows, repeats.notes(), repeats.details()) == (0, 0, [], [])


def test_the_summary_names_five_and_the_details_keep_the_rest_up_to_a_limit() -> None:
    repeats = RepeatedIds()
    ids = [f"k{i}" for i in range(KEPT + 20)]
    add(repeats, ids, 1)
    add(repeats, ids, len(ids) + 1)
    (note,) = repeats.notes()
    assert note.endswith(f"'k4' in rows 5 and {len(ids) + 5}; and {KEPT + 15} more")
    details = repeats.details()
    assert len(details) == KEPT + 1 and details[-1] == "... and 20 more repeated ids"

"""Ids repeated within one import: counted and shown, never merged without a word.

Records count in the order given, so a key that comes again updates what its earlier row
stored (README, "Registering incidents"). That is right for a file of corrections, and a
surprise in an export whose id is not unique (a composite id that leaves out the column the
rows differ in): the summary says how many ids came again and in which rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

SHOWN = 5  # repeated ids named in the summary
KEPT = 1000  # repeated ids whose rows are kept for the notes
ROWS_KEPT = 10  # rows kept of each


class RepeatedIds:
    """The keys (source, external_id) of an import's rows, batch after batch.

    Keys are kept as 64-bit hashes, sorted, with the row that first had each, so a file of
    millions of rows costs 16 bytes a row; the rows of the first KEPT repeated ids are kept.
    """

    def __init__(self) -> None:
        """Start an import: no key seen."""
        self._hashes = np.empty(0, dtype=np.uint64)
        self._first = np.empty(0, dtype=np.int64)
        self._repeated: list[npt.NDArray[np.uint64]] = []
        self.rows = 0  # rows whose key an earlier row had
        self.examples: dict[str, list[int]] = {}  # external_id -> its rows, in order

    def add(
        self,
        source: npt.NDArray[np.object_],
        external_id: npt.NDArray[np.object_],
        row: npt.NDArray[np.int64],
    ) -> None:
        """Count one batch of rows (their keys in input order)."""
        if not row.size:
            return
        # One 64-bit hash of (source, external_id); a source is usually one value for all rows.
        with np.errstate(over="ignore"):
            h = pd.util.hash_array(external_id, categorize=False) ^ (
                pd.util.hash_array(source) * np.uint64(0x9E3779B97F4A7C15)
            )
        unique, first_index, inverse = np.unique(h, return_index=True, return_inverse=True)
        at = np.minimum(np.searchsorted(self._hashes, unique), max(self._hashes.size - 1, 0))
        seen = self._hashes[at] == unique if self._hashes.size else np.zeros(unique.size, bool)
        first_row = np.where(seen, self._first[at] if self._first.size else 0, row[first_index])
        repeat = np.ones(row.size, dtype=bool)
        repeat[first_index[~seen]] = False  # the first row of a new key is no repeat
        self.rows += int(repeat.sum())
        if repeat.any():
            self._repeated.append(h[repeat])
            self._keep(external_id[repeat], first_row[inverse][repeat], row[repeat])
        # `unique` is sorted: the new keys go in where they belong, in one pass.
        at_new = np.searchsorted(self._hashes, unique[~seen])
        self._hashes = np.insert(self._hashes, at_new, unique[~seen])
        self._first = np.insert(self._first, at_new, row[first_index[~seen]])

    def _keep(
        self,
        external_id: npt.NDArray[np.object_],
        first_row: npt.NDArray[np.int64],
        row: npt.NDArray[np.int64],
    ) -> None:
        """Keep the rows of the first KEPT repeated ids."""
        for key, first, later in zip(
            external_id.tolist(), first_row.tolist(), row.tolist(), strict=True
        ):
            rows = self.examples.get(key)
            if rows is None:
                if len(self.examples) >= KEPT:
                    continue
                rows = self.examples[key] = [first]
            if len(rows) < ROWS_KEPT:
                rows.append(later)

    @property
    def ids(self) -> int:
        """How many ids came more than once."""
        if not self._repeated:
            return 0
        return int(np.unique(np.concatenate(self._repeated)).size)

    def notes(self) -> list[str]:
        """The summary's note: how many, and the rows of the first few."""
        if not self.rows:
            return []
        ids = self.ids
        shown = "; ".join(_rows(key, rows) for key, rows in list(self.examples.items())[:SHOWN])
        more = f"; and {ids - SHOWN} more" if ids > SHOWN else ""
        return [
            f"warning: {ids} {'id appears' if ids == 1 else 'ids appear'} more than once "
            f"({self.rows} {'row repeats' if self.rows == 1 else 'rows repeat'} an earlier row's "
            "id): each later row replaced what the earlier one stored (records count in the "
            "order given), and where such rows differ, importing the file again counts them "
            f"as updated. {shown}{more}"
        ]

    def details(self) -> list[str]:
        """Every kept repeated id with its rows, for the notes file."""
        lines = [f"id {_rows(key, rows)}" for key, rows in self.examples.items()]
        if self.ids > len(self.examples):
            lines.append(f"... and {self.ids - len(self.examples)} more repeated ids")
        return lines


def _rows(key: str, rows: list[int]) -> str:
    """'A1' in rows 3 and 17."""
    listed = [str(r) for r in rows]
    text = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
    cut = ", ..." if len(rows) >= ROWS_KEPT else ""
    return f"{key!r} in rows {text}{cut}"

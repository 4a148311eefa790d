"""Ids for rows that have none: a digest of what the row says, and its ordinal among the rows
of the input that say the same.

Some exports have no identifier (the anti-social-behaviour rows of a street-level police file,
a safety walk's spreadsheet). A made-up id must be stable, so that importing the same file again
finds every record unchanged, and must not merge two reports that say the same thing (two
identical rows are two incidents). So the id is the digest of the row's mapped columns and its
parsed point, plus how many rows with the same digest came before it in the input.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.ingest.batch import ObjectArray

PREFIX = "derived-"
_DIGEST_BYTES = 12  # 96 bits: no two different rows of any real file share a digest


class DerivedIds:
    """Makes the ids of one input, batch after batch, in input order.

    `columns` are the mapped columns that make up a row's content (coordinates are taken as
    parsed, so "13.30" and "13.3" are one point); the digests of rows seen so far are counted.
    """

    def __init__(self, columns: list[str]) -> None:
        """Start an input: no row seen yet."""
        self.columns = columns
        self._seen: dict[str, int] = {}
        self._names = "\x1e".join(columns)

    def make(
        self, texts: list[ObjectArray], x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> ObjectArray:
        """The ids of the next rows: their columns' texts (in `columns` order) and points."""
        n = x.size
        parts = [pd.Series(t, dtype=object) for t in texts]
        parts += [
            pd.Series([repr(v) for v in x.tolist()]),
            pd.Series([repr(v) for v in y.tolist()]),
        ]
        content = pd.Series(np.full(n, self._names, dtype=object)).str.cat(parts, sep="\x1f")
        digests = np.array(
            [
                hashlib.blake2b(
                    c.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES
                ).hexdigest()
                for c in content
            ],
            dtype=object,
        )
        codes, uniques = pd.factorize(digests)
        before = np.array([self._seen.get(d, 0) for d in uniques], dtype=np.int64)
        counts = np.bincount(codes, minlength=len(uniques))
        for digest, earlier, count in zip(uniques, before, counts, strict=True):
            self._seen[digest] = int(earlier + count)
        within = pd.Series(codes).groupby(codes).cumcount().to_numpy()
        ordinal = before[codes] + within + 1
        return np.array(
            [f"{PREFIX}{d}-{k}" for d, k in zip(digests, ordinal.tolist(), strict=True)],
            dtype=object,
        )

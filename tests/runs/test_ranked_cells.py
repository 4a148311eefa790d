"""The forecast layer's ranking: equal risks go to the cell with more incidents around it."""

from __future__ import annotations

import numpy as np

from app.runs.compute import ranked_cells


def test_equal_risks_are_ranked_by_the_neighbourhood_then_by_place() -> None:
    ix = np.array([0, 1, 2, 3, 4], dtype=np.int64)
    iy = np.zeros(5, dtype=np.int64)
    risk = np.array([1.0, 1.0, 1.0, 2.0, 0.0])  # three cells tie, one is higher, one has none
    around = np.array([0.0, 5.0, 3.0, 0.0, 9.0])
    ranked = ranked_cells(ix, iy, risk, coverage=0.4, tiebreak=around)
    # the highest risk first; then the tied cells by incidents around them, not by position
    assert ranked["ix"].tolist() == [3, 1, 2, 0]
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["flagged"].tolist() == [True, True, False, False]  # 40 % of 5 cells
    # without a tiebreak the place decides (iy, then ix), as before
    assert ranked_cells(ix, iy, risk, coverage=0.4)["ix"].tolist() == [3, 0, 1, 2]

"""The forecast on cells: each method against a plain loop, the weeks it may see, and ties."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from clustering.evaluation import flag_top_cells
from clustering.forecast import CellForecast, blend_rates, neighbourhood_counts
from clustering.gistar import TooFewIncidents
from geo.grid import cell_index

FloatArray = npt.NDArray[np.float64]
CELL = 100.0


def brute_neighbourhood(xy: FloatArray, ix: np.ndarray, iy: np.ndarray, ring: int) -> FloatArray:
    """Point by point and cell by cell: the points whose cell is within `ring` cells."""
    px, py = cell_index(xy[:, 0], xy[:, 1], CELL)
    out = np.zeros(len(ix))
    for j in range(len(ix)):
        for k in range(len(xy)):
            if abs(px[k] - ix[j]) <= ring and abs(py[k] - iy[j]) <= ring:
                out[j] += 1
    return out


def scattered(seed: int = 0, n: int = 300) -> tuple[FloatArray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (n, 2))
    week = rng.integers(10, 22, n)
    return xy, week


def all_cells() -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(10), np.arange(10))
    return gx.ravel(), gy.ravel()


@pytest.mark.parametrize("ring", [0, 1, 2])
def test_neighbourhood_counts_equal_a_plain_loop(ring: int) -> None:
    xy, _ = scattered()
    ix, iy = all_cells()
    got = neighbourhood_counts(xy, ix, iy, CELL, ring)
    assert got.tolist() == brute_neighbourhood(xy, ix, iy, ring).tolist()


def test_naive_counts_only_the_weeks_before_the_forecast_week() -> None:
    xy, week = scattered()
    ix, iy = all_cells()
    model = CellForecast(method="naive", cell_size_m=CELL, weeks=4)
    model.fit(xy, week, 20, cells=(ix, iy))
    used = (week >= 16) & (week < 20)
    assert model.n_incidents_ == int(used.sum())
    assert model.risk_.tolist() == brute_neighbourhood(xy[used], ix, iy, 0).tolist()
    assert model.tiebreak_.tolist() == brute_neighbourhood(xy[used], ix, iy, 1).tolist()


def test_blend_is_the_weighted_mean_of_a_long_and_a_short_weekly_rate() -> None:
    xy, week = scattered(1)
    ix, iy = all_cells()
    model = CellForecast(method="blend", cell_size_m=CELL, weeks=8, short_weeks=2, short_weight=0.3)
    model.fit(xy, week, 21, cells=(ix, iy))
    long = brute_neighbourhood(xy[(week >= 13) & (week < 21)], ix, iy, 0) / 8
    short = brute_neighbourhood(xy[(week >= 19) & (week < 21)], ix, iy, 0) / 2
    assert model.risk_ == pytest.approx(0.7 * long + 0.3 * short)
    # a short window longer than the whole one is the whole one
    both = blend_rates(xy, week, 21, ix, iy, CELL, 3, 10, 0.5)
    assert both == pytest.approx(brute_neighbourhood(xy[(week >= 18) & (week < 21)], ix, iy, 0) / 3)


@pytest.mark.parametrize("method", ["kde", "gistar", "prospective", "learned"])
def test_incidents_of_the_forecast_week_and_later_change_no_method(method: str) -> None:
    xy, week = scattered(2, 600)
    ix, iy = all_cells()
    params = {"method": method, "cell_size_m": CELL, "weeks": 8, "distance_band_m": 200.0}
    before = CellForecast(**params).fit(xy, week, 18, cells=(ix, iy)).risk_
    later = week >= 18
    moved = xy.copy()
    moved[later] = np.random.default_rng(9).uniform(0, 1000, (int(later.sum()), 2))
    after = CellForecast(**params).fit(moved, week, 18, cells=(ix, iy)).risk_
    assert later.any() and after.tolist() == before.tolist()


def test_gistar_refuses_too_few_and_the_others_score_nothing_as_zero() -> None:
    ix, iy = all_cells()
    empty, weeks = np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    with pytest.raises(TooFewIncidents):
        CellForecast(method="gistar", cell_size_m=CELL).fit(empty, weeks, 5, cells=(ix, iy))
    for method in ("naive", "blend", "kde", "prospective", "learned"):
        model = CellForecast(method=method, cell_size_m=CELL).fit(empty, weeks, 5, cells=(ix, iy))  # type: ignore[arg-type]
        assert model.n_incidents_ == 0 and not model.risk_.any()


def test_equal_counts_are_ranked_by_the_incidents_around_them_not_by_cell_order() -> None:
    # Cells (0, 0) and (8, 8) both hold one incident; (8, 8) has three more next to it. With
    # one cell to flag, cell order alone would pick (0, 0), which comes first by iy then ix.
    xy = np.array([[50, 50], [850, 850], [950, 850], [750, 750], [850, 950]], dtype=float)
    week = np.full(len(xy), 3)
    ix, iy = all_cells()
    model = CellForecast(method="naive", cell_size_m=CELL, weeks=2).fit(xy, week, 4, cells=(ix, iy))
    ones = model.risk_ == 1
    assert ones.sum() == 5  # (0,0), (8,8) and the three neighbours: all tied at one incident
    flagged = flag_top_cells(model.risk_, np.ones(100, bool), 0.01, (ix, iy), model.tiebreak_)
    assert [(ix[k], iy[k]) for k in np.flatnonzero(flagged)] == [(8, 8)]
    by_order = flag_top_cells(model.risk_, np.ones(100, bool), 0.01, (ix, iy))
    assert [(ix[k], iy[k]) for k in np.flatnonzero(by_order)] == [(0, 0)]


def test_a_run_records_only_the_parameters_its_method_reads() -> None:
    assert CellForecast(method="naive").method_params() == {
        "method": "naive",
        "cell_size_m": 150.0,
        "weeks": 12,
    }
    kde = CellForecast(method="kde", bandwidth_m=300.0).method_params()
    assert kde == {
        "method": "kde",
        "cell_size_m": 150.0,
        "weeks": 12,
        "bandwidth_m": 300.0,
        "kernel": "quartic",
    }
    with pytest.raises(ValueError, match="unknown method"):
        CellForecast(method="magic").fit(np.zeros((0, 2)), [], 1, cells=([0], [0]))  # type: ignore[arg-type]

"""Prospective hotspotting: 1 / ((1 + d)(1 + t)) per recent incident, equal to a plain loop."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from clustering.prospective import ProspectiveHotspots, prospective_footprint
from geo.grid import cell_centres, cell_index

FloatArray = npt.NDArray[np.float64]


def brute_force(
    xy: FloatArray, week: npt.NDArray[np.int64], forecast_week: int, ix: FloatArray, iy: FloatArray
) -> FloatArray:
    """The definition, incident by incident and cell by cell (150 m cells, 400 m, 8 weeks)."""
    risk = np.zeros(len(ix))
    ex, ey = cell_index(xy[:, 0], xy[:, 1], 150.0)
    for k in range(len(xy)):
        t = forecast_week - 1 - week[k]
        if not 0 <= t <= 7:
            continue
        ecx, ecy = cell_centres(ex[k], ey[k], 150.0)
        for j in range(len(ix)):
            cx, cy = cell_centres(ix[j], iy[j], 150.0)
            if np.hypot(cx - ecx, cy - ecy) <= 400.0:
                d = max(abs(ix[j] - ex[k]), abs(iy[j] - ey[k]))
                risk[j] += 1.0 / ((1 + d) * (1 + t))
    return risk


def test_footprint_of_150_m_cells_and_400_m() -> None:
    f = prospective_footprint(150.0, 400.0)
    assert f.shape == (5, 5)
    assert f[2, 2] == 1.0
    assert f[2, 3] == f[3, 3] == 0.5  # one cell away, straight or diagonal
    assert f[2, 4] == f[3, 4] == pytest.approx(1 / 3)  # centres 300 m and 335 m apart
    assert f[4, 4] == 0.0  # centres 424 m apart: outside 400 m


def test_one_incident_by_hand() -> None:
    xy = np.array([[75.0, 75.0], [75.0, 75.0], [75.0, 75.0], [75.0, 75.0]])
    week = np.array([9, 2, 10, 1])  # t = 0, 7, forecast week itself, 8 weeks back
    model = ProspectiveHotspots().fit(xy, week, forecast_week=10)
    assert model.n_incidents_ == 2
    assert model.risk_at([0, 1, 2, 2, 5], [0, 1, 1, 2, 5]).tolist() == pytest.approx(
        [1 + 1 / 8, (1 + 1 / 8) / 2, (1 + 1 / 8) / 3, 0.0, 0.0]
    )


def test_vectorised_equals_the_loop_on_small_data() -> None:
    rng = np.random.default_rng(5)
    xy = np.concatenate([rng.normal(600, 250, (60, 2)), rng.uniform(-500, 2000, (40, 2))])
    week = rng.integers(0, 14, len(xy))
    model = ProspectiveHotspots(cell_size_m=150, bandwidth_m=400, weeks=8).fit(xy, week, 12)
    gx, gy = np.meshgrid(np.arange(-6, 16), np.arange(-6, 16))
    ix, iy = gx.ravel(), gy.ravel()
    expected = brute_force(xy, week, 12, ix, iy)
    assert model.risk_at(ix, iy) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert expected.max() > 0


def test_no_recent_incidents_give_zero_risk_everywhere() -> None:
    model = ProspectiveHotspots().fit(np.array([[0.0, 0.0]]), np.array([0]), forecast_week=50)
    assert model.n_incidents_ == 0
    assert model.risk_at([0, 100], [0, -3]).tolist() == [0.0, 0.0]


def test_parameters_and_weeks_are_checked() -> None:
    xy = np.zeros((2, 2))
    with pytest.raises(ValueError, match="weeks"):
        ProspectiveHotspots(weeks=0).fit(xy, np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="integer"):
        ProspectiveHotspots().fit(xy, np.array([0.5, 1.0]), 2)
    with pytest.raises(ValueError, match="shape"):
        ProspectiveHotspots().fit(xy, np.array([0]), 2)

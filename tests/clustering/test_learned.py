"""The learned forecast: features counted by hand, the past only, a seed, and what it learns."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.learned import LearnedForecast, _sample

CELL = 100.0
# Three cells in a row, A (0, 0), B (1, 0), C (2, 0), and a quiet row of cells above them.
A, B, C = (50.0, 50.0), (150.0, 50.0), (250.0, 50.0)
CELLS = (np.array([0, 1, 2, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 1]))


def events(spec: list[tuple[tuple[float, float], int, str]]) -> tuple[np.ndarray, ...]:
    xy = np.array([p for p, _, _ in spec], dtype=float)
    week = np.array([w for _, w, _ in spec], dtype=np.int64)
    category = np.array([c for _, _, c in spec], dtype=object)
    return xy, week, category


def hand_case() -> tuple[np.ndarray, ...]:
    """Weeks 4 to 9 before forecast week 10; B and C busy enough to learn from."""
    spec = [(A, 9, "x"), (A, 9, "y"), (A, 7, "x"), (A, 4, "x"), (B, 8, "y")]
    spec += [(B, w, "x") for w in range(4, 10)] + [(C, w, "z") for w in range(4, 10, 2)]
    spec += [(A, 10, "x"), (A, 12, "x")]  # the forecast week and later: never seen
    return events(spec)


def test_features_are_the_rates_counted_by_hand_from_the_weeks_before() -> None:
    xy, week, category = hand_case()
    model = LearnedForecast(cell_size_m=CELL, weeks=6).fit(
        xy, week, 10, cells=CELLS, categories=category
    )
    table = model.features(xy, week, 10, cells=CELLS, categories=category)
    a = table.iloc[0]
    # A: 2 in week 9, 1 in week 7, 1 in week 4 (weeks 10 and 12 are not history)
    assert a["rate_1w_ring0"] == 2.0
    assert a["rate_4w_ring0"] == pytest.approx(3 / 4)  # weeks 6-9
    assert a["rate_6w_ring0"] == pytest.approx(4 / 6)  # weeks 4-9
    # its 3 × 3 block holds B too: B has one a week and one more in week 8
    assert a["rate_1w_ring1"] == 2.0 + 1.0
    assert a["rate_6w_ring1"] == pytest.approx((4 + 7) / 6)
    # near repeats: week 9 is 1 week back (weight 1), week 7 three (1/3), week 4 six (1/6)
    assert a["near_repeat_ring0"] == pytest.approx(2 + 1 / 3 + 1 / 6)
    # the commonest categories of the training weeks: x (9), z (3), y (2)
    assert model.categories_ == ["x", "z", "y"]
    assert a["share_category_0"] == pytest.approx(3 / 4)  # A: x, x, x, y
    assert a["share_category_2"] == pytest.approx(1 / 4)
    # the whole area's weekly rate per cell over the last week: A 2, B 1 over 6 cells
    assert a["area_rate_1w"] == pytest.approx(3 / 6)
    assert a["history_weeks"] == 6
    assert table.iloc[3].filter(like="ring0").eq(0).all()  # the quiet cell above A


def test_incidents_of_the_forecast_week_and_later_are_never_seen() -> None:
    xy, week, category = hand_case()
    kept = week < 10
    with_future = LearnedForecast(cell_size_m=CELL, weeks=6).fit(
        xy, week, 10, cells=CELLS, categories=category
    )
    without = LearnedForecast(cell_size_m=CELL, weeks=6).fit(
        xy[kept], week[kept], 10, cells=CELLS, categories=category[kept]
    )
    got = with_future.predict(xy, week, 10, cells=CELLS, categories=category)
    expected = without.predict(xy[kept], week[kept], 10, cells=CELLS, categories=category[kept])
    assert got.tolist() == expected.tolist()


def persistent_cells(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """20 weeks over 20 × 20 cells: cell (5, 5) has 3 incidents a week, (15, 15) had 30 in the
    first week only, and 40 a week fall anywhere."""
    rng = np.random.default_rng(seed)
    xy, week = [], []
    for w in range(20):
        xy += [rng.uniform(0, 2000, (40, 2)), np.full((3, 2), 550.0)]
        week += [w] * 43
    xy.append(np.full((30, 2), 1550.0))
    week += [0] * 30
    gx, gy = np.meshgrid(np.arange(20), np.arange(20))
    return np.concatenate(xy), np.array(week), (gx.ravel(), gy.ravel())


def test_the_same_seed_gives_the_same_forecast_and_a_steady_cell_ranks_first() -> None:
    xy, week, cells = persistent_cells(0)
    forecasts = [
        LearnedForecast(cell_size_m=CELL, weeks=20, seed=3)
        .fit(xy, week, 20, cells=cells)
        .predict(xy, week, 20, cells=cells)
        for _ in range(2)
    ]
    assert forecasts[0].tolist() == forecasts[1].tolist()
    steady, once = 5 * 20 + 5, 15 * 20 + 15
    assert int(np.argmax(forecasts[0])) == steady
    # the burst of week 0 is over: the model learned that old counts say little
    assert forecasts[0][once] < forecasts[0][steady] / 2


def test_without_an_incident_to_learn_from_it_falls_back_to_the_weekly_rate() -> None:
    xy = np.array([[50.0, 50.0], [50.0, 50.0], [150.0, 50.0]])
    week = np.array([0, 1, 2])  # every incident before the first target week (4)
    model = LearnedForecast(cell_size_m=CELL, weeks=6).fit(xy, week, 6, cells=CELLS)
    assert model.model_ is None and "no incident" in model.fallback_
    assert model.predict(xy, week, 6, cells=CELLS).tolist() == [2 / 6, 1 / 6, 0, 0, 0, 0]


def test_the_sample_keeps_every_busy_cell_week_and_weights_the_quiet_ones_to_their_number() -> None:
    counts = np.array([0.0] * 900 + [1.0] * 60 + [3.0] * 40)
    features = np.arange(1000.0)[:, None]
    x, y, w = _sample(features, counts, 400, np.random.default_rng(0))
    assert len(y) == 400 and (y > 0).sum() == 100
    assert w[y == 0].sum() == pytest.approx(900.0) and (w[y > 0] == 1).all()
    assert (np.diff(x[:, 0]) > 0).all()  # in their order, each row once


def test_it_needs_the_categories_it_learned_from_and_enough_weeks() -> None:
    xy, week, category = hand_case()
    model = LearnedForecast(cell_size_m=CELL, weeks=6).fit(
        xy, week, 10, cells=CELLS, categories=category
    )
    with pytest.raises(ValueError, match="categories"):
        model.predict(xy, week, 10, cells=CELLS)
    with pytest.raises(ValueError, match="weeks >= "):
        LearnedForecast(weeks=4).fit(xy, week, 10, cells=CELLS)

"""Choosing the forecast on past weeks only: planted answers are found, test weeks never count."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from clustering.choice import (
    BASELINE,
    SEARCH_GRID,
    TRAINING_WINDOWS_WEEKS,
    Candidate,
    ForecastChoice,
    score_choice,
    search_space,
)
from clustering.forecast import FORECAST_METHODS, CellForecast
from clustering.synthetic import HotspotSpec, generate_incidents, generate_near_repeats
from clustering.weeks import week_numbers
from geo.grid import cell_index

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: week 0 of the data is 2026-W02
BEFORE = "2026-05-25"  # the Monday of the data's week 20
CELL = 150.0


def test_the_search_space_is_every_method_at_three_settings_and_every_window() -> None:
    space = search_space()
    assert len(space) == len(set(space)) == 5 + 5 * 3 * len(TRAINING_WINDOWS_WEEKS)
    for method in FORECAST_METHODS:
        mine = [c for c in space if c.method == method]
        settings = {c.params for c in mine}
        assert len(settings) == (1 if SEARCH_GRID[method] is None else 3)
        assert {c.train_weeks for c in mine} == set(TRAINING_WINDOWS_WEEKS)
    assert BASELINE in space and "dbscan" not in {c.method for c in space}
    assert Candidate("kde", 12, (("kde_bandwidth_m", 500.0),)).label == "kde 500 m, 12 weeks"


def persistent(seed: int = 2, n: int = 3000) -> tuple[np.ndarray, np.ndarray, HotspotSpec]:
    spot = HotspotSpec(1275.0, 3225.0, 60.0)  # the centre of cell (8, 21)
    inc = generate_incidents(
        [spot], n, start=START, weeks=26, background_share=0.7, bounds=(0, 0, 4500, 4500),
        seed=seed,
    )  # fmt: skip
    return inc.xy, inc.time, spot


def test_a_planted_persistent_hotspot_is_flagged_by_the_chosen_forecast() -> None:
    xy, times, spot = persistent()
    choice = ForecastChoice(cell_size_m=CELL, before=BEFORE, selection_weeks=6).fit(xy, times)
    # The chosen setting, fitted as a run would fit it on the weeks before BEFORE, flags the
    # hotspot's own cell among its 5% (a cell found here, without the choice's code).
    week = week_numbers(times, "Europe/Stockholm")
    forecast_week = int(week_numbers(pd.DatetimeIndex([pd.Timestamp(BEFORE, tz="UTC")]), "UTC")[0])
    past = week < forecast_week
    px, py = cell_index(xy[past, 0], xy[past, 1], CELL)
    cells = np.unique(np.column_stack([px, py]), axis=0)
    model = CellForecast(**choice.chosen_.forecast_params(CELL))
    model.fit(xy[past], week[past], forecast_week, cells=(cells[:, 0], cells[:, 1]))
    top = np.argsort(-model.risk_, kind="stable")[: int(0.05 * len(cells))]
    hot = cell_index(spot.x_m, spot.y_m, CELL)
    assert (int(hot[0]), int(hot[1])) in {tuple(c) for c in cells[top].tolist()}
    assert choice.table_["eligible"].sum() > 20
    assert choice.table_.loc[BASELINE.label, "weeks_evaluated"] == 6


def test_a_planted_near_repeat_process_makes_prospective_or_learned_win() -> None:
    # No place stays hot; every incident brings follow-ups within ~80 m and a few days.
    inc = generate_near_repeats(2000, start=START, weeks=22, bounds=(0, 0, 5000, 5000), seed=3)
    choice = ForecastChoice(cell_size_m=CELL, selection_weeks=6).fit(inc.xy, inc.time)
    assert choice.chosen_.method in ("prospective", "learned")
    assert choice.difference_.low > 0  # sure it beats the 12-week counts, on past weeks
    best_naive = choice.table_[choice.table_["method"] == "naive"]["pai"].max()
    assert choice.table_.loc[choice.chosen_.label, "pai"] > 1.2 * best_naive


def test_the_test_weeks_incidents_do_not_move_the_choice() -> None:
    xy, times, _ = persistent(seed=5, n=2500)
    later = np.asarray(pd.DatetimeIndex(times, tz="UTC") >= pd.Timestamp(BEFORE, tz="UTC"))
    changed = xy.copy()
    rng = np.random.default_rng(0)
    changed[later] = rng.uniform(0, 4500, (int(later.sum()), 2))  # the test weeks, scrambled
    kept = ~later | (rng.random(len(xy)) < 0.5)  # and half of them gone
    first = ForecastChoice(cell_size_m=CELL, before=BEFORE, selection_weeks=6).fit(xy, times)
    second = ForecastChoice(cell_size_m=CELL, before=BEFORE, selection_weeks=6).fit(
        changed[kept], times[kept]
    )
    assert later.sum() > 500 and first.chosen_ == second.chosen_
    pd.testing.assert_frame_equal(first.table_, second.table_)
    # ...while the weeks before do count: moving those changes the table
    earlier = changed.copy()
    earlier[~later] = rng.uniform(0, 4500, (int((~later).sum()), 2))
    third = ForecastChoice(cell_size_m=CELL, before=BEFORE, selection_weeks=6).fit(earlier, times)
    assert not third.table_["pai"].equals(first.table_["pai"])


def test_small_counts_keep_the_baseline_and_divide_by_nothing() -> None:
    # A small kommun: 300 incidents a year, a third of them around one corner shop.
    xy, times, _ = persistent(seed=7, n=150)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        choice = ForecastChoice(
            cell_size_m=CELL, selection_weeks=6, methods=("naive", "blend", "kde", "learned")
        ).fit(xy, times)
    eligible = choice.table_[choice.table_["eligible"].astype(bool)]
    assert eligible["pai"].notna().all() and np.isfinite(choice.difference_.mean)
    # six incidents a week cannot show anything beats counting: the baseline stays, and says why
    assert not choice.difference_.low > 0
    assert choice.chosen_ == BASELINE and "too close to tell apart" in choice.reason_


def test_equal_scores_are_ranked_by_pei_star_then_by_the_search_space_order() -> None:
    # Every incident in one cell: every method flags it, so every PAI and PEI* is equal.
    n = 400
    days = np.arange(n) % 140
    times = pd.DatetimeIndex(
        [pd.Timestamp(START) + pd.Timedelta(days=int(d), hours=12) for d in days]
    )
    xy = np.column_stack([np.full(n, 75.0), np.full(n, 75.0)])
    xy[::50] = [[4000.0, 4000.0]]  # a few elsewhere, so that there is a study area to flag in
    choice = ForecastChoice(cell_size_m=CELL, selection_weeks=4, methods=("naive", "blend")).fit(
        xy, times
    )
    ranked = choice.table_.dropna(subset=["rank"])
    assert ranked["pai"].nunique() == 1
    assert ranked.index[0] == BASELINE.label and choice.chosen_ == BASELINE
    assert list(ranked.index[1:3]) == ["naive 6 weeks", "blend short weight 0.25, 6 weeks"]


def test_the_choice_is_scored_once_on_the_test_weeks_next_to_the_baseline() -> None:
    xy, times, _ = persistent()
    chosen = Candidate("kde", 12, (("kde_bandwidth_m", 300.0),))
    test = score_choice(
        chosen, xy, times, test_from=BEFORE, cell_size_m=CELL, coverage=0.05,
        tz="Europe/Stockholm",
    )  # fmt: skip
    table = test.table
    assert table.loc[chosen.label, "role"] == "chosen"
    assert table.loc["dbscan eps 150 m, 12 weeks", "role"] == "polygons, own coverage"
    assert len(test.test_weeks) == 6 and (table["weeks_evaluated"] == 6).all()
    weekly = test.results.pivot_table(index="week", columns="method", values="pai")
    by_hand = (weekly[chosen.label] - weekly[BASELINE.label]).mean()
    assert table.loc[chosen.label, "pai_minus_baseline"] == pytest.approx(by_hand)
    assert table.loc[BASELINE.label, "pai_minus_baseline"] == 0.0

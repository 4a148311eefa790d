"""Emerging hot spots: ArcGIS's 17 patterns, Mann–Kendall, space-time Gi* as esda, ISO weeks."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import esda
import libpysal
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import shapely
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau, norm

from clustering.emerging import PATTERNS, EmergingHotspots, classify, mann_kendall
from clustering.fdr import benjamini_hochberg
from clustering.gistar import TooFewIncidents
from clustering.synthetic import HotspotSpec, generate_incidents
from geo.grid import cell_centres, cells_in_area

FloatArray = npt.NDArray[np.float64]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
SIGNIFICANT_UP = (3.0, 0.001)
SIGNIFICANT_DOWN = (-3.0, 0.001)
NO_TREND = (0.5, 0.6)

# One cell per category over 12 weeks: H a significant hot bin, C a cold one, . neither.
CATEGORY_CASES: dict[str, tuple[str, tuple[float, float]]] = {
    "new_hot": ("...........H", NO_TREND),
    "consecutive_hot": ("........HHHH", SIGNIFICANT_UP),
    "intensifying_hot": ("HHHHHHHHHHHH", SIGNIFICANT_UP),
    "persistent_hot": ("HHHHHHHHHHHH", NO_TREND),
    "diminishing_hot": ("HHHHHHHHHHHH", SIGNIFICANT_DOWN),
    "sporadic_hot": ("..H.HH...H.H", NO_TREND),
    "oscillating_hot": ("..C....HH..H", NO_TREND),
    "historical_hot": ("HHHHHHHHHHH.", SIGNIFICANT_DOWN),
    "new_cold": ("...........C", NO_TREND),
    "consecutive_cold": ("........CCCC", SIGNIFICANT_DOWN),
    "intensifying_cold": ("CCCCCCCCCCCC", SIGNIFICANT_DOWN),
    "persistent_cold": ("CCCCCCCCCCCC", NO_TREND),
    "diminishing_cold": ("CCCCCCCCCCCC", SIGNIFICANT_UP),
    "sporadic_cold": ("C..CC.....CC", NO_TREND),
    "oscillating_cold": ("H..HH......C", NO_TREND),
    "historical_cold": ("CCCCCCCCCCC.", NO_TREND),
    "no_pattern": ("............", NO_TREND),
}


def pattern_of(series: str, trend: tuple[float, float] = NO_TREND, alpha: float = 0.05) -> str:
    """Classify one cell from its series of H (hot), C (cold) and . (neither) bins."""
    steps = np.array(list(series))
    hot, cold = (steps == "H")[:, None], (steps == "C")[:, None]
    return str(classify(hot, cold, [trend[0]], [trend[1]], alpha)[0])


@pytest.mark.parametrize("category", list(CATEGORY_CASES))
def test_every_arcgis_category_is_recognised(category: str) -> None:
    series, trend = CATEGORY_CASES[category]
    assert pattern_of(series, trend) == category


def test_the_cases_cover_all_seventeen_patterns_in_one_call() -> None:
    assert set(CATEGORY_CASES) == set(PATTERNS) and len(PATTERNS) == 17
    steps = np.array([list(series) for series, _ in CATEGORY_CASES.values()]).T
    trends = np.array([trend for _, trend in CATEGORY_CASES.values()])
    names = classify(steps == "H", steps == "C", trends[:, 0], trends[:, 1], 0.05)
    assert names.tolist() == list(CATEGORY_CASES)


def test_nine_of_ten_hot_steps_is_exactly_ninety_percent() -> None:
    assert pattern_of("H.HHHHHHHH") == "persistent_hot"
    assert pattern_of("H..HHHHHHH") == "sporadic_hot"  # 8 of 10


def test_eleven_of_twelve_hot_steps_reach_ninety_percent_and_ten_do_not() -> None:
    assert pattern_of("H.HHHHHHHHHH") == "persistent_hot"  # 11/12 = 91.7%
    assert pattern_of("H..HHHHHHHHH") == "sporadic_hot"  # 10/12 = 83.3%, hot before the run
    assert pattern_of(".HHHHHHHHHHH", SIGNIFICANT_UP) == "intensifying_hot"
    assert pattern_of("..HHHHHHHHHH", SIGNIFICANT_UP) == "consecutive_hot"
    assert pattern_of("HHHHHHHHHHH.") == "historical_hot"
    assert pattern_of("HHHHHHHHHH..") == "no_pattern"


def test_a_final_run_of_one_is_new_and_of_two_is_consecutive() -> None:
    assert pattern_of("...........H") == "new_hot"
    assert pattern_of("..........HH") == "consecutive_hot"
    assert pattern_of("...........C") == "new_cold"
    assert pattern_of("..........CC") == "consecutive_cold"


def test_an_earlier_hot_step_before_the_final_run_makes_it_sporadic() -> None:
    assert pattern_of("....H.....HH") == "sporadic_hot"
    assert pattern_of("....H......H") == "sporadic_hot"


def test_a_new_hot_spot_with_an_earlier_cold_step_is_oscillating() -> None:
    assert pattern_of("..C........H") == "oscillating_hot"
    assert pattern_of("..C.......HH") == "oscillating_hot"
    assert pattern_of("..H........C") == "oscillating_cold"


def test_a_historical_hot_spot_that_is_cold_now_is_oscillating_cold() -> None:
    assert pattern_of("HHHHHHHHHHHC") == "oscillating_cold"


def test_a_hot_spot_that_went_quiet_is_no_pattern_because_sporadic_needs_the_final_step() -> None:
    assert pattern_of("..HH.H......") == "no_pattern"


def test_persistent_with_a_significant_trend_becomes_intensifying_or_diminishing() -> None:
    assert pattern_of("HHHHHHHHHHHH", (2.5, 0.05)) == "intensifying_hot"  # p <= alpha counts
    assert pattern_of("HHHHHHHHHHHH", (2.5, 0.0501)) == "persistent_hot"
    assert pattern_of("HHHHHHHHHHHH", (2.5, 0.08), alpha=0.10) == "intensifying_hot"


def test_classify_refuses_a_bin_both_hot_and_cold() -> None:
    with pytest.raises(ValueError, match="both a hot and a cold"):
        classify(np.ones((3, 1), bool), np.ones((3, 1), bool), [0.0], [1.0])


def test_mann_kendall_matches_kendalltau_against_time_without_ties() -> None:
    rng = np.random.default_rng(4)
    for n in (5, 12, 26):
        x = rng.normal(size=n) + np.linspace(0, rng.uniform(-2, 2), n)
        result = mann_kendall(x)
        tau = kendalltau(np.arange(n), x, method="asymptotic")
        pairs = n * (n - 1) / 2
        assert result.s == pytest.approx(tau.statistic * pairs, abs=1e-9)
        assert result.var_s == pytest.approx(n * (n - 1) * (2 * n + 5) / 18)
        # scipy's asymptotic z is S / sqrt(Var S); ours carries the continuity correction.
        z_scipy = np.sign(tau.statistic) * norm.isf(tau.pvalue / 2)
        assert result.s / np.sqrt(result.var_s) == pytest.approx(z_scipy, rel=1e-9)
        expected_z = (result.s - np.sign(result.s)) / np.sqrt(result.var_s)
        assert result.z == pytest.approx(expected_z)
        assert result.p == pytest.approx(2 * norm.sf(abs(expected_z)))


def test_mann_kendall_tie_corrected_variance_matches_kendalltau() -> None:
    x = np.array([3.0, 1.0, 1.0, 4.0, 4.0, 4.0, 2.0, 5.0, 5.0, 6.0, 1.0, 7.0])
    result = mann_kendall(x)
    tau = kendalltau(np.arange(x.size), x, method="asymptotic")
    z_scipy = np.sign(tau.statistic) * norm.isf(tau.pvalue / 2)
    assert result.s / np.sqrt(result.var_s) == pytest.approx(z_scipy, rel=1e-9)


def test_mann_kendall_hand_worked_example_with_ties() -> None:
    # x = 1, 2, 2, 3, 1. Pairs from each i: +3 (2, 2, 3 above 1; 1 tied), 0 (2 tied, 3 above,
    # 1 below), 0 (3 above, 1 below), -1 (1 below 3): S = 2. Two tie groups of two (the 1s and
    # the 2s): Var(S) = (5·4·15 - 2·(2·1·9)) / 18 = 264 / 18. z = (S - 1) / sqrt(Var S).
    result = mann_kendall([1.0, 2.0, 2.0, 3.0, 1.0])
    assert result.s == 2
    assert result.var_s == pytest.approx(264 / 18)
    assert result.z == pytest.approx(1 / np.sqrt(264 / 18))
    assert result.p == pytest.approx(2 * norm.sf(1 / np.sqrt(264 / 18)))


def test_mann_kendall_runs_down_each_column_and_a_flat_series_has_no_trend() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(12, 30)).astype(float)
    x[:, 0] = 2.0
    together = mann_kendall(x)
    for column in range(x.shape[1]):
        alone = mann_kendall(x[:, column])
        assert together.s[column] == alone.s and together.var_s[column] == alone.var_s
    assert together.z[0] == 0 and together.p[0] == 1


def clustered_points(n: int, seed: int, size_m: float = 1200.0) -> FloatArray:
    """Uniform background with one blob, so counts vary and some bins stand out."""
    rng = np.random.default_rng(seed)
    blob = rng.normal([0.3 * size_m, 0.6 * size_m], 0.1 * size_m, (n // 3, 2))
    return np.concatenate([blob, rng.uniform(0, size_m, (n - n // 3, 2))]).clip(0, size_m - 1)


def weekly_times(n: int, weeks: int, seed: int) -> npt.NDArray[np.datetime64]:
    """UTC times spread over `weeks` Stockholm weeks from Monday 2 March 2026 00:00 local."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-03-01T23:00:00", "s")  # Monday 00:00 CET
    return start + rng.integers(0, weeks * 7 * 86_400 - 7_200, n).astype("timedelta64[s]")


def esda_space_time_z(fitted: EmergingHotspots, time_steps: int) -> esda.G_Local:
    """The reference: esda G_Local(star=True, B) on the (step, cell) cube and space-time W."""
    gx, gy = fitted.window_.cell_keys()
    m = fitted.cell_mask_
    cx, cy = cell_centres(gx[m], gy[m], fitted.cell_size_m)
    near = cdist(np.column_stack([cx, cy]), np.column_stack([cx, cy])) <= fitted.distance_band_m
    cells, steps = int(m.sum()), fitted.counts_.shape[0]
    neighbours: dict[int, list[int]] = {}
    for t in range(steps):
        for i in range(cells):
            spatial = np.flatnonzero(near[i])
            bins = [s * cells + j for s in range(max(0, t - time_steps), t + 1) for j in spatial]
            neighbours[t * cells + i] = [b for b in bins if b != t * cells + i]
    w = libpysal.weights.W(neighbours, silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(
            fitted.counts_[:, m].ravel(), w, transform="B", star=True, permutations=0
        )


@pytest.mark.parametrize(
    ("distance_band_m", "time_steps", "with_area"),
    [(250.0, 1, False), (200.0, 0, True), (300.0, 2, True), (100.0, 3, False)],
)
def test_space_time_gi_star_matches_esda(
    distance_band_m: float, time_steps: int, with_area: bool
) -> None:
    area = (
        shapely.Polygon([(50, 0), (1200, 150), (1100, 1200), (0, 1000)]).difference(
            shapely.Point(700, 600).buffer(220)
        )
        if with_area
        else None
    )
    fitted = EmergingHotspots(
        cell_size_m=100.0,
        distance_band_m=distance_band_m,
        neighbourhood_time_step=time_steps,
        window_steps=5,
    ).fit(
        clustered_points(600, seed=1),
        weekly_times(600, 5, seed=2),
        area=area,
        end=np.datetime64("2026-04-05T22:00"),  # Monday 6 April 00:00 CEST
    )
    reference = esda_space_time_z(fitted, time_steps)
    m = fitted.cell_mask_
    np.testing.assert_allclose(fitted.z_[:, m].ravel(), reference.Zs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fitted.p_[:, m].ravel(), 2 * reference.p_norm, rtol=0, atol=1e-9)


def test_fdr_is_applied_to_each_week_on_its_own() -> None:
    fitted = EmergingHotspots(
        cell_size_m=100.0, distance_band_m=300.0, window_steps=5, alpha=0.10
    ).fit(clustered_points(900, seed=3), weekly_times(900, 5, seed=4), end="2026-04-06T00:00+02:00")
    for week in range(5):
        np.testing.assert_array_equal(fitted.p_adjusted_[week], benjamini_hochberg(fitted.p_[week]))
    significant = np.nan_to_num(fitted.p_adjusted_, nan=1.0) <= 0.10
    np.testing.assert_array_equal(fitted.hot_, significant & (np.nan_to_num(fitted.z_) > 0))
    np.testing.assert_array_equal(fitted.cold_, significant & (np.nan_to_num(fitted.z_) < 0))
    np.testing.assert_array_equal(fitted.hot_, fitted.bins_ >= 1)  # alpha 0.10 = 90% bins
    assert fitted.hot_.any()
    raw = EmergingHotspots(
        cell_size_m=100.0, distance_band_m=300.0, window_steps=5, alpha=0.10, fdr=False
    ).fit(clustered_points(900, seed=3), weekly_times(900, 5, seed=4), end="2026-04-06T00:00+02:00")
    assert raw.hot_.sum() > fitted.hot_.sum()


def stockholm_utc(wall: datetime) -> np.datetime64:
    """A Stockholm wall-clock time (naive datetime) as a naive UTC numpy datetime64."""
    utc = wall.replace(tzinfo=STOCKHOLM).astimezone(ZoneInfo("UTC"))
    return np.datetime64(utc.replace(tzinfo=None), "s")


def fit_weeks(times: list[np.datetime64], end: object, steps: int) -> EmergingHotspots:
    """Fit a few spread-out incidents (min_incidents=1) so that only the time steps matter."""
    xy = np.column_stack([np.linspace(50, 950, len(times)), np.linspace(950, 50, len(times))])
    return EmergingHotspots(
        cell_size_m=100.0, distance_band_m=200.0, window_steps=steps, min_incidents=1
    ).fit(xy, np.array(times), end=end)


def per_week(fitted: EmergingHotspots) -> list[int]:
    """Incidents per time step of the window."""
    return np.nansum(fitted.counts_, axis=(1, 2)).astype(int).tolist()


def test_sunday_2330_local_belongs_to_that_week_not_the_next() -> None:
    winter_sunday = stockholm_utc(datetime(2026, 1, 11, 23, 30))
    summer_sunday = stockholm_utc(datetime(2026, 6, 14, 23, 30))
    assert winter_sunday == np.datetime64("2026-01-11T22:30")  # CET, UTC+1
    assert summer_sunday == np.datetime64("2026-06-14T21:30")  # CEST, UTC+2
    winter = fit_weeks(
        [
            winter_sunday,
            stockholm_utc(datetime(2026, 1, 12, 0, 0)),
            stockholm_utc(datetime(2026, 1, 7, 12, 0)),
        ],
        end=datetime(2026, 1, 19, tzinfo=STOCKHOLM),
        steps=2,
    )
    assert winter.weeks_[0] == pd.Timestamp("2026-01-05 00:00", tz="Europe/Stockholm")
    assert per_week(winter) == [2, 1]
    summer = fit_weeks(
        [
            summer_sunday,
            stockholm_utc(datetime(2026, 6, 15, 0, 0)),
            stockholm_utc(datetime(2026, 6, 15, 0, 1)),
        ],
        end=datetime(2026, 6, 22, tzinfo=STOCKHOLM),
        steps=2,
    )
    assert per_week(summer) == [1, 2]


@pytest.mark.parametrize(
    ("week_start", "hours"),
    [(datetime(2026, 3, 23), 167), (datetime(2026, 10, 19), 169)],
    ids=["spring_forward", "fall_back"],
)
def test_a_dst_week_has_167_or_169_hours_and_is_one_step(week_start: datetime, hours: int) -> None:
    times = [
        stockholm_utc(week_start - timedelta(minutes=30)),  # the Sunday before: previous week
        stockholm_utc(week_start),
        stockholm_utc(week_start + timedelta(days=6, hours=23, minutes=30)),  # its own Sunday
        stockholm_utc(week_start + timedelta(days=7)),  # the next Monday: next week
    ]
    fitted = fit_weeks(times, end=stockholm_utc(week_start + timedelta(days=14)), steps=3)
    lengths = np.diff(fitted.weeks_.tz_convert("UTC")) / pd.Timedelta(hours=1)
    assert lengths.tolist() == [168, hours]
    assert per_week(fitted) == [1, 2, 1]
    assert str(fitted.weeks_.tz) == "Europe/Stockholm"
    assert (fitted.weeks_.day_of_week == 0).all() and (fitted.weeks_.hour == 0).all()


def test_window_is_the_complete_weeks_before_the_week_containing_end() -> None:
    times = [stockholm_utc(datetime(2026, 2, day, 12, 0)) for day in (4, 11, 18, 25)]
    fitted = fit_weeks(times, end=datetime(2026, 2, 25, 9, 0, tzinfo=STOCKHOLM), steps=2)
    assert list(fitted.weeks_.strftime("%Y-%m-%d")) == ["2026-02-09", "2026-02-16"]
    assert per_week(fitted) == [1, 1]  # 4 February is too early, 25 February too late


def test_default_end_leaves_out_the_week_of_the_latest_incident() -> None:
    times = [stockholm_utc(datetime(2026, 2, day, 12, 0)) for day in (4, 11, 18, 25)]
    fitted = fit_weeks(times, end=None, steps=3)
    assert list(fitted.weeks_.strftime("%Y-%m-%d")) == ["2026-02-02", "2026-02-09", "2026-02-16"]
    assert per_week(fitted) == [1, 1, 1]


def test_tz_aware_pandas_times_give_the_same_cube_as_numpy_utc() -> None:
    xy, utc = clustered_points(400, seed=6), weekly_times(400, 4, seed=7)
    local = pd.Series(pd.to_datetime(utc, utc=True)).dt.tz_convert("Europe/Stockholm")
    end = "2026-03-30T00:00+02:00"
    a = EmergingHotspots(cell_size_m=100.0, distance_band_m=300.0, window_steps=4).fit(
        xy, utc, end=end
    )
    b = EmergingHotspots(cell_size_m=100.0, distance_band_m=300.0, window_steps=4).fit(
        xy, local, end=end
    )
    np.testing.assert_array_equal(a.counts_, b.counts_)
    assert a.n_incidents_ == 400


def synthetic_weeks(seed: int = 11) -> tuple[FloatArray, npt.NDArray[np.datetime64], dict]:
    """Persisting and emerging hotspots over 12 weeks, a fading one over 24 (first 12 used)."""
    start = datetime(2026, 1, 5, tzinfo=STOCKHOLM)
    centres = {"persisting": (2000.0, 2000.0), "emerging": (6000.0, 6000.0)}
    centres["fading"] = (2000.0, 6000.0)
    twelve = generate_incidents(
        [
            HotspotSpec(*centres["persisting"], sigma_m=250.0, trend="persisting"),
            HotspotSpec(*centres["emerging"], sigma_m=250.0, trend="emerging"),
        ],
        9000,
        start=start,
        weeks=12,
        background_share=0.3,
        bounds=(0.0, 0.0, 8000.0, 8000.0),
        seed=seed,
    )
    # Over 24 weeks the fading hotspot is still alive, but weaker, in the window's last week.
    fading = generate_incidents(
        [HotspotSpec(*centres["fading"], sigma_m=250.0, trend="fading")],
        5000,
        start=start,
        weeks=24,
        background_share=0.0,
        seed=seed + 1,
    )
    xy = np.concatenate([twelve.xy, fading.xy])
    times = np.concatenate([twelve.time, fading.time])
    inside = ((xy >= 0) & (xy < 8000)).all(axis=1)
    return xy[inside], times[inside], centres


def patterns_around(fitted: EmergingHotspots, centre: tuple[float, float]) -> set[str]:
    """The patterns of the 3 × 3 cells around the cell holding centre."""
    size = fitted.window_.cell_size_m
    row = int(centre[1] // size) - fitted.window_.iy0
    col = int(centre[0] // size) - fitted.window_.ix0
    return set(fitted.pattern_[row - 1 : row + 2, col - 1 : col + 2].ravel().tolist())


def test_synthetic_emerging_persisting_and_fading_hotspots_get_their_patterns() -> None:
    xy, times, centres = synthetic_weeks()
    fitted = EmergingHotspots(cell_size_m=200.0, distance_band_m=400.0).fit(
        xy, times, area=shapely.box(0, 0, 8000, 8000), end=datetime(2026, 3, 30, tzinfo=STOCKHOLM)
    )
    assert fitted.weeks_[0] == pd.Timestamp("2026-01-05", tz="Europe/Stockholm")
    assert patterns_around(fitted, centres["emerging"]) <= {
        "new_hot",
        "consecutive_hot",
        "intensifying_hot",
    }
    assert patterns_around(fitted, centres["persisting"]) <= {"persistent_hot", "intensifying_hot"}
    assert patterns_around(fitted, centres["fading"]) <= {"diminishing_hot", "historical_hot"}
    # Away from the three hotspots the background shows nothing.
    cx, cy = fitted.window_.centres()
    far = fitted.cell_mask_.copy()
    for x, y in centres.values():
        far &= np.hypot(cx - x, cy - y) > 1500
    assert far.sum() > 1000 and (fitted.pattern_[far] == "no_pattern").all()


def test_study_cells_are_the_area_cells_and_cells_outside_are_blank() -> None:
    area = shapely.Point(600, 600).buffer(550)
    fitted = EmergingHotspots(cell_size_m=100.0, distance_band_m=300.0, window_steps=4).fit(
        clustered_points(500, seed=8), weekly_times(500, 4, seed=9), area=area, end="2026-03-30"
    )
    ix, iy = cells_in_area(area, 100.0)
    gx, gy = fitted.window_.cell_keys()
    m = fitted.cell_mask_
    assert set(zip(gx[m].tolist(), gy[m].tolist(), strict=True)) == set(
        zip(ix.tolist(), iy.tolist(), strict=True)
    )
    outside = ~fitted.cell_mask_
    assert np.isnan(fitted.z_[:, outside]).all() and np.isnan(fitted.trend_z_[outside]).all()
    assert (fitted.pattern_[outside] == "").all() and not fitted.hot_[:, outside].any()
    assert set(fitted.pattern_[fitted.cell_mask_].tolist()) <= set(PATTERNS)
    assert fitted.counts_.shape == (4, *fitted.window_.shape)


def test_to_cells_has_one_row_per_study_cell() -> None:
    fitted = EmergingHotspots(cell_size_m=100.0, distance_band_m=300.0, window_steps=4).fit(
        clustered_points(500, seed=8), weekly_times(500, 4, seed=9), end="2026-03-30"
    )
    cells = fitted.to_cells()
    assert list(cells.columns) == [
        "ix",
        "iy",
        "pattern",
        "trend_z",
        "trend_p",
        "hot_steps",
        "cold_steps",
        "geometry",
    ]
    assert len(cells) == fitted.cell_mask_.sum()
    rows, cols = cells["iy"] - fitted.window_.iy0, cells["ix"] - fitted.window_.ix0
    np.testing.assert_array_equal(cells["hot_steps"], fitted.hot_[:, rows, cols].sum(axis=0))


def test_too_few_incidents_in_the_window_raise() -> None:
    xy = clustered_points(105, seed=10)
    before = np.full(40, np.datetime64("2026-03-01T12:00"))
    inside = np.full(25, np.datetime64("2026-03-11T12:00"))
    after = np.full(40, np.datetime64("2026-03-18T12:00"))
    with pytest.raises(TooFewIncidents, match=r"^Gi\* needs at least 30 .*, got 25$"):
        EmergingHotspots(cell_size_m=100.0, distance_band_m=300.0, window_steps=2).fit(
            xy, np.concatenate([before, inside, after]), end="2026-03-16T00:00+01:00"
        )


def test_weights_add_up_per_bin_but_the_minimum_counts_incidents() -> None:
    xy, times = clustered_points(500, seed=12), weekly_times(500, 4, seed=13)
    weights = np.where(np.arange(500) % 2 == 0, 2.0, 0.5)
    fitted = EmergingHotspots(cell_size_m=100.0, distance_band_m=300.0, window_steps=4).fit(
        xy, times, weights, end="2026-03-30"
    )
    assert np.nansum(fitted.counts_) == pytest.approx(weights.sum())
    assert fitted.n_incidents_ == 500


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"window_steps": 1}, "window_steps"),
        ({"neighbourhood_time_step": -1}, "neighbourhood_time_step"),
        ({"distance_band_m": 50.0}, "distance_band_m"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_unusable_parameters_are_refused(parameters: dict[str, float], message: str) -> None:
    settings: dict[str, float] = {"cell_size_m": 100.0, "distance_band_m": 300.0} | parameters
    with pytest.raises(ValueError, match=message):
        EmergingHotspots(**settings).fit(  # type: ignore[arg-type]
            clustered_points(100, seed=1), weekly_times(100, 2, seed=1), end="2026-03-16"
        )

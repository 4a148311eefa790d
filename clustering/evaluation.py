"""Predictive accuracy of hotspot methods: hit rate, PAI, PEI*, and a rolling weekly backtest.

Metrics, for one test period, with N the test incidents in the study area, n those inside the
flagged area, a the flagged area and A the study area:

- hit rate = n / N;
- PAI (Prediction Accuracy Index, Chainey et al. 2008) = (n / N) / (a / A);
- PEI* (Hunt 2016, the Predictive Efficiency Index with n*) = n / n*, where n* is the most test
  incidents any set of the same number of cells could have caught: the sum of the largest test
  counts over that many study cells. 1 is perfect.

Flagging cells (`flag_top_cells`): the number of cells is floor(coverage × candidate cells), at
least one (floor, so the flagged area never exceeds the share: a patrol budget is an upper
bound; a 1e-9 guard keeps 0.05 × 200 = 10 exact). Cells are ranked by score, highest first (NaN
last); equal scores by a secondary score when one is given, highest first (the backtest gives
every method the same one: the training incidents in the cell and its eight neighbours, see
clustering.forecast), and what is still equal by the stable cell key, iy ascending, then ix.

The rolling backtest (`Backtest`) follows one fixed protocol:

1. Weeks are Monday-based calendar weeks in local time (`tz`, Europe/Stockholm by default; the
   same weeks as ISO 8601 week numbers; see clustering.weeks). Only whole weeks count: those
   from the first Monday on or after the first incident's local date to the last Sunday on or
   before the last one's.
2. Test weeks are every `step_weeks`-th whole week that has `train_weeks` whole weeks before it
   and `test_weeks` whole weeks from it on; with `test_from` / `test_to` (local dates) only
   those starting on or after test_from and ending on or before test_to, counted from the first
   of them. Each method is trained on the incidents of the `train_weeks` weeks before the test
   week and forecasts the `test_weeks` weeks from it: never on a test week's own incidents.
3. Candidate (study) cells are the cells of the study area (centre inside the polygon) when one
   is given, else every cell where an incident of the whole data set (or of `study_points`, e.g.
   all categories when the points are one) fell; A is their number times the cell area, and
   test incidents outside them are not counted in N.
4. Grid methods flag their top cells by `flag_top_cells` at the coverage share. Methods (each
   scored by clustering.forecast.CellForecast, the forecast a run computes): naive (incident
   counts over the training window), blend (long- and short-window rates, `blend_short_weeks`,
   `blend_short_weight`), kde (kernel density at the cell centres), gistar (Gi* z-scores; a week
   where it raises TooFewIncidents is not evaluable for it), prospective (its own
   `prospective_weeks` of the training window), learned (clustering.learned: trained on the
   training window, retrained every `learned_retrain_weeks` test weeks and in between predicting
   with the last model from the newer weeks' features, which bounds the time of a long backtest)
   and random (a seeded random ranking, the baseline a method must beat).
5. dbscan flags polygons, not cells: clusters of the training incidents (clustering.dbscan) as
   `cluster_polygons`, ranked by incidents per km² (highest first, then cluster number). The first
   is always taken; each further one is taken if the summed polygon areas stay within
   coverage × A, so coverage is matched from below (the first polygon may exceed it alone). a is
   the area of the union of the taken polygons (clipped to the study polygon when given; without
   one it may include cells where no incident fell, which lowers the PAI), hits are the test
   incidents inside it, and n* for PEI* uses ceil(a / cell area) cells. A week without clusters
   is not evaluable for dbscan. The achieved share a / A is reported as `coverage`.
6. Per week and method the metrics are computed as above; a week without test incidents is not
   evaluable for any method. The summary averages each metric over the evaluable weeks of each
   method (the mean of weekly values, not a pooled ratio).

Two methods are compared on the same test weeks (`paired_difference`): the weekly differences in
PAI, their mean, and a percentile bootstrap interval of that mean resampling the weeks (pairs
kept together, so what makes a week easy or hard for both cancels out). An interval that
includes zero says the weeks are too few, or the counts too small, to tell the two apart.

Call sequence for `est evaluate` (and bench/evaluate_chicago.py):

    backtest = Backtest(train_weeks=12, test_weeks=1, coverage=0.05, cell_size_m=150)
    backtest.fit(xy_m, times, area=area_polygon_or_None, categories=codes_or_None)
    print(backtest.summary_)                          # method × hit_rate, pai, pei_star, ...
    results_table_csv(backtest.summary_, out / "summary.csv")
    results_table_csv(backtest.results_, out / "weeks.csv")
    backtest_chart(backtest.results_, out / "pai.png")  # both from app.reports.charts
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from clustering.cluster_polygons import cluster_polygons
from clustering.dbscan import DBSCAN
from clustering.forecast import CellForecast, ForecastMethod, neighbourhood_counts
from clustering.gistar import TooFewIncidents
from clustering.learned import LearnedForecast
from clustering.params import Estimator
from clustering.weeks import DEFAULT_TZ, local_day_of, local_days, week_label, week_start
from geo.grid import GridWindow, cell_index, cells_in_area
from geo.points import as_xy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

METHODS: tuple[str, ...] = (
    "naive",
    "blend",
    "kde",
    "gistar",
    "dbscan",
    "prospective",
    "learned",
    "random",
)
# Methods that flag polygons, not cells: their flagged area is not the coverage share.
POLYGON_METHODS: tuple[str, ...] = ("dbscan",)
LEARNED_MIN_HISTORY = 4  # the learned method's min_history_weeks
# Guards floor(coverage × cells) against products like 0.29 × 100 = 28.999999999999996.
_COUNT_GUARD = 1e-9
SUMMARY_COLUMNS = ("hit_rate", "pai", "pei_star", "coverage", "weeks_evaluated")
RESULT_COLUMNS = (
    "method",
    "week_start",
    "week",
    "evaluable",
    "note",
    "n_events",
    "n_hits",
    "flagged_cells",
    "flagged_area_m2",
    "coverage",
    "hit_rate",
    "pai",
    "pei_star",
)


# ---------------------------------------------------------------------------------------------
# Metrics


def hit_rate(n_hits: float, n_events: float) -> float:
    """Return n / N, the share of test incidents caught (NaN without test incidents)."""
    return float(n_hits) / float(n_events) if n_events > 0 else math.nan


def pai(n_hits: float, n_events: float, flagged_area_m2: float, study_area_m2: float) -> float:
    """Return the Prediction Accuracy Index (n / N) / (a / A) (NaN when N or a is zero)."""
    if n_events <= 0 or flagged_area_m2 <= 0 or study_area_m2 <= 0:
        return math.nan
    return (float(n_hits) / float(n_events)) / (float(flagged_area_m2) / float(study_area_m2))


def best_possible_hits(test_counts: Any, n_cells: int) -> float:
    """Return n*: the sum of the n_cells largest test counts, the most that many cells can catch."""
    counts = np.asarray(test_counts, dtype=np.float64).ravel()
    k = min(max(int(n_cells), 0), counts.size)
    if k == 0:
        return 0.0
    return float(np.partition(counts, counts.size - k)[counts.size - k :].sum())


def pei_star(n_hits: float, test_counts: Any, n_cells: int) -> float:
    """Return PEI* = n / n* for n_cells flagged cells (NaN when n* is zero)."""
    best = best_possible_hits(test_counts, n_cells)
    return float(n_hits) / best if best > 0 else math.nan


def flagged_cell_count(n_candidates: int, coverage: float) -> int:
    """Return how many cells a coverage share flags: floor(coverage × n), at least one."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must lie in (0, 1], got {coverage}")
    if n_candidates <= 0:
        return 0
    return max(1, math.floor(coverage * n_candidates + _COUNT_GUARD))


def flag_top_cells(
    scores: Any,
    candidate_mask: Any,
    coverage: float,
    cell_ids: tuple[Any, Any],
    secondary: Any = None,
) -> BoolArray:
    """Flag the top-scoring candidate cells covering the coverage share of the candidates.

    scores, candidate_mask, both arrays of cell_ids = (ix, iy) and secondary (if given) have one
    shape (a raster or a flat list of cells). The count is `flagged_cell_count`; NaN scores rank
    last; ties are broken by the secondary score (highest first), then by iy, then ix,
    ascending. Returns a boolean array of that shape.
    """
    s = np.asarray(scores, dtype=np.float64)
    mask = np.asarray(candidate_mask, dtype=bool)
    ix, iy = (np.asarray(a, dtype=np.int64) for a in cell_ids)
    second = np.zeros(s.shape) if secondary is None else np.asarray(secondary, dtype=np.float64)
    if not (s.shape == mask.shape == ix.shape == iy.shape == second.shape):
        raise ValueError("scores, candidate_mask, cell_ids and secondary must have one shape")
    flat = np.flatnonzero(mask.ravel())
    k = flagged_cell_count(flat.size, coverage)
    ranked = np.nan_to_num(s.ravel()[flat], nan=-np.inf)
    tiebreak = np.nan_to_num(second.ravel()[flat], nan=-np.inf)
    order = np.lexsort((ix.ravel()[flat], iy.ravel()[flat], -tiebreak, -ranked))
    flagged = np.zeros(s.size, dtype=bool)
    flagged[flat[order[:k]]] = True
    return flagged.reshape(s.shape)


# ---------------------------------------------------------------------------------------------
# Study cells and one test week


@dataclass(frozen=True)
class StudyCells:
    """The candidate cells of a backtest, sorted by (iy, ix), and a raster to find them fast."""

    cell_size_m: float
    ix: IntArray
    iy: IntArray
    window: GridWindow
    index: IntArray  # (ny, nx): position of each window cell in ix/iy, -1 if not a candidate
    area: shapely.Geometry | None

    @classmethod
    def build(cls, xy: FloatArray, cell_size_m: float, area: shapely.Geometry | None) -> StudyCells:
        """Return the cells of `area`, or without one every cell holding one of the points."""
        if area is not None:
            ix, iy = cells_in_area(area, cell_size_m)
        else:
            ix, iy = cell_index(xy[:, 0], xy[:, 1], cell_size_m)
        keys = np.unique(np.column_stack([iy, ix]), axis=0)  # sorted by iy, then ix
        if len(keys) == 0:
            raise ValueError("the study area holds no cell: no incidents, or an area too small")
        iy, ix = keys[:, 0].astype(np.int64), keys[:, 1].astype(np.int64)
        window = GridWindow.from_cells(ix, iy, cell_size_m)
        index = np.full(window.shape, -1, dtype=np.int64)
        index[iy - window.iy0, ix - window.ix0] = np.arange(len(ix))
        return cls(float(cell_size_m), ix, iy, window, index, area)

    @property
    def n_cells(self) -> int:
        """The number of candidate cells."""
        return int(self.ix.size)

    @property
    def area_m2(self) -> float:
        """A: the study area as the candidate cells' total area."""
        return self.n_cells * self.cell_size_m**2

    def locate(self, xy: FloatArray) -> IntArray:
        """Return each point's candidate-cell position, -1 outside the candidates."""
        ix, iy = cell_index(xy[:, 0], xy[:, 1], self.cell_size_m)
        col, row = ix - self.window.ix0, iy - self.window.iy0
        inside = (col >= 0) & (col < self.window.nx) & (row >= 0) & (row < self.window.ny)
        where = np.full(len(ix), -1, dtype=np.int64)
        where[inside] = self.index[row[inside], col[inside]]
        return where

    def counts(self, xy: FloatArray) -> FloatArray:
        """Return the number of points in each candidate cell."""
        where = self.locate(xy)
        return np.bincount(where[where >= 0], minlength=self.n_cells).astype(np.float64)


@dataclass(frozen=True)
class TrainingData:
    """The incidents a method may learn from for one test week."""

    xy: FloatArray
    week: IntArray
    forecast_week: int
    category: npt.NDArray[np.object_] | None = None


class NotEvaluable(Exception):
    """Raised by a method adapter when it cannot forecast a week; the message says why."""


# ---------------------------------------------------------------------------------------------
# The backtest


class Backtest(Estimator):
    """Rolling weekly backtest of hotspot methods on incidents (see the module docstring).

    Parameters: train_weeks, test_weeks and step_weeks (whole weeks); coverage, the share of the
    study cells flagged; cell_size_m, the grid of every method; tz, whose Mondays start the
    weeks; test_from and test_to, local dates bounding the test weeks (None: from the first
    week that has train_weeks before it, to the last whole week); methods, some of METHODS; then
    each method's own: blend_short_weeks and blend_short_weight, kde_bandwidth_m and kde_kernel,
    gistar_distance_band_m and gistar_min_incidents, dbscan_eps_m and dbscan_min_samples (None:
    `default_min_samples`), prospective_bandwidth_m and prospective_weeks,
    learned_max_leaf_nodes and learned_retrain_weeks; seed, for random and learned.

    Learned by `fit`: results_ (one row per method and test week, columns RESULT_COLUMNS),
    summary_ (index method, columns SUMMARY_COLUMNS), study_cells_ (StudyCells) and
    test_weeks_ (the week numbers tested).
    """

    results_: pd.DataFrame
    summary_: pd.DataFrame
    study_cells_: StudyCells
    test_weeks_: list[int]

    def __init__(
        self,
        *,
        train_weeks: int = 12,
        test_weeks: int = 1,
        coverage: float = 0.05,
        cell_size_m: float = 150.0,
        step_weeks: int = 1,
        tz: str = DEFAULT_TZ,
        test_from: Any = None,
        test_to: Any = None,
        methods: Sequence[str] = METHODS,
        blend_short_weeks: int = 4,
        blend_short_weight: float = 0.5,
        kde_bandwidth_m: float = 400.0,
        kde_kernel: Literal["gaussian", "quartic"] = "quartic",
        gistar_distance_band_m: float = 400.0,
        gistar_min_incidents: int = 30,
        dbscan_eps_m: float = 150.0,
        dbscan_min_samples: int | None = None,
        prospective_bandwidth_m: float = 400.0,
        prospective_weeks: int = 8,
        learned_max_leaf_nodes: int = 15,
        learned_retrain_weeks: int = 4,
        seed: int = 0,
    ) -> None:
        self.train_weeks = train_weeks
        self.test_weeks = test_weeks
        self.coverage = coverage
        self.cell_size_m = cell_size_m
        self.step_weeks = step_weeks
        self.tz = tz
        self.test_from = test_from
        self.test_to = test_to
        self.methods = methods
        self.blend_short_weeks = blend_short_weeks
        self.blend_short_weight = blend_short_weight
        self.kde_bandwidth_m = kde_bandwidth_m
        self.kde_kernel = kde_kernel
        self.gistar_distance_band_m = gistar_distance_band_m
        self.gistar_min_incidents = gistar_min_incidents
        self.dbscan_eps_m = dbscan_eps_m
        self.dbscan_min_samples = dbscan_min_samples
        self.prospective_bandwidth_m = prospective_bandwidth_m
        self.prospective_weeks = prospective_weeks
        self.learned_max_leaf_nodes = learned_max_leaf_nodes
        self.learned_retrain_weeks = learned_retrain_weeks
        self.seed = seed

    def fit(
        self,
        points: Any,
        times: Any,
        area: shapely.Geometry | None = None,
        categories: Any = None,
        study_points: Any = None,
    ) -> Backtest:
        """Run the backtest on points (metres) with their times (and category codes, which the
        learned method uses); return self.

        Without an area the study cells are those of `study_points`, by default the points
        themselves. Give them when the points are a subset (one category): otherwise a cell
        whose only incident falls in a test week is a study cell only because of that incident.
        """
        self._check_params()
        xy = as_xy(points)
        days = local_days(times, self.tz)
        if days.shape != (len(xy),):
            raise ValueError(f"times must have {len(xy)} values, got {days.size}")
        if len(xy) == 0:
            raise ValueError("cannot backtest without incidents")
        cats = None if categories is None else np.asarray(categories, dtype=object)
        if cats is not None and cats.shape != (len(xy),):
            raise ValueError(f"categories must have {len(xy)} values, got {cats.size}")
        week = days // 7
        test_weeks = self._test_weeks(int(days.min()), int(days.max()))
        cells_from = xy if study_points is None else as_xy(study_points)
        study = StudyCells.build(cells_from, float(self.cell_size_m), area)
        where = study.locate(xy)
        self._learned: tuple[int, LearnedForecast] | None = None
        rows: list[dict[str, Any]] = []
        for w in test_weeks:
            train_mask = (week >= w - self.train_weeks) & (week < w)
            test_mask = (week >= w) & (week < w + self.test_weeks) & (where >= 0)
            train = TrainingData(
                xy[train_mask], week[train_mask], w, None if cats is None else cats[train_mask]
            )
            test_xy = xy[test_mask]
            test_counts = np.bincount(where[test_mask], minlength=study.n_cells).astype(float)
            tiebreak = neighbourhood_counts(train.xy, study.ix, study.iy, study.cell_size_m, 1)
            for method in self.methods:
                rows.append(self._score_week(method, train, test_xy, test_counts, study, tiebreak))
        self.results_ = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        self.summary_ = summarise(self.results_, self.methods)
        self.study_cells_ = study
        self.test_weeks_ = test_weeks
        return self

    def _test_weeks(self, first_day: int, last_day: int) -> list[int]:
        """The test weeks of the protocol (step 2 of the module docstring)."""
        first_full = -(-first_day // 7)  # the first Monday on or after the first day
        last_full = (last_day + 1) // 7 - 1  # the last week whose Sunday has data
        start = first_full + self.train_weeks
        stop = last_full - self.test_weeks + 1  # the last test week that fits
        if self.test_from is not None:
            start = max(start, -(-local_day_of(self.test_from, self.tz) // 7))
        if self.test_to is not None:
            stop = min(stop, local_day_of(self.test_to, self.tz) // 7 - self.test_weeks)
        test_weeks = list(range(start, stop + 1, self.step_weeks))
        if not test_weeks:
            span = max(last_full - first_full + 1, 0)
            asked = ""
            if self.test_from is not None or self.test_to is not None:
                between = f"{self.test_from or 'the start'} and {self.test_to or 'the end'}"
                asked = f" and a test week between {between}"
            raise ValueError(
                f"the data span {span} whole weeks; the backtest needs train_weeks + test_weeks "
                f"= {self.train_weeks + self.test_weeks}{asked}"
            )
        return test_weeks

    def _score_week(
        self,
        method: str,
        train: TrainingData,
        test_xy: FloatArray,
        test_counts: FloatArray,
        study: StudyCells,
        tiebreak: FloatArray,
    ) -> dict[str, Any]:
        """Return one results row: a method's forecast for one week, scored."""
        week = train.forecast_week
        row: dict[str, Any] = {
            "method": method,
            "week_start": week_start(week),
            "week": week_label(week),
            "n_events": int(test_counts.sum()),
        }
        if row["n_events"] == 0:
            return _not_evaluable(row, "no test incidents")
        try:
            if method == "dbscan":
                polygons = dbscan_hotspots(self, train, study)
                return row | score_polygons(polygons, test_xy, test_counts, study, self.coverage)
            scores = GRID_METHODS[method](self, train, study)
        except NotEvaluable as why:
            return _not_evaluable(row, str(why))
        flagged = flag_top_cells(
            scores,
            np.ones(study.n_cells, dtype=bool),
            self.coverage,
            (study.ix, study.iy),
            secondary=tiebreak,
        )
        return row | score_cells(flagged, test_counts, study)

    def _check_params(self) -> None:
        whole = ("train_weeks", "test_weeks", "step_weeks", "prospective_weeks")
        for name in (*whole, "blend_short_weeks", "learned_retrain_weeks"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0.0 < self.coverage <= 1.0:
            raise ValueError(f"coverage must lie in (0, 1], got {self.coverage}")
        if "prospective" in self.methods and self.prospective_weeks > self.train_weeks:
            raise ValueError("prospective_weeks must not exceed train_weeks: it learns from those")
        if "learned" in self.methods and self.train_weeks < LEARNED_MIN_HISTORY + self.test_weeks:
            raise ValueError(
                f"the learned method needs train_weeks >= {LEARNED_MIN_HISTORY} + test_weeks: "
                "it learns from weeks that have weeks of history before them"
            )
        unknown = [m for m in self.methods if m != "dbscan" and m not in GRID_METHODS]
        if unknown or not self.methods:
            raise ValueError(f"unknown methods {unknown}; use some of {', '.join(METHODS)}")


def _not_evaluable(row: dict[str, Any], note: str) -> dict[str, Any]:
    """Return the row of a week a method could not forecast."""
    nothing = {"n_hits": 0, "flagged_cells": 0, "flagged_area_m2": 0.0}
    undefined = dict.fromkeys(("coverage", "hit_rate", "pai", "pei_star"), math.nan)
    return row | {"evaluable": False, "note": note} | nothing | undefined


def score_cells(flagged: BoolArray, test_counts: FloatArray, study: StudyCells) -> dict[str, Any]:
    """Return the metrics of a set of flagged candidate cells against the test counts."""
    n_events = float(test_counts.sum())
    n_hits = float(test_counts[flagged].sum())
    k = int(flagged.sum())
    flagged_area = k * study.cell_size_m**2
    return {
        "evaluable": True,
        "note": "",
        "n_hits": int(n_hits),
        "flagged_cells": k,
        "flagged_area_m2": flagged_area,
        "coverage": flagged_area / study.area_m2,
        "hit_rate": hit_rate(n_hits, n_events),
        "pai": pai(n_hits, n_events, flagged_area, study.area_m2),
        "pei_star": pei_star(n_hits, test_counts, k),
    }


def score_polygons(
    polygons: gpd.GeoDataFrame,
    test_xy: FloatArray,
    test_counts: FloatArray,
    study: StudyCells,
    coverage: float,
) -> dict[str, Any]:
    """Return the metrics of hotspot polygons (ranked, taken up to the coverage budget)."""
    taken = select_polygons(polygons, coverage * study.area_m2)
    union = shapely.union_all(taken)
    if study.area is not None:
        union = shapely.intersection(union, study.area)
    flagged_area = float(shapely.area(union))
    n_events = float(test_counts.sum())
    n_hits = float(np.count_nonzero(shapely.intersects_xy(union, test_xy[:, 0], test_xy[:, 1])))
    # The polygons are not made of cells: n* uses the whole cells needed to cover their area.
    k = math.ceil(flagged_area / study.cell_size_m**2 - _COUNT_GUARD)
    return {
        "evaluable": True,
        "note": f"{len(taken)} of {len(polygons)} clusters",
        "n_hits": int(n_hits),
        "flagged_cells": k,
        "flagged_area_m2": flagged_area,
        "coverage": flagged_area / study.area_m2,
        "hit_rate": hit_rate(n_hits, n_events),
        "pai": pai(n_hits, n_events, flagged_area, study.area_m2),
        "pei_star": pei_star(n_hits, test_counts, k),
    }


def select_polygons(polygons: gpd.GeoDataFrame, budget_m2: float) -> npt.NDArray[np.object_]:
    """Return the polygons flagged within an area budget, densest first.

    Ranked by density_per_km2 (highest first, then cluster number); the first is always taken,
    each further one when the summed areas stay within budget_m2.
    """
    order = np.lexsort((polygons["cluster"].to_numpy(), -polygons["density_per_km2"].to_numpy()))
    geometries = polygons.geometry.to_numpy()[order]
    areas = np.asarray(shapely.area(geometries), dtype=np.float64)
    taken = [0] if len(order) else []
    used = float(areas[0]) if len(order) else 0.0
    for i in range(1, len(order)):
        if used + areas[i] <= budget_m2:
            taken.append(i)
            used += float(areas[i])
    return np.asarray(geometries[taken], dtype=object)


def summarise(results: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Return per method the mean hit rate, PAI, PEI* and coverage over its evaluable weeks."""
    evaluable = results[results["evaluable"].astype(bool)]
    means = evaluable.groupby("method")[["hit_rate", "pai", "pei_star", "coverage"]].mean()
    counts = evaluable.groupby("method").size()
    summary = means.reindex(list(methods))
    summary["weeks_evaluated"] = counts.reindex(list(methods)).fillna(0).astype(np.int64)
    summary.index.name = "method"
    return summary[list(SUMMARY_COLUMNS)]


# ---------------------------------------------------------------------------------------------
# Comparing two methods on the same weeks


@dataclass(frozen=True)
class PairedDifference:
    """The mean weekly difference of two methods and its bootstrap interval."""

    mean: float
    low: float
    high: float
    n_weeks: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below zero (NaN intervals do not)."""
        return bool(self.low > 0 or self.high < 0)


def paired_bootstrap(
    a: Any, b: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> PairedDifference:
    """Return the mean of a - b over paired weeks with its percentile bootstrap interval.

    Pairs where either value is NaN are left out. Each of the n_resamples draws picks as many
    weeks as there are, with replacement, pairs kept together; the interval holds the central
    `confidence` share of the draws' means. Without pairs everything is NaN.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("a and b must have one value per week each")
    d = (x - y)[np.isfinite(x) & np.isfinite(y)]
    if d.size == 0:
        return PairedDifference(math.nan, math.nan, math.nan, 0, confidence)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(int(n_resamples), d.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedDifference(float(d.mean()), float(low), float(high), int(d.size), confidence)


def paired_difference(
    results: pd.DataFrame,
    method: str,
    baseline: str,
    metric: str = "pai",
    **bootstrap: Any,
) -> PairedDifference:
    """Return `paired_bootstrap` of method minus baseline over the weeks both were evaluated on
    (results as Backtest.results_, methods by their `method` value)."""
    if results.empty:
        return paired_bootstrap([], [], **bootstrap)
    evaluable = results[results["evaluable"].astype(bool)]
    weekly = evaluable.pivot_table(index="week_start", columns="method", values=metric)
    if method not in weekly or baseline not in weekly:
        return paired_bootstrap([], [], **bootstrap)
    return paired_bootstrap(weekly[method], weekly[baseline], **bootstrap)


# ---------------------------------------------------------------------------------------------
# Method adapters: one small function each, so a change in a method's API is fixed in one place.


def cell_forecast(bt: Backtest, method: ForecastMethod, weeks: int) -> CellForecast:
    """The forecast a grid method makes in the backtest, at the backtest's parameters."""
    band = bt.prospective_bandwidth_m if method == "prospective" else bt.kde_bandwidth_m
    return CellForecast(
        method=method,
        cell_size_m=bt.cell_size_m,
        weeks=weeks,
        bandwidth_m=band,
        kernel=bt.kde_kernel,
        distance_band_m=bt.gistar_distance_band_m,
        min_incidents=bt.gistar_min_incidents,
        short_weeks=bt.blend_short_weeks,
        short_weight=bt.blend_short_weight,
        max_leaf_nodes=bt.learned_max_leaf_nodes,
        seed=bt.seed,
    )


def forecast_scores(
    bt: Backtest, train: TrainingData, study: StudyCells, method: ForecastMethod
) -> FloatArray:
    """A method's risk of the study cells for the test week (not evaluable without training)."""
    if len(train.xy) == 0:
        raise NotEvaluable("no training incidents")
    weeks = bt.prospective_weeks if method == "prospective" else bt.train_weeks
    model = cell_forecast(bt, method, weeks)
    try:
        model.fit(
            train.xy,
            train.week,
            train.forecast_week,
            cells=(study.ix, study.iy),
            area=study.area,
            categories=train.category,
        )
    except TooFewIncidents as error:
        raise NotEvaluable(str(error)) from error
    return model.risk_


def learned_scores(bt: Backtest, train: TrainingData, study: StudyCells) -> FloatArray:
    """The learned forecast, retrained every learned_retrain_weeks test weeks (see step 4)."""
    if len(train.xy) == 0:
        raise NotEvaluable("no training incidents")
    cells, week = (study.ix, study.iy), train.forecast_week
    last = bt._learned
    if last is None or week - last[0] >= bt.learned_retrain_weeks:
        model = LearnedForecast(
            cell_size_m=bt.cell_size_m,
            weeks=bt.train_weeks,
            horizon_weeks=bt.test_weeks,
            max_leaf_nodes=bt.learned_max_leaf_nodes,
            seed=bt.seed,
        )
        model.fit(train.xy, train.week, week, cells=cells, categories=train.category)
        bt._learned = last = (week, model)
    return last[1].predict(train.xy, train.week, week, cells=cells, categories=train.category)


def random_scores(bt: Backtest, train: TrainingData, study: StudyCells) -> FloatArray:
    """A random ranking, seeded by the seed and the week: the baseline to beat."""
    rng = np.random.default_rng([int(bt.seed), int(train.forecast_week) & 0x7FFFFFFF])
    return rng.random(study.n_cells)


def dbscan_hotspots(bt: Backtest, train: TrainingData, study: StudyCells) -> gpd.GeoDataFrame:
    """DBSCAN clusters of the training incidents as hotspot polygons."""
    eps_m = float(bt.dbscan_eps_m)
    min_samples = bt.dbscan_min_samples or default_min_samples(len(train.xy), eps_m, study.area_m2)
    model = DBSCAN(eps_m=eps_m, min_samples=min_samples)
    labels = model.fit(train.xy).labels_ if len(train.xy) else None
    if labels is None or labels.max(initial=-1) < 0:
        raise NotEvaluable(f"no clusters (min_samples {min_samples})")
    return cluster_polygons(train.xy, labels, eps_m=eps_m)


def default_min_samples(n_incidents: int, eps_m: float, study_area_m2: float) -> int:
    """Return DBSCAN's min_samples when none is given: 5 × the incidents an eps-disc holds on
    average (incidents spread evenly over the study area), at least 5."""
    expected = n_incidents * math.pi * eps_m**2 / study_area_m2
    return max(5, math.ceil(5.0 * expected))


GridMethod = Callable[[Backtest, TrainingData, StudyCells], FloatArray]
GRID_METHODS: dict[str, GridMethod] = {
    "naive": partial(forecast_scores, method="naive"),
    "blend": partial(forecast_scores, method="blend"),
    "kde": partial(forecast_scores, method="kde"),
    "gistar": partial(forecast_scores, method="gistar"),
    "prospective": partial(forecast_scores, method="prospective"),
    "learned": learned_scores,
    "random": random_scores,
}

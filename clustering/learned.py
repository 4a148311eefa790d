"""A learned forecast: a Poisson gradient-boosting model of next week's count per cell.

The model learns from the past only. Given the incidents of the `weeks` whole weeks before a
forecast week, every one of those weeks t that has at least `min_history_weeks` weeks before it
(and `horizon_weeks` weeks from it inside the data) is a training target: per cell, the
incidents of weeks t … t + horizon_weeks - 1, with features from the weeks before t only. The
forecast is the model's prediction for the forecast week, with features from all the weeks.

Features per cell and target week, from the h weeks of history before it:

- weekly rates over the last 1, 4, 12, 26 and 52 weeks (those shorter than `weeks`) and over all
  the weeks (a window longer than the history so far is the rate over the history, so early
  targets stay on the same scale), in the cell, its 3 × 3 block and its 5 × 5 block (one and two
  rings);
- near-repeat terms: sum over the last 8 weeks of count / k for the week k weeks back (the time
  weight of prospective hotspotting), in the cell and both rings;
- the category mix: the cell's share of incidents in each of the three commonest categories of
  the training incidents (when categories are given);
- the level of the whole area: its mean weekly rate per cell over the last 1 and 4 weeks, and h;
- the season (sine and cosine of the ISO week of the target) only when the training targets
  span a year, as a model cannot learn a season from less.

The model is scikit-learn's HistGradientBoostingRegressor with Poisson loss (100 iterations,
learning rate 0.1, `max_leaf_nodes`, at least MIN_SAMPLES_LEAF cell-weeks a leaf, no early
stopping, so no random validation split). When there are more than `max_rows` cell-weeks, all
those with incidents are kept and a seeded random sample of the others, weighted by the inverse
of its sampling share: the weighted Poisson loss stays an unbiased estimate of the full one,
and the time is bounded. It fits and predicts on one thread: runs are parallel over areas
already, and on a busy two-core machine OpenMP's two threads made a fit of 7,000 cell-weeks
take 0.6 to 1.9 s against 0.1 s on one. Deterministic for a seed. Without a single incident
among the targets there is nothing to learn: the forecast is then the cell's weekly rate over
the weeks (`fallback_` says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.ndimage

from clustering.params import Estimator
from clustering.weeks import week_start
from geo.grid import GridWindow, cell_index
from geo.points import as_xy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

WINDOWS_WEEKS = (1, 4, 12, 26, 52)
RINGS = (0, 1, 2)
NEAR_REPEAT_WEEKS = 8
TOP_CATEGORIES = 3
SEASON_WEEKS = 52  # training targets spanning this many weeks add the season features
# Leaves hold at least this many cell-weeks: most hold no incident, and a leaf of a few busy
# cell-weeks learns their noise (on Chicago's first half-year, 20 lost to naive counts).
MIN_SAMPLES_LEAF = 200


class LearnedForecast(Estimator):
    """Poisson gradient boosting on past counts per cell (see the module docstring).

    Parameters: cell_size_m, the grid; weeks, the whole weeks before the forecast week it learns
    from; horizon_weeks, the weeks a forecast covers; min_history_weeks, the fewest weeks of
    history a training target needs; max_leaf_nodes, max_iter and learning_rate of the model;
    max_rows, the most cell-weeks it trains on; seed.

    Learned by `fit`: model_ (the regressor, None when it fell back), feature_names_,
    categories_ (the commonest categories used as features), seasonal_, n_rows_ (cell-weeks
    trained on), fallback_ (why there is no model, or "").
    """

    feature_names_: list[str]
    categories_: list[str]
    seasonal_: bool
    n_rows_: int
    fallback_: str

    def __init__(
        self,
        *,
        cell_size_m: float = 150.0,
        weeks: int = 12,
        horizon_weeks: int = 1,
        min_history_weeks: int = 4,
        max_leaf_nodes: int = 15,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_rows: int = 100_000,
        seed: int = 0,
    ) -> None:
        self.cell_size_m = cell_size_m
        self.weeks = weeks
        self.horizon_weeks = horizon_weeks
        self.min_history_weeks = min_history_weeks
        self.max_leaf_nodes = max_leaf_nodes
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_rows = max_rows
        self.seed = seed

    def fit(
        self,
        points: Any,
        week: Any,
        forecast_week: int,
        *,
        cells: tuple[Any, Any],
        categories: Any = None,
    ) -> LearnedForecast:
        """Train on the weeks before forecast_week (points in metres, integer week numbers)."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        weeks, horizon, first = self._checked_params()
        history = self._history(points, week, forecast_week, cells, categories, fit=True)
        targets = list(range(first, weeks - horizon + 1))
        self.seasonal_ = len(targets) >= SEASON_WEEKS
        self.feature_names_ = history.feature_names(self.seasonal_)
        features = np.concatenate([history.features(t, self.seasonal_) for t in targets])
        counts = np.concatenate([history.target(t, horizon) for t in targets])
        rng = np.random.default_rng([int(self.seed), int(forecast_week) & 0x7FFFFFFF])
        features, counts, weights = _sample(features, counts, int(self.max_rows), rng)
        self.n_rows_ = len(counts)
        self.model_: Any = None
        self.fallback_ = ""
        if counts.sum() <= 0:
            self.fallback_ = "no incident in the training targets: the weekly rate is used"
            return self
        model = HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=int(self.max_iter),
            learning_rate=float(self.learning_rate),
            max_leaf_nodes=int(self.max_leaf_nodes),
            min_samples_leaf=MIN_SAMPLES_LEAF,
            early_stopping=False,
            random_state=int(self.seed),
        )
        with threadpool_limits(1, user_api="openmp"):  # see the module docstring
            self.model_ = model.fit(features, counts, sample_weight=weights)
        return self

    def predict(
        self,
        points: Any,
        week: Any,
        forecast_week: int,
        *,
        cells: tuple[Any, Any],
        categories: Any = None,
    ) -> FloatArray:
        """Return the expected count of each cell in the `horizon_weeks` from forecast_week."""
        weeks, _, _ = self._checked_params()
        history = self._history(points, week, forecast_week, cells, categories, fit=False)
        if self.model_ is None:
            return history.rate(weeks, weeks, ring=0)
        from threadpoolctl import threadpool_limits

        features = history.features(weeks, self.seasonal_)
        with threadpool_limits(1, user_api="openmp"):
            return np.asarray(self.model_.predict(features), dtype=np.float64)

    def features(
        self,
        points: Any,
        week: Any,
        forecast_week: int,
        *,
        cells: tuple[Any, Any],
        categories: Any = None,
    ) -> pd.DataFrame:
        """Return the features of each cell for forecast_week (one row a cell, columns
        feature_names_): what the model sees, for a reader who wants to know why."""
        weeks, _, _ = self._checked_params()
        history = self._history(points, week, forecast_week, cells, categories, fit=False)
        return pd.DataFrame(history.features(weeks, self.seasonal_), columns=self.feature_names_)

    def _history(
        self,
        points: Any,
        week: Any,
        forecast_week: int,
        cells: tuple[Any, Any],
        categories: Any,
        *,
        fit: bool,
    ) -> _History:
        xy = as_xy(points)
        week_arr = np.asarray(week, dtype=np.int64)
        if week_arr.shape != (len(xy),):
            raise ValueError(f"week must have shape ({len(xy)},), got {week_arr.shape}")
        cats = None if categories is None else np.asarray(categories, dtype=object)
        if fit:
            self.categories_ = commonest(cats, week_arr, forecast_week, int(self.weeks))
        c = float(self.cell_size_m)
        fw, weeks = int(forecast_week), int(self.weeks)
        return _History.build(xy, week_arr, cats, fw, weeks, cells, c, self.categories_)

    def _checked_params(self) -> tuple[int, int, int]:
        for name in ("weeks", "horizon_weeks", "min_history_weeks", "max_iter", "max_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        weeks, horizon = int(self.weeks), int(self.horizon_weeks)
        first = int(self.min_history_weeks)
        if weeks < first + horizon:
            raise ValueError(
                f"the learned forecast needs weeks >= min_history_weeks + horizon_weeks = "
                f"{first + horizon}, got {weeks}"
            )
        return weeks, horizon, first


def commonest(
    categories: npt.NDArray[np.object_] | None, week: IntArray, forecast_week: int, weeks: int
) -> list[str]:
    """Return the TOP_CATEGORIES commonest non-empty categories of the weeks (ties by code)."""
    if categories is None:
        return []
    used = (week >= forecast_week - weeks) & (week < forecast_week)
    codes, counts = np.unique(categories[used].astype(str), return_counts=True)
    found = [(int(n), str(c)) for c, n in zip(codes, counts, strict=True) if c]
    ranked = sorted(found, key=lambda p: (-p[0], p[1]))
    return [code for _, code in ranked[:TOP_CATEGORIES]]


@dataclass(frozen=True)
class _History:
    """Weekly counts of the weeks before a forecast week at the cells, as prefix sums.

    prefix[ring][k] holds, per cell, the incidents of the first k weeks (week 0 is the oldest)
    in the cell's ring-block; weekly[ring][k] those of week k alone; by_category[j] is the
    prefix at ring 0 of categories_[j].
    """

    first_week: int
    n_weeks: int
    weekly: dict[int, FloatArray]  # ring -> (n_weeks, n_cells)
    prefix: dict[int, FloatArray]  # ring -> (n_weeks + 1, n_cells)
    by_category: list[FloatArray]
    windows: tuple[int, ...]

    @classmethod
    def build(
        cls,
        xy: FloatArray,
        week: IntArray,
        categories: npt.NDArray[np.object_] | None,
        forecast_week: int,
        weeks: int,
        cells: tuple[Any, Any],
        cell_size_m: float,
        top: list[str],
    ) -> _History:
        ix, iy = (np.asarray(c, dtype=np.int64) for c in cells)
        if len(ix) == 0:
            raise ValueError("the learned forecast needs at least one cell")
        first = forecast_week - weeks
        used = (week >= first) & (week < forecast_week)
        reach = max(RINGS)
        window = GridWindow.from_cells(ix, iy, cell_size_m, pad_cells=reach)
        cube = _cube(xy[used], week[used] - first, weeks, window)
        col, row = ix - window.ix0, iy - window.iy0
        weekly: dict[int, FloatArray] = {}
        for ring in RINGS:
            block = cube
            if ring:
                size = 2 * ring + 1
                block = scipy.ndimage.correlate(
                    cube, np.ones((1, size, size)), mode="constant", cval=0.0
                )
            weekly[ring] = block[:, row, col]
        prefix = {ring: _prefix(w) for ring, w in weekly.items()}
        if top and categories is None:
            raise ValueError("the model learned from categories: give them to predict too")
        by_category = []
        for code in top:
            assert categories is not None
            mine = used & (categories.astype(str) == code)
            counts = _cube(xy[mine], week[mine] - first, weeks, window)[:, row, col]
            by_category.append(_prefix(counts))
        windows = tuple(sorted({w for w in WINDOWS_WEEKS if w < weeks} | {weeks}))
        return cls(first, weeks, weekly, prefix, by_category, windows)

    def rate(self, t: int, window: int, ring: int) -> FloatArray:
        """Weekly rate per cell over the last `window` weeks before week t (fewer if t is less)."""
        span = min(window, t)
        if span <= 0:
            return np.zeros(self.prefix[ring].shape[1])
        p = self.prefix[ring]
        return (p[t] - p[t - span]) / span

    def target(self, t: int, horizon: int) -> FloatArray:
        """The incidents per cell in weeks t … t + horizon - 1."""
        p = self.prefix[0]
        return p[t + horizon] - p[t]

    def feature_names(self, seasonal: bool) -> list[str]:
        """The names of the columns `features` returns."""
        names = [f"rate_{w}w_ring{r}" for r in RINGS for w in self.windows]
        names += [f"near_repeat_ring{r}" for r in RINGS]
        names += [f"share_category_{j}" for j in range(len(self.by_category))]
        names += ["area_rate_1w", "area_rate_4w", "history_weeks"]
        if seasonal:
            names += ["season_sin", "season_cos"]
        return names

    def features(self, t: int, seasonal: bool) -> FloatArray:
        """The features of every cell for target week t, from weeks 0 … t - 1 only."""
        columns = [self.rate(t, w, r) for r in RINGS for w in self.windows]
        for ring in RINGS:
            back = range(1, min(NEAR_REPEAT_WEEKS, t) + 1)
            near = sum((self.weekly[ring][t - k] / k for k in back), np.zeros(self.n_cells))
            columns.append(near)
        total = self.prefix[0][t] - self.prefix[0][0]
        for p in self.by_category:
            columns.append(np.divide(p[t] - p[0], total, out=np.zeros_like(total), where=total > 0))
        columns.append(np.full(self.n_cells, self.rate(t, 1, 0).mean()))
        columns.append(np.full(self.n_cells, self.rate(t, 4, 0).mean()))
        columns.append(np.full(self.n_cells, float(t)))
        if seasonal:
            iso_week = week_start(self.first_week + t).isocalendar()[1]
            angle = 2.0 * math.pi * iso_week / 52.1775
            columns.append(np.full(self.n_cells, math.sin(angle)))
            columns.append(np.full(self.n_cells, math.cos(angle)))
        return np.column_stack(columns)

    @property
    def n_cells(self) -> int:
        """The number of cells."""
        return int(self.prefix[0].shape[1])


def _sample(
    features: FloatArray, counts: FloatArray, max_rows: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Keep every cell-week with incidents and a random sample of the others, weighted so that
    the sample stands for all of them (at most max_rows rows, unless the busy ones are more)."""
    busy = counts > 0
    quiet = np.flatnonzero(~busy)
    room = max(max_rows - int(busy.sum()), 0)
    if len(counts) <= max_rows or room >= len(quiet):
        return features, counts, np.ones(len(counts))
    kept = rng.choice(quiet, size=room, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(busy), kept]))
    weights = np.where(busy[rows], 1.0, len(quiet) / max(room, 1))
    return features[rows], counts[rows], weights


def _cube(xy: FloatArray, offset: IntArray, weeks: int, window: GridWindow) -> FloatArray:
    """Return a (weeks, ny, nx) raster of the points per week offset and cell of the window."""
    ix, iy = cell_index(xy[:, 0], xy[:, 1], window.cell_size_m)
    col, row = ix - window.ix0, iy - window.iy0
    keep = (col >= 0) & (col < window.nx) & (row >= 0) & (row < window.ny)
    flat = (offset[keep] * window.ny + row[keep]) * window.nx + col[keep]
    cube = np.bincount(flat, minlength=weeks * window.ny * window.nx)
    return cube.astype(np.float64).reshape(weeks, window.ny, window.nx)


def _prefix(weekly: FloatArray) -> FloatArray:
    """Prefix sums over weeks: row k is the sum of weeks 0 … k - 1 (row 0 is zero)."""
    out = np.zeros((weekly.shape[0] + 1, weekly.shape[1]))
    np.cumsum(weekly, axis=0, out=out[1:])
    return out

"""Emerging hot spots: space-time Gi* per ISO week, Mann–Kendall trend per cell, ArcGIS patterns.

This follows ArcGIS Pro's Emerging Hot Spot Analysis with fixed-distance neighbours and its default
global window ("Entire cube"). The space-time cube holds the incident counts per (week, study
cell), empty cells included. Bin (t, i) is tested with the Getis-Ord Gi* statistic

    z = (sum_b x_b - X̄ W) / (S · sqrt((n W - W²) / (n - 1)))

over its space-time neighbourhood: the study cells j whose centre lies within `distance_band_m`
of cell i's (i itself included), each taken in step t and in the `neighbourhood_time_step`
previous steps, with binary weights; W is the number of such bins. That is ArcGIS's rule: bins
within the neighbourhood distance, plus the bins at those locations in the previous N time steps.
The first steps of the window have fewer previous steps to draw on, so their neighbourhoods are
smaller (nothing before the window is read, as ArcGIS reads nothing before the cube).
n, X̄ and S (population standard deviation) are taken over all n = steps × cells bins of the
cube: ArcGIS's "Entire cube" global window compares every bin with all bins. Written out, this is
`esda.G_Local(y, w, transform="B", star=True).Zs` on the cube flattened to (step, cell) with a
libpysal W holding those space-time neighbours (tests compare the two to 1e-6).

p-values are two-sided normal. The false-discovery-rate correction (Benjamini–Hochberg, as in
GiStar) is applied per time step over that step's study cells: each week's map is one family of
tests, the same family GiStar corrects on a single slice, and a week's significance does not then
depend on how many other weeks the window holds. A bin is a hot (cold) spot when its z is
positive (negative) and its p-value, adjusted or not as `fdr` says, is at most `alpha`.

The trend per cell is a Mann–Kendall test on its series of Gi* z-scores, as ArcGIS applies it for
the hot and cold spot trend: upward means clustering of high counts intensifies (or of low counts
weakens). Each cell is then given one of ArcGIS's 17 patterns by `classify`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.ndimage
import shapely
from scipy.special import ndtr

from clustering.fdr import benjamini_hochberg
from clustering.gistar import TooFewIncidents, confidence_bins, disc_footprint
from clustering.params import Estimator
from clustering.weeks import DEFAULT_TZ, week_numbers, week_starts
from geo.grid import GridWindow, cell_polygons
from geo.points import as_weights, as_xy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

HOT_PATTERNS: tuple[str, ...] = (
    "new_hot",
    "consecutive_hot",
    "intensifying_hot",
    "persistent_hot",
    "diminishing_hot",
    "sporadic_hot",
    "oscillating_hot",
    "historical_hot",
)
COLD_PATTERNS: tuple[str, ...] = tuple(name.replace("_hot", "_cold") for name in HOT_PATTERNS)
NO_PATTERN = "no_pattern"
PATTERNS: tuple[str, ...] = (*HOT_PATTERNS, *COLD_PATTERNS, NO_PATTERN)

# z-scores that differ only by float round-off are ties for the trend test, not a rise or a fall.
_Z_DECIMALS = 9


class MannKendall(NamedTuple):
    """A Mann–Kendall trend test: S, its tie-corrected variance, the normal z and two-sided p."""

    s: FloatArray
    var_s: FloatArray
    z: FloatArray
    p: FloatArray


def mann_kendall(series: Any) -> MannKendall:
    """Return the Mann–Kendall test of each series along axis 0 (time first: (steps, ...)).

    S = sum over i < j of sign(x_j - x_i); Var(S) = (n(n-1)(2n+5) - sum_g t_g(t_g-1)(2t_g+5)) / 18
    over the groups g of t_g tied values; z = (S - 1) / sqrt(Var S) for S > 0, (S + 1) / sqrt(Var S)
    for S < 0 and 0 for S = 0 (continuity correction), or 0 when Var(S) is 0 (fewer than two
    distinct values); p = 2 (1 - Φ(|z|)).
    """
    # Row-major, so that each step is one contiguous row: a column-major slice of a masked cube
    # makes the comparisons below 3× slower.
    x = np.ascontiguousarray(series, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("mann_kendall needs a series (time along axis 0), got a scalar")
    if not np.isfinite(x).all():
        raise ValueError("mann_kendall needs finite values")
    n = x.shape[0]
    s = np.zeros(x.shape[1:])
    # tied[k] counts the values equal to x[k], itself included: the size of its tie group.
    tied = np.ones(x.shape)
    for i in range(n - 1):
        later = x[i + 1 :]
        above = (later > x[i]).sum(axis=0)
        equal = later == x[i]
        ties = equal.sum(axis=0)
        # above - below, with below = the later values neither above nor tied: 4× faster than
        # summing np.sign of the differences.
        s += 2 * above + ties - (n - 1 - i)
        tied[i] += ties
        tied[i + 1 :] += equal
    # A group of t ties has t members each adding (t-1)(2t+5): together t(t-1)(2t+5).
    tie_term = ((tied - 1.0) * (2.0 * tied + 5.0)).sum(axis=0)
    var_s = (n * (n - 1) * (2 * n + 5) - tie_term) / 18.0
    root = np.sqrt(np.maximum(var_s, 0.0))
    corrected = s - np.sign(s)
    z = np.divide(corrected, root, out=np.zeros_like(s), where=root > 0)
    p = 2.0 * ndtr(-np.abs(z))
    return MannKendall(s=s, var_s=var_s, z=z, p=p)


def classify(hot: Any, cold: Any, trend_z: Any, trend_p: Any, alpha: float = 0.05) -> StrArray:
    """Return the ArcGIS emerging hot spot pattern of each cell (one name of PATTERNS per column).

    hot and cold are (steps, n) booleans: bin (t, i) is a significant hot or cold spot. trend_z
    and trend_p are the Mann–Kendall z and p of each cell's Gi* z-score series; a trend counts
    when trend_p <= alpha.

    "At least 90% of the steps" means 10 · count >= 9 · steps in whole numbers: with 12 steps
    11 hot steps qualify and 10 do not; with 10 steps, 9 do. "Less than 90%" is the complement.

    The rules, as ArcGIS Pro's "How Emerging Hot Spot Analysis works" defines the patterns, are
    tested in this order and the first that holds wins:

     1. intensifying_hot: the final step is hot, at least 90% of the steps are hot, and the
        z-scores trend upwards significantly.
     2. diminishing_hot: the final step is hot, at least 90% of the steps are hot, and the
        z-scores trend downwards significantly.
     3. persistent_hot: the final step is hot and at least 90% of the steps are hot, with no
        significant trend. (ArcGIS does not name the final step here; a series hot 90% of the
        time whose final step is not hot is its definition of historical, rule 15.)
     4. oscillating_hot: the final step is hot, an earlier step was cold, and less than 90% of
        the steps are hot (rules 1–3 took the rest).
     5. new_hot: the final step is hot and no earlier step was hot (nor cold: rule 4).
     6. consecutive_hot: the hot steps are one uninterrupted run of at least two ending in the
        final step (at least two: rule 5 took a run of one), no step before it was hot or cold,
        and less than 90% of the steps are hot.
     7. sporadic_hot: the final step is hot, some step before the final run was hot too (on
        again, off again), no step was cold, and less than 90% of the steps are hot. The current
        help (ArcGIS Pro 3, ArcGIS AllSource) asks for a hot final step with a history of being
        hot on and off; the ArcMap and early Pro wording ("a location that is an on-again then
        off-again hot spot") did not name the final step. We follow the current one: a cell hot
        on and off that is not hot in the final step is no_pattern.
     8–14. intensifying_cold, diminishing_cold, persistent_cold, oscillating_cold, new_cold,
        consecutive_cold, sporadic_cold: rules 1–7 with hot and cold swapped. For cold spots
        intensifying means the z-scores trend downwards (more negative), diminishing upwards.
     15. historical_hot: the final step is not hot and at least 90% of the steps were hot.
     16. historical_cold: the final step is not cold and at least 90% of the steps were cold.
     17. no_pattern: none of the above.

    Rules 1–7 need a hot final step and 8–14 a cold one, so their order only matters within each
    group. A cell hot in at least 90% of the steps whose final step is cold meets both
    historical_hot and oscillating_cold; it is oscillating_cold, which tells what it is now.
    """
    hot = np.asarray(hot, dtype=bool)
    cold = np.asarray(cold, dtype=bool)
    if hot.ndim != 2 or hot.shape != cold.shape or hot.shape[0] == 0:
        raise ValueError(
            f"hot and cold must both have shape (steps, n) with steps >= 1, got {hot.shape} "
            f"and {cold.shape}"
        )
    if (hot & cold).any():
        raise ValueError("a bin cannot be both a hot and a cold spot")
    trend_z = np.asarray(trend_z, dtype=np.float64)
    trend_p = np.asarray(trend_p, dtype=np.float64)
    n = hot.shape[1]
    if trend_z.shape != (n,) or trend_p.shape != (n,):
        raise ValueError(f"trend_z and trend_p must have shape ({n},)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    significant = trend_p <= alpha
    upward = significant & (trend_z > 0)
    downward = significant & (trend_z < 0)
    conditions = _side_rules(hot, cold, upward, downward) + _side_rules(cold, hot, downward, upward)
    steps = hot.shape[0]
    conditions += [
        ~hot[-1] & _at_least_90_percent(hot.sum(axis=0), steps),
        ~cold[-1] & _at_least_90_percent(cold.sum(axis=0), steps),
    ]
    names = [
        "intensifying_hot",
        "diminishing_hot",
        "persistent_hot",
        "oscillating_hot",
        "new_hot",
        "consecutive_hot",
        "sporadic_hot",
        "intensifying_cold",
        "diminishing_cold",
        "persistent_cold",
        "oscillating_cold",
        "new_cold",
        "consecutive_cold",
        "sporadic_cold",
        "historical_hot",
        "historical_cold",
    ]
    return np.asarray(np.select(conditions, names, default=NO_PATTERN), dtype=np.str_)


def _side_rules(
    spot: BoolArray, opposite: BoolArray, intensifying: BoolArray, diminishing: BoolArray
) -> list[BoolArray]:
    """Return rules 1–7 of `classify` for one side (hot, or cold with the trend reversed)."""
    steps = spot.shape[0]
    final = spot[-1]
    count = spot.sum(axis=0)
    mostly = final & _at_least_90_percent(count, steps)
    # The length of the run of spot bins that ends in the final step.
    final_run = np.cumprod(spot[::-1], axis=0).sum(axis=0)
    return [
        mostly & intensifying,
        mostly & diminishing,
        mostly,
        final & opposite.any(axis=0),
        final & (count == 1),
        final & (count == final_run),
        final,
    ]


def _at_least_90_percent(count: IntArray, steps: int) -> BoolArray:
    """Return count >= 90% of steps, in whole numbers so that 9 of 10 is exactly 90%."""
    return np.asarray(10 * count >= 9 * steps)


class EmergingHotspots(Estimator):
    """ArcGIS-style emerging hot spot analysis on the stable grid over ISO weeks (estimator).

    Parameters: cell_size_m and distance_band_m (binary disc of cell centres, self included, as in
    GiStar); neighbourhood_time_step, how many previous weeks join each bin's neighbourhood;
    window_steps, the number of weeks analysed (at least 2); fdr, Benjamini–Hochberg per week;
    alpha, the level for a hot or cold bin and for a significant trend; min_incidents, refuse
    smaller samples; tz, the time zone whose weeks are the time steps.

    alpha defaults to 0.05, as GiStar's does: a weekly map read by management groups should not
    flag more than it must. ArcGIS's pattern definitions say "statistically significant" without
    naming a level, and its Gi_Bin marks bins from 90% confidence; alpha=0.10 counts those.

    Time steps are ISO weeks in `tz`: Monday 00:00 to the next Monday 00:00 local time, so a week
    with a daylight-saving change lasts 167 or 169 hours and is still one step. The window is the
    `window_steps` complete weeks just before the week that contains `end`: from the Monday 00:00
    `window_steps` weeks before that week's Monday, up to but not including that Monday. `end`
    defaults to the latest incident time, which leaves out the week of the latest incident (it is
    normally still running); pass the Monday after the last week wanted, or the current time, to
    choose. Incidents outside the window are ignored. Times and `end` may be numpy datetime64,
    pandas or Python datetimes; naive values are read as UTC.

    Study cells are those whose centre lies inside `area` (empty ones included), or every cell of
    the bounding window of the incidents in the time window. Raises TooFewIncidents below
    `min_incidents` incidents in the window and the study cells.

    Learned by `fit`: window_ (GridWindow), cell_mask_ ((ny, nx) study cells), weeks_ (week
    starts, tz-aware DatetimeIndex), counts_, z_, p_, p_adjusted_ (per week BH, or p_ when
    fdr=False), bins_ (ArcGIS -3…3 confidence bins on those p-values), hot_ and cold_, all of shape
    (steps, ny, nx); trend_z_, trend_p_, pattern_, hot_steps_ and cold_steps_ of shape (ny, nx);
    n_incidents_ and crs_. Float rasters are NaN and pattern_ is "" outside the study cells.
    """

    def __init__(
        self,
        *,
        cell_size_m: float,
        distance_band_m: float,
        neighbourhood_time_step: int = 1,
        window_steps: int = 12,
        fdr: bool = True,
        alpha: float = 0.05,
        min_incidents: int = 30,
        tz: str = DEFAULT_TZ,
    ) -> None:
        self.cell_size_m = cell_size_m
        self.distance_band_m = distance_band_m
        self.neighbourhood_time_step = neighbourhood_time_step
        self.window_steps = window_steps
        self.fdr = fdr
        self.alpha = alpha
        self.min_incidents = min_incidents
        self.tz = tz

    def fit(
        self,
        points: Any,
        times: Any,
        weights: Any = None,
        area: shapely.Geometry | None = None,
        end: Any = None,
    ) -> EmergingHotspots:
        """Build the weekly space-time cube, test every bin, trend-test and classify every cell."""
        self._check_params()
        c = float(self.cell_size_m)
        steps = int(self.window_steps)
        xy = as_xy(points)
        w = as_weights(weights, len(xy))
        utc = _as_utc(times)
        if len(utc) != len(xy):
            raise ValueError(f"times must have one entry per point: {len(utc)} for {len(xy)}")
        if len(xy) == 0:
            raise TooFewIncidents(self.min_incidents, 0)
        end_week = int(week_numbers(_as_utc([utc.max() if end is None else end]), self.tz)[0])
        step = week_numbers(utc, self.tz) - (end_week - steps)
        keep = (step >= 0) & (step < steps)
        xy, w, step = xy[keep], w[keep], step[keep]
        if area is None and len(xy) == 0:
            raise TooFewIncidents(self.min_incidents, 0)

        window, mask = _study_cells(xy, area, c)
        incidents = _weekly_counts(window, xy, step, steps, None) * mask
        counts = incidents if weights is None else _weekly_counts(window, xy, step, steps, w) * mask
        n_incidents = round(float(incidents.sum()))
        if n_incidents < self.min_incidents:
            raise TooFewIncidents(self.min_incidents, n_incidents)

        footprint = disc_footprint(c, float(self.distance_band_m))
        z = _space_time_gi_star(counts, mask, footprint, int(self.neighbourhood_time_step))
        p = np.where(mask, 2.0 * ndtr(-np.abs(np.nan_to_num(z))), np.nan)
        p_adjusted = np.stack([benjamini_hochberg(p_week) for p_week in p]) if self.fdr else p
        significant = np.nan_to_num(p_adjusted, nan=1.0) <= self.alpha
        hot = significant & (np.nan_to_num(z) > 0)
        cold = significant & (np.nan_to_num(z) < 0)

        trend = mann_kendall(np.round(z[:, mask], _Z_DECIMALS))
        trend_z = np.full(window.shape, np.nan)
        trend_p = np.full(window.shape, np.nan)
        trend_z[mask], trend_p[mask] = trend.z, trend.p
        pattern = np.full(window.shape, "", dtype="<U17")
        pattern[mask] = classify(hot[:, mask], cold[:, mask], trend.z, trend.p, self.alpha)

        self.window_ = window
        self.cell_mask_ = mask
        self.weeks_ = week_starts(np.arange(end_week - steps, end_week), self.tz)
        self.counts_ = np.where(mask, counts, np.nan)
        self.z_ = z
        self.p_ = p
        self.p_adjusted_ = p_adjusted
        self.bins_ = confidence_bins(z, p_adjusted)
        self.hot_ = hot
        self.cold_ = cold
        self.trend_z_ = trend_z
        self.trend_p_ = trend_p
        self.pattern_ = pattern
        self.hot_steps_ = hot.sum(axis=0)
        self.cold_steps_ = cold.sum(axis=0)
        self.n_incidents_ = n_incidents
        self.crs_ = getattr(getattr(points, "geometry", None), "crs", None)
        return self

    def to_cells(self, geometry: bool = True) -> gpd.GeoDataFrame | pd.DataFrame:
        """Return one row per study cell: ix, iy, pattern, trend_z, trend_p, hot and cold steps
        and the cell polygon (without it, a plain DataFrame: quicker for many cells)."""
        gx, gy = self.window_.cell_keys()
        m = self.cell_mask_
        ix, iy = gx[m], gy[m]
        columns = {
            "ix": ix,
            "iy": iy,
            "pattern": self.pattern_[m],
            "trend_z": self.trend_z_[m],
            "trend_p": self.trend_p_[m],
            "hot_steps": self.hot_steps_[m],
            "cold_steps": self.cold_steps_[m],
        }
        if not geometry:
            return pd.DataFrame(columns)
        return gpd.GeoDataFrame(
            columns, geometry=cell_polygons(ix, iy, self.window_.cell_size_m), crs=self.crs_
        )

    def _check_params(self) -> None:
        """Raise ValueError on parameters no analysis can use."""
        c, band = float(self.cell_size_m), float(self.distance_band_m)
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"cell_size_m must be a positive number of metres, got {c}")
        if not (math.isfinite(band) and band >= c):
            raise ValueError(
                f"distance_band_m ({band:g}) must be at least the cell size ({c:g}) so that every "
                "cell has neighbours"
            )
        k = self.neighbourhood_time_step
        if int(k) != k or k < 0:
            raise ValueError(f"neighbourhood_time_step must be a whole number >= 0, got {k}")
        if int(self.window_steps) != self.window_steps or self.window_steps < 2:
            raise ValueError(
                f"window_steps must be a whole number >= 2 (a trend needs two weeks), "
                f"got {self.window_steps}"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")


def _as_utc(times: Any) -> pd.DatetimeIndex:
    """Return times as a UTC DatetimeIndex; naive values are taken to be UTC already."""
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    if index.hasnans:
        raise ValueError("times contain missing values (NaT)")
    return index


def _study_cells(
    xy: FloatArray, area: shapely.Geometry | None, cell_size_m: float
) -> tuple[GridWindow, BoolArray]:
    """Return the grid window and its study-cell mask: the area's cells, or the points' window."""
    if area is None:
        x, y = xy[:, 0], xy[:, 1]
        window = GridWindow.from_bounds((x.min(), y.min(), x.max(), y.max()), cell_size_m)
        return window, np.ones(window.shape, dtype=bool)
    window = GridWindow.from_bounds(area.bounds, cell_size_m)
    mask = window.mask(area)
    if not mask.any():
        raise ValueError("the area holds no cell centre; use a smaller cell size")
    return window, mask


def _weekly_counts(
    window: GridWindow, xy: FloatArray, step: IntArray, steps: int, weights: FloatArray | None
) -> FloatArray:
    """Return the (steps, ny, nx) cube of counts (or summed weights) per week and cell."""
    cube = np.zeros((steps, *window.shape))
    for t in range(steps):
        in_week = step == t
        w = None if weights is None else weights[in_week]
        cube[t] = window.bin(xy[in_week, 0], xy[in_week, 1], w)
    return cube


def _space_time_gi_star(
    counts: FloatArray, mask: BoolArray, footprint: BoolArray, time_steps: int
) -> FloatArray:
    """Return the space-time Gi* z cube (NaN outside mask) with global mean and SD over all bins."""
    steps = counts.shape[0]
    kernel = footprint.astype(np.float64)
    # Space first, one step at a time (a kernel one step deep), then the previous steps added on.
    spatial = scipy.ndimage.correlate(counts, kernel[None], mode="constant", cval=0.0)
    lag = spatial.copy()
    for back in range(1, min(time_steps, steps - 1) + 1):
        lag[back:] += spatial[:-back]
    spatial_neighbours = np.rint(
        scipy.ndimage.correlate(mask.astype(np.float64), kernel, mode="constant", cval=0.0)
    )
    depth = np.minimum(np.arange(1, steps + 1), time_steps + 1).astype(np.float64)
    wi = (depth[:, None] * spatial_neighbours[mask][None, :]).astype(np.float64)

    x = counts[:, mask]
    n = x.size
    mean = float(x.sum()) / n
    sd = math.sqrt(max(float((x * x).sum()) / n - mean * mean, 0.0))
    spread = (
        sd * np.sqrt(np.maximum(n * wi - wi * wi, 0.0) / (n - 1)) if n > 1 else np.zeros_like(wi)
    )
    numerator = lag[:, mask] - mean * wi
    z = np.full(counts.shape, np.nan)
    # No spread (all bins equal, or every bin a neighbour): nothing stands out, z = 0.
    z[:, mask] = np.divide(numerator, spread, out=np.zeros_like(wi), where=spread > 0)
    return z

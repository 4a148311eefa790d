"""Getis-Ord Gi* hotspots on grid counts: analytic z and p, FDR, ArcGIS-compatible bins.

Every study cell i is tested with

    Gi* = (sum_j w_ij x_j - X̄ sum_j w_ij) / (S · sqrt((n sum_j w_ij² - (sum_j w_ij)²) / (n - 1)))

where x are the incident counts (or summed weights) per cell, n, X̄ and S (population standard
deviation) are taken over the n study cells, and w_ij = 1 when the centres of i and j are at
most `distance_band_m` apart (i itself included: the "star"). This is what
`esda.G_Local(y, w, transform="B", star=True)` reports as `Zs` for libpysal `DistanceBand`
weights on the cell centres: esda puts a self-weight of 1 on the diagonal of binary weights
and its Zs, written out, is the formula above (tests compare the two to 1e-6). Because the
weights are a fixed disc of cells, the neighbour sums are one correlation of the count raster
with the disc, restricted to study cells.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.ndimage
import shapely
from scipy.special import ndtr

from clustering.fdr import benjamini_hochberg
from clustering.params import Estimator
from geo.grid import GridWindow, cell_polygons
from geo.points import as_weights, as_xy

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# ArcGIS's confidence bins: |bin| = 3 at 99%, 2 at 95%, 1 at 90% confidence.
CONFIDENCE_BINS: tuple[tuple[int, float], ...] = ((3, 0.01), (2, 0.05), (1, 0.10))
# Conditional randomisation draws distinct-values × permutations × neighbours numbers at most.
MAX_PERMUTATION_WORK = 500_000_000


class TooFewIncidents(ValueError):
    """Raised when a study area holds too few incidents for Gi* to say anything."""

    def __init__(self, needed: int, got: int) -> None:
        super().__init__(f"Gi* needs at least {needed} incidents in the study area, got {got}")
        self.needed = needed
        self.got = got


def confidence_bins(z: Any, p: Any) -> npt.NDArray[np.int8]:
    """Return ArcGIS Gi_Bin values: sign(z) × 3, 2 or 1 where p <= 0.01, 0.05 or 0.10, else 0.

    NaN p-values (cells outside a study area) get bin 0.
    """
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    level = np.zeros(p.shape, dtype=np.int8)
    for bin_level, alpha in reversed(CONFIDENCE_BINS):
        level[p <= alpha] = bin_level
    return (level * np.sign(np.nan_to_num(z))).astype(np.int8)


class GiStar(Estimator):
    """Getis-Ord Gi* hotspot test on the stable grid (scikit-learn style estimator).

    Parameters: cell_size_m and distance_band_m (binary disc weights between cell centres,
    self included); fdr, judge significance on Benjamini–Hochberg adjusted p-values; alpha,
    the level behind `significant_`; permutations, if > 0 also compute conditional-randomisation
    pseudo p-values and judge significance on them; min_incidents, refuse smaller samples;
    seed, for the permutations.

    Confidence bins with fdr=True follow ArcGIS: its FDR correction lowers the critical p-value of
    each confidence level (90, 95, 99%) to the Benjamini–Hochberg step-up threshold at that level,
    i.e. a cell is significant at level alpha when p <= p*(alpha), the largest p_(k) with
    p_(k) <= k·alpha/m over the m study cells. That is exactly `p_adjusted_ <= alpha`, so
    bins_ = sign(z) · (3 if p_adjusted_ <= 0.01, 2 if <= 0.05, 1 if <= 0.10, else 0). With
    fdr=False the same rule is applied to the unadjusted p-values.

    Permutations follow esda's conditional randomisation: for cell i, with x_i fixed, the k_i
    neighbour values are drawn without replacement from the other n - 1 study cells. The draws
    depend on cell i only through its own value, so cells of equal value share one set of
    `permutations` draws; that keeps it fast on count data, and the work (distinct values ×
    permutations × largest neighbour count) is capped at MAX_PERMUTATION_WORK. The pseudo
    p-value is two-sided, 2 · (min(#sim >= obs, #sim <= obs) + 1) / (permutations + 1) capped
    at 1: twice esda's `p_sim`, which reports the smaller tail.

    Learned by `fit`: window_ (GridWindow), cell_mask_ ((ny, nx) study cells), counts_, z_, p_
    (two-sided normal), p_sim_ (pseudo p-values, or None), p_adjusted_ (BH-adjusted p_, or p_sim_
    when permuting), bins_ (int8, 0 outside the study cells), significant_ (bool), n_incidents_
    and crs_. Float rasters are NaN outside the study cells.
    """

    def __init__(
        self,
        *,
        cell_size_m: float,
        distance_band_m: float,
        fdr: bool = True,
        alpha: float = 0.05,
        permutations: int = 0,
        min_incidents: int = 30,
        seed: int = 0,
    ) -> None:
        self.cell_size_m = cell_size_m
        self.distance_band_m = distance_band_m
        self.fdr = fdr
        self.alpha = alpha
        self.permutations = permutations
        self.min_incidents = min_incidents
        self.seed = seed

    def fit(self, points: Any, weights: Any = None, area: shapely.Geometry | None = None) -> GiStar:
        """Count points per cell and test every study cell: the area's cells, or the points' window.

        Study cells are those whose centre lies inside `area` (empty ones included), or every
        cell of the points' bounding window when no area is given. Points outside the study
        cells are ignored. Raises TooFewIncidents below `min_incidents` points in the study cells.
        """
        c = float(self.cell_size_m)
        band = float(self.distance_band_m)
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"cell_size_m must be a positive number of metres, got {c}")
        if not (math.isfinite(band) and band >= c):
            raise ValueError(
                f"distance_band_m ({band:g}) must be at least the cell size ({c:g}) so that every "
                "cell has neighbours"
            )
        if int(self.permutations) != self.permutations or self.permutations < 0:
            raise ValueError(f"permutations must be a whole number >= 0, got {self.permutations}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        xy = as_xy(points)
        w = as_weights(weights, len(xy))
        if area is None:
            if len(xy) == 0:
                raise TooFewIncidents(self.min_incidents, 0)
            x, y = xy[:, 0], xy[:, 1]  # column by column: min(axis=0) on (n, 2) is 30× slower
            window = GridWindow.from_bounds((x.min(), y.min(), x.max(), y.max()), c)
            mask = np.ones(window.shape, dtype=bool)
        else:
            window = GridWindow.from_bounds(area.bounds, c)
            mask = window.mask(area)
            if not mask.any():
                raise ValueError("the area holds no cell centre; use a smaller cell size")
        incidents = window.bin(xy[:, 0], xy[:, 1]) * mask
        counts = incidents if weights is None else window.bin(xy[:, 0], xy[:, 1], w) * mask
        n_incidents = round(float(incidents.sum()))
        if n_incidents < self.min_incidents:
            raise TooFewIncidents(self.min_incidents, n_incidents)

        footprint = disc_footprint(c, band)
        z, lag, n_neighbours = _gi_star(counts, mask, footprint)
        p = np.full(window.shape, np.nan)
        p[mask] = 2.0 * ndtr(-np.abs(z[mask]))
        p_sim = None
        judged = p
        if self.permutations > 0:
            p_sim = np.full(window.shape, np.nan)
            p_sim[mask] = _pseudo_p(
                counts[mask],
                lag[mask] - counts[mask],
                n_neighbours[mask].astype(np.int64) - 1,
                int(self.permutations),
                self.seed,
            )
            judged = p_sim
        p_adjusted = benjamini_hochberg(judged)
        if self.fdr:
            judged = p_adjusted
        bins = confidence_bins(z, judged)
        bins[~mask] = 0

        nan_outside = np.where(mask, counts, np.nan)
        self.window_ = window
        self.cell_mask_ = mask
        self.counts_ = nan_outside
        self.z_ = z
        self.p_ = p
        self.p_sim_ = p_sim
        self.p_adjusted_ = p_adjusted
        self.bins_ = bins
        self.significant_ = mask & (np.nan_to_num(judged, nan=1.0) <= self.alpha)
        self.n_incidents_ = n_incidents
        self.crs_ = getattr(getattr(points, "geometry", None), "crs", None)
        return self

    def to_cells(self, geometry: bool = True) -> gpd.GeoDataFrame | pd.DataFrame:
        """Return one row per study cell: ix, iy, count, z, p, p_adjusted, bin, cell polygon
        (without it, a plain DataFrame: quicker for many cells)."""
        gx, gy = self.window_.cell_keys()
        m = self.cell_mask_
        ix, iy = gx[m], gy[m]
        columns: dict[str, Any] = {
            "ix": ix,
            "iy": iy,
            "count": self.counts_[m],
            "z": self.z_[m],
            "p": self.p_[m],
        }
        if self.p_sim_ is not None:
            columns["p_sim"] = self.p_sim_[m]
        columns["p_adjusted"] = self.p_adjusted_[m]
        columns["bin"] = self.bins_[m]
        if not geometry:
            return pd.DataFrame(columns)
        return gpd.GeoDataFrame(
            columns, geometry=cell_polygons(ix, iy, self.window_.cell_size_m), crs=self.crs_
        )


def disc_footprint(cell_size_m: float, distance_band_m: float) -> BoolArray:
    """Return the (2k+1, 2k+1) offsets whose centre distance is within the band (self included).

    A 1e-9 tolerance on (band / cell)² keeps exact multiples (300 m on 100 m cells) inside, as
    libpysal's DistanceBand does with its `<=` on the computed distances.
    """
    reach = distance_band_m / cell_size_m
    k = math.floor(reach + 1e-9)
    o = np.arange(-k, k + 1)
    return np.asarray(o[:, None] ** 2 + o[None, :] ** 2 <= reach * reach + 1e-9)


def _gi_star(
    counts: FloatArray, mask: BoolArray, footprint: BoolArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return the Gi* z raster (NaN outside mask), the neighbour sums and the neighbour counts."""
    kernel = footprint.astype(np.float64)
    lag = scipy.ndimage.correlate(counts, kernel, mode="constant", cval=0.0)
    if mask.all():
        n_neighbours = scipy.ndimage.correlate(np.ones_like(counts), kernel, mode="constant")
    else:
        n_neighbours = scipy.ndimage.correlate(mask.astype(np.float64), kernel, mode="constant")
    # The correlations of integer counts are exact; rounding keeps them so for the weight counts.
    n_neighbours = np.rint(n_neighbours)
    x = counts[mask]
    n = x.size
    mean = x.sum() / n
    sd = math.sqrt(max(float((x * x).sum()) / n - mean * mean, 0.0))
    wi = n_neighbours[mask]
    spread = sd * np.sqrt(np.maximum(n * wi - wi * wi, 0.0) / (n - 1)) if n > 1 else np.zeros(n)
    numerator = lag[mask] - mean * wi
    z = np.full(counts.shape, np.nan)
    # No spread (every study cell a neighbour, or all counts equal): nothing stands out, z = 0.
    z[mask] = np.divide(numerator, spread, out=np.zeros(n), where=spread > 0)
    return z, lag, n_neighbours


def _pseudo_p(
    values: FloatArray,
    neighbour_sums: FloatArray,
    n_neighbours: npt.NDArray[np.int64],
    permutations: int,
    seed: int,
) -> FloatArray:
    """Return two-sided conditional-randomisation pseudo p-values of the neighbour sums."""
    n = values.size
    k_max = int(n_neighbours.max(initial=0))
    p = np.ones(n)
    if k_max == 0:
        return p
    distinct, first, group = np.unique(values, return_index=True, return_inverse=True)
    work = distinct.size * permutations * k_max
    if work > MAX_PERMUTATION_WORK:
        raise ValueError(
            f"permutations: {distinct.size} distinct cell values × {permutations} permutations × "
            f"{k_max} neighbours exceeds {MAX_PERMUTATION_WORK:.0e}; use fewer permutations or "
            "permutations=0 (analytic p-values)"
        )
    rng = np.random.default_rng(seed)
    draws = np.stack([rng.choice(n - 1, size=k_max, replace=False) for _ in range(permutations)])
    by_group = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[by_group], np.arange(distinct.size + 1))
    for g in range(distinct.size):
        cells = by_group[bounds[g] : bounds[g + 1]]
        cells = cells[n_neighbours[cells] > 0]
        if cells.size == 0:
            continue
        # The pool is every study cell but one of this value, exactly as esda leaves out cell i.
        rep = first[g]
        sims = np.cumsum(values[draws + (draws >= rep)], axis=1)
        sims.sort(axis=0)
        for k in np.unique(n_neighbours[cells]):
            chosen = cells[n_neighbours[cells] == k]
            column = sims[:, k - 1]
            observed = neighbour_sums[chosen]
            n_ge = permutations - np.searchsorted(column, observed, side="left")
            n_le = np.searchsorted(column, observed, side="right")
            tail = np.minimum(n_ge, n_le)
            p[chosen] = np.minimum(1.0, 2.0 * (tail + 1) / (permutations + 1))
    return p

"""Kernel density on the stable grid: points binned with their sub-cell moments, then convolved.

How it is computed, and how accurate it is
------------------------------------------
The density at a cell centre C is D(C) = sum_i w_i K(C - p_i), reported in incidents per km²
(the kernel integrates to 1 over m², times 1e6). Evaluating that sum point by point costs
O(points × cells in the kernel's reach); instead each point p in source cell S (centre s) is
written as p = s + h·e with |e_x|, |e_y| <= c / 2h (c the cell size, h the bandwidth), and the
kernel is expanded in e, which splits every pair's contribution into a function of the cell
offset C - s times a power of e. So the density becomes a short sum of convolutions:
per-cell moment rasters M_k(S) = sum_{p in S} w_p e^k convolved with fixed kernels T_k (for the
Gaussian, whose kernels are separable, as direct 1-D sums along x then y; for the quartic,
together in Fourier space). Plain binning (every point moved to its cell centre, or spread
bilinearly onto a finer grid) is the zeroth/first-order case of this, and is not accurate
enough: on 100 m cells with a 250 m bandwidth nearest-cell binning is off by up to ~4%, and
bilinear binning on 25 m cells still by up to ~1.5% for pairs 3.5 bandwidths apart (its bound
is (g/h)² r²/8 for grid spacing g and a pair r bandwidths apart).

Gaussian, K(d) = exp(-d²/2h²) / (2π h²), truncated at 5 h. With v = (C - s)/h,
K(C - p) = K(v) · exp(v_x e_x - e_x²/2) · exp(v_y e_y - e_y²/2), and by the generating
function of the Hermite polynomials exp(v e - e²/2) = sum_a He_a(v) e^a / a!. Keeping the terms
of total degree a + b <= m gives the moments e_x^a e_y^b / (a! b!) and the separable kernels
K(v) He_a(v_x) He_b(v_y). The relative error of one point–cell pair depends only on
rho = c / 2h, the order m and the pair's distance r (in bandwidths); `_MAX_RHO_FOR_ORDER` lists,
per order, the largest rho whose error stays below GAUSSIAN_PAIR_TOLERANCE = 0.25% for every
pair with r <= 3.5 (computed by `_gaussian_pair_error` on a dense grid; a test recomputes it).
Beyond 3.5 bandwidths the same expansion errs by at most 1e-5 · K(0) in absolute terms (out to
the reach of the sums below; a test checks it), and pairs beyond 5 h may be dropped (each is
below exp(-12.5) · K(0) = 3.7e-6 · K(0)). Hence, up to rounding, for every cell

    |D~(C) - D(C)| <= 0.25% · D(C) + 1.4e-5 · K(0) · N_far(C),

with N_far the weight of the points more than 3.5 h from C. A cell whose density is above 1% of
the maximum is dominated by points nearer than ~3.2 h (a lone point or stack of points gives 1%
of its own peak at 3.03 h), so its relative error is at most 0.25% plus a far-point term that
is negligible unless the far points outnumber the near ones by thousands; the tests check the
1% requirement against the exact sum on clustered data and the Memphis robberies. For
bandwidths near half a cell, where no order up to 10 meets the tolerance, the points are binned
on an internal grid of cell/3 (rho three times smaller) and the result is read at the cell
centres, which are internal cell centres.

The kernels being separable, each M_ab is convolved along x with K(v) He_a(v), the results are
summed per b, and the m + 1 sums are convolved along y with K(v) He_b(v). Both are direct sums
over the offsets of up to k = floor(5 h/g + 1/2) cells each way (g the grid spacing), which
reach every pair within 5 h: the pairs left out, more than k cells apart along an axis, are all
beyond 5 h, and those kept beyond 5 h err as the far pairs above. On 100 m cells with
h = 250 m that is m = 4, 27 offsets and 15 + 5 sums of them per cell, cheaper than 15 FFT
convolutions on grids of this size.

Quartic, K(d) = 3/(π h²) (1 - d²/h²)² for d < h, as ArcGIS and Silverman (1986, eq. 4.5). Inside
the disc the kernel is a polynomial of degree 4, so the expansion in e is exact with nine
moments (1, e_x, e_y, e_x², e_x e_y, e_y², e_x|e|², e_y|e|², |e|⁴). It is used for every source
cell lying wholly inside the disc around C. At the disc's edge the kernel's second derivative
jumps, no expansion or interpolation converges there (a stack of incidents at one address
leaves a ring of cells ~0.9 h away whose density would be off by tens of percent), so the
source cells the circle cuts are summed point by point: about 8·h/c cells per point, where the
plain sum needs ~π(h/c)². The quartic result is thus exact up to floating-point rounding.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import geopandas as gpd
import numba
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.fft
import shapely

from clustering.isopleths import density_isopleths
from clustering.params import Estimator
from geo.grid import GridWindow, cell_polygons
from geo.points import as_weights, as_xy

FloatArray = npt.NDArray[np.float64]
Kernel = Literal["gaussian", "quartic"]
BandwidthRule = Literal["arcgis"]

PER_KM2 = 1e6
GAUSSIAN_TRUNCATION_H = 5.0
GAUSSIAN_PAIR_TOLERANCE = 2.5e-3
# Largest rho = cell / (2 · bandwidth) at which the Hermite expansion of each order keeps every
# point–cell pair within 3.5 bandwidths below GAUSSIAN_PAIR_TOLERANCE (see the module docstring).
_MAX_RHO_FOR_ORDER = {3: 0.105, 4: 0.2, 5: 0.29, 6: 0.335, 7: 0.465, 8: 0.495, 9: 0.59, 10: 0.65}
# Densities at or below 1e-9 of the maximum (negative ones included) are reported as zero: that
# far out, FFT round-off (quartic) or the expansion's error on far pairs (Gaussian) is as large.
_ZERO_BELOW = 1e-9
# Rows per band when binning; each band's moment rows (8 × 600 cells × 15 moments) fit in cache.
_BAND_ROWS = 8


def arcgis_bandwidth(points: Any, weights: Any = None) -> float:
    """Return ArcGIS Pro's default kernel-density search radius (metres) for the points.

    h = 0.9 · min(SD, sqrt(1 / ln 2) · Dm) · n^-0.2, where, with weights w (ones by default):
    the mean centre is the w-weighted mean of x and y; SD, the standard distance, is
    sqrt(sum w·((x - mx)² + (y - my)²) / sum w); Dm is the w-weighted median of the distances to
    the mean centre (the smallest distance whose cumulative weight reaches half the total, or the
    mean of it and the next one when it reaches exactly half, so that unit weights give
    numpy.median); and n = sum w.
    """
    xy = as_xy(points)
    w = as_weights(weights, len(xy))
    total = float(w.sum())
    if total <= 0:
        raise ValueError("cannot choose a bandwidth without points")
    centre = (xy * w[:, None]).sum(axis=0) / total
    d = np.hypot(xy[:, 0] - centre[0], xy[:, 1] - centre[1])
    sd = math.sqrt(float((w * d**2).sum()) / total)
    dm = _weighted_median(d, w)
    h = 0.9 * min(sd, math.sqrt(1.0 / math.log(2.0)) * dm) * total**-0.2
    if not h > 0:
        raise ValueError("the points have no spread, so no bandwidth follows; pass bandwidth_m")
    return h


def _weighted_median(values: FloatArray, weights: FloatArray) -> float:
    values, weights = values[weights > 0], weights[weights > 0]  # weightless points are absent
    order = np.argsort(values, kind="stable")
    v, cw = values[order], np.cumsum(weights[order])
    half = cw[-1] / 2.0
    i = int(np.searchsorted(cw, half, side="left"))
    if math.isclose(cw[i], half, rel_tol=1e-12) and i + 1 < v.size:
        return float(v[i] + v[i + 1]) / 2.0
    return float(v[i])


class KernelDensity(Estimator):
    """Kernel density of incidents on the stable grid, in incidents per km² at cell centres.

    Parameters: cell_size_m, the grid; bandwidth_m, the Gaussian's standard deviation or the
    quartic's radius (None: `bandwidth_rule`, ArcGIS Pro's default radius, see
    `arcgis_bandwidth`); kernel, "gaussian" (truncated at 5 bandwidths) or "quartic". Note that
    a Gaussian of bandwidth h is about 2.8 times as wide as a quartic of radius h.

    Learned by `fit`: window_ (GridWindow), density_ ((ny, nx) incidents per km², NaN outside
    the area), cell_mask_ ((ny, nx) True where density is reported), bandwidth_m_,
    support_radius_m_ (how far one incident reaches) and crs_ (of the input points, if any).
    """

    def __init__(
        self,
        *,
        cell_size_m: float,
        bandwidth_m: float | None = None,
        kernel: Kernel = "gaussian",
        bandwidth_rule: BandwidthRule = "arcgis",
    ) -> None:
        self.cell_size_m = cell_size_m
        self.bandwidth_m = bandwidth_m
        self.kernel = kernel
        self.bandwidth_rule = bandwidth_rule

    def fit(
        self, points: Any, weights: Any = None, area: shapely.Geometry | None = None
    ) -> KernelDensity:
        """Estimate the density of points (metres; optional weights) over the area's cells.

        Without an area the window is the points' extent padded by the kernel's reach. With an
        area, density is reported for the cells whose centre lies inside it (NaN elsewhere),
        and incidents outside the area still add to it up to the kernel's reach: crime does not
        stop at a municipal border. Only points inside the window count.
        """
        c = float(self.cell_size_m)
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"cell_size_m must be a positive number of metres, got {c}")
        if self.kernel not in ("gaussian", "quartic"):
            raise ValueError(f"unknown kernel {self.kernel!r}; use 'gaussian' or 'quartic'")
        xy = as_xy(points)
        w = as_weights(weights, len(xy))
        h = self._bandwidth(xy, w)
        reach = GAUSSIAN_TRUNCATION_H * h if self.kernel == "gaussian" else h
        pad = math.ceil(reach / c) + 1
        if area is None:
            if len(xy) == 0:
                raise ValueError("cannot estimate a density from no points without an area")
            x, y = xy[:, 0], xy[:, 1]  # column by column: min(axis=0) on (n, 2) is 30× slower
            bounds = (x.min(), y.min(), x.max(), y.max())
            window = GridWindow.from_bounds(bounds, c, pad_cells=pad)
            mask = np.ones(window.shape, dtype=bool)
        else:
            window = GridWindow.from_bounds(area.bounds, c, pad_cells=pad)
            inner = GridWindow.from_bounds(area.bounds, c)
            mask = np.zeros(window.shape, dtype=bool)
            mask[pad : pad + inner.ny, pad : pad + inner.nx] = inner.mask(area)
            if not mask.any():
                raise ValueError("the area holds no cell centre; use a smaller cell size")
        if self.kernel == "gaussian":
            density = _gaussian_density(xy, w, window, h)
        else:
            density = _quartic_density(xy, w, window, h)
        peak = float(density.max(initial=0.0))
        density[density <= _ZERO_BELOW * peak] = 0.0
        density[~mask] = np.nan
        self.window_ = window
        self.density_ = density
        self.cell_mask_ = mask
        self.bandwidth_m_ = h
        self.support_radius_m_ = reach
        self.crs_ = getattr(getattr(points, "geometry", None), "crs", None)
        return self

    def to_cells(self, geometry: bool = True) -> gpd.GeoDataFrame | pd.DataFrame:
        """Return the reported cells with non-zero density: ix, iy, density (per km²), geometry
        (without it, a plain DataFrame: quicker for many cells)."""
        gx, gy = self.window_.cell_keys()
        keep = self.cell_mask_ & (np.nan_to_num(self.density_) > 0)
        ix, iy = gx[keep], gy[keep]
        if not geometry:
            return pd.DataFrame({"ix": ix, "iy": iy, "density": self.density_[keep]})
        return gpd.GeoDataFrame(
            {"ix": ix, "iy": iy, "density": self.density_[keep]},
            geometry=cell_polygons(ix, iy, self.window_.cell_size_m),
            crs=self.crs_,
        )

    def isopleths(self, shares: tuple[float, ...] = (0.5, 0.75, 0.9)) -> gpd.GeoDataFrame:
        """Return the smallest cell sets holding each share of the density mass, as polygons."""
        return density_isopleths(self.density_, self.window_, shares, crs=self.crs_)

    def _bandwidth(self, xy: FloatArray, w: FloatArray) -> float:
        c = float(self.cell_size_m)
        if self.bandwidth_m is None:
            if self.bandwidth_rule != "arcgis":
                raise ValueError(f"unknown bandwidth_rule {self.bandwidth_rule!r}; use 'arcgis'")
            h = arcgis_bandwidth(xy, w)
        else:
            h = float(self.bandwidth_m)
            if not (math.isfinite(h) and h > 0):
                raise ValueError(f"bandwidth_m must be a positive number of metres, got {h}")
        if h < c / 2:
            raise ValueError(
                f"bandwidth {h:.1f} m is below half the cell size ({c:g} m): the grid cannot "
                "resolve the kernel; use a smaller cell size or a larger bandwidth"
            )
        if h < c:
            warnings.warn(
                f"bandwidth {h:.1f} m is below the cell size ({c:g} m): cell-centre densities "
                "undersample the surface",
                UserWarning,
                stacklevel=3,
            )
        return h


# ---------------------------------------------------------------------------------------------
# Gaussian: Hermite moments


def _gaussian_plan(cell_size_m: float, bandwidth_m: float) -> tuple[int, int]:
    """Return (subdivision, order): the internal grid is cell/subdivision, the expansion order m."""
    for subdivision in (1, 3):
        rho = cell_size_m / (2.0 * subdivision * bandwidth_m)
        for order, max_rho in _MAX_RHO_FOR_ORDER.items():
            if rho <= max_rho:
                return subdivision, order
    raise ValueError("bandwidth too small for the grid")  # unreachable for h >= cell / 2


def _hermite(order: int, v: npt.NDArray[np.floating[Any]]) -> list[FloatArray]:
    """Return the probabilists' Hermite polynomials He_0..He_order at v."""
    out = [np.ones_like(v), v.copy()]
    for n in range(1, order):
        out.append(v * out[n] - n * out[n - 1])
    return out[: order + 1]


def _gaussian_density(xy: FloatArray, w: FloatArray, window: GridWindow, h: float) -> FloatArray:
    """Return the Gaussian density (per km²) at the window's cell centres."""
    f, m = _gaussian_plan(window.cell_size_m, h)
    g = window.cell_size_m / f
    ny, nx = window.ny * f, window.nx * f
    # A pair within 5 h is at most 5 h + g/2 apart along each axis in cell-centre offsets, so
    # offsets of up to k internal cells reach every one of them.
    k = math.floor(GAUSSIAN_TRUNCATION_H * h / g + 0.5)
    v = np.arange(-k, k + 1) * (g / h)
    taps = np.array(_hermite(m, v)) * np.exp(-0.5 * v * v)  # K(v) He_a(v) along one axis
    ix0, iy0 = window.ix0 * f, window.iy0 * f
    bands = _group_by_band(xy, w, ix0, iy0, nx, ny, g)
    along_x = np.empty((ny, m + 1, nx))
    _moments_along_x(*bands, ix0, iy0, g, h, taps, along_x)
    first = (f - 1) // 2  # for odd f the cell centre is the middle internal cell's centre
    if f > 1:
        along_x = np.ascontiguousarray(along_x[:, :, first::f])
    density = np.empty(window.shape)
    _along_y(along_x, taps * (PER_KM2 / (2.0 * math.pi * h * h)), f, first, density)
    return density


def _group_by_band(
    xy: FloatArray, w: FloatArray, ix0: int, iy0: int, nx: int, ny: int, spacing: float
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Return x, y, w of the points in the nx × ny cells from (ix0, iy0) of the given spacing,
    grouped by bands of rows, and the band starts (see `_partition_by_band`)."""
    # Allocated by numpy, whose large blocks are reused from fit to fit: allocated inside numba,
    # the same 24 MB at 1M points often came as fresh pages on every fit (~5 ms of page faults).
    grouped = np.empty((3, len(xy)))
    threads = numba.get_num_threads()
    return _partition_by_band(xy[:, 0], xy[:, 1], w, ix0, iy0, nx, ny, spacing, threads, grouped)


@numba.njit(cache=True)
def _band_of(x: float, y: float, ix0: int, iy0: int, nx: int, ny: int, spacing: float) -> int:
    """Return the band of rows holding the point, or -1 outside the window's nx × ny cells."""
    col = math.floor(x / spacing) - ix0
    row = math.floor(y / spacing) - iy0
    return row // _BAND_ROWS if 0 <= col < nx and 0 <= row < ny else -1


@numba.njit(cache=True, parallel=True)
def _partition_by_band(
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    ix0: int,
    iy0: int,
    nx: int,
    ny: int,
    spacing: float,
    chunks: int,
    grouped: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Return x, y, w of the points in the window, grouped by bands of 8 rows (in grouped, of
    shape (3, points)), and the band starts: binning band by band keeps its writes in cache."""
    n_bands = (ny + _BAND_ROWS - 1) // _BAND_ROWS
    step = (x.size + chunks - 1) // chunks
    counts = np.zeros((chunks, n_bands), dtype=np.int64)
    for chunk in numba.prange(chunks):  # one chunk of the points per thread
        for i in range(chunk * step, min(x.size, (chunk + 1) * step)):
            band = _band_of(x[i], y[i], ix0, iy0, nx, ny, spacing)
            if band >= 0:
                counts[chunk, band] += 1
    # Within a band the points keep their input order, whatever the threads' timing.
    fill = np.empty_like(counts)
    starts = np.zeros(n_bands + 1, dtype=np.int64)
    for band in range(n_bands):
        starts[band + 1] = starts[band]
        for chunk in range(chunks):
            fill[chunk, band] = starts[band + 1]
            starts[band + 1] += counts[chunk, band]
    xs, ys, ws = grouped[0, : starts[-1]], grouped[1, : starts[-1]], grouped[2, : starts[-1]]
    for chunk in numba.prange(chunks):
        for i in range(chunk * step, min(x.size, (chunk + 1) * step)):
            band = _band_of(x[i], y[i], ix0, iy0, nx, ny, spacing)
            if band >= 0:
                j = fill[chunk, band]
                xs[j], ys[j], ws[j] = x[i], y[i], w[i]
                fill[chunk, band] = j + 1
    return xs, ys, ws, starts


@numba.njit(cache=True, parallel=True)
def _moments_along_x(
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    starts: npt.NDArray[np.int64],
    ix0: int,
    iy0: int,
    spacing: float,
    h: float,
    taps: FloatArray,
    along_x: FloatArray,
) -> None:
    """Set along_x[row, b, col] to sum_a sum_d taps[a, k + d] M_ab[row, col - d], the moment
    rasters M_ab convolved along x, binning them one band of rows at a time."""
    order = taps.shape[0] - 1
    k = (taps.shape[1] - 1) // 2
    ny, nx = along_x.shape[0], along_x.shape[2]
    n_terms = (order + 1) * (order + 2) // 2
    for band in numba.prange(starts.size - 1):
        row0 = band * _BAND_ROWS
        begin, end = starts[band], starts[band + 1]
        moments = np.zeros((n_terms, _BAND_ROWS, nx + 2 * k))  # k zero columns each side
        _bin_moments(x[begin:end], y[begin:end], w[begin:end], ix0 - k, iy0 + row0, spacing, h,
                     order, moments)  # fmt: skip
        for r in range(min(_BAND_ROWS, ny - row0)):
            out = along_x[row0 + r]
            out[:] = 0.0
            term = 0
            for a in range(order + 1):
                for b in range(order + 1 - a):
                    _add_convolved(out[b], moments[term, r], taps[a])
                    term += 1


@numba.njit(cache=True)
def _bin_moments(
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    ix0: int,
    iy0: int,
    spacing: float,
    h: float,
    order: int,
    moments: FloatArray,
) -> None:
    """Add w · e_x^a e_y^b / (a! b!) of every point to moments[term, row, col], the terms being
    (a, b) with a + b <= order, ordered by a then b as the x-pass reads them."""
    n_terms, rows, cols = moments.shape
    cell = np.empty(x.size, dtype=np.int64)  # index into a flattened rows × cols raster
    ex, ey = np.empty(x.size), np.empty(x.size)
    for i in range(x.size):
        cx = math.floor(x[i] / spacing)
        cy = math.floor(y[i] / spacing)
        ex[i] = (x[i] - (cx + 0.5) * spacing) / h
        ey[i] = (y[i] - (cy + 0.5) * spacing) / h
        cell[i] = (cy - iy0) * cols + cx - ix0
    # Term by term: each raster of the band stays in cache while the points add to it.
    flat = moments.reshape(n_terms, rows * cols)
    px = w.copy()  # w · e_x^a / a!
    pxy = np.empty(x.size)  # w · e_x^a / a! · e_y^b / b!
    term = 0
    for a in range(order + 1):
        for i in range(x.size):
            pxy[i] = px[i]
        for b in range(order + 1 - a):
            raster = flat[term]
            for i in range(x.size):
                raster[cell[i]] += pxy[i]
            term += 1
            for i in range(x.size):
                pxy[i] *= ey[i] * (1.0 / (b + 1))
        for i in range(x.size):
            px[i] *= ex[i] * (1.0 / (a + 1))


@numba.njit(cache=True)
def _add_convolved(out: FloatArray, padded: FloatArray, taps: FloatArray) -> None:
    """Add sum_d taps[k + d] · padded[k + i - d], d = -k..k, to out[i] (padded: k more a side)."""
    n, last = out.size, taps.size - 1
    # Sources are slices rather than padded[i + offset]: numba's check for negative indices on a
    # computed index would keep the loops from vectorizing.
    for j in range(0, taps.size - 2, 3):
        _add_three(
            out,
            taps[j], padded[last - j : last - j + n],
            taps[j + 1], padded[last - j - 1 : last - j - 1 + n],
            taps[j + 2], padded[last - j - 2 : last - j - 2 + n],
        )  # fmt: skip
    for j in range(taps.size - taps.size % 3, taps.size):
        _add_scaled(out, taps[j], padded[last - j : last - j + n])


@numba.njit(cache=True, parallel=True)
def _along_y(
    along_x: FloatArray, taps: FloatArray, stride: int, first: int, density: FloatArray
) -> None:
    """Set density[r] to sum_b sum_d taps[b, k + d] along_x[stride · r + first - d, b], the
    x-convolved rasters convolved along y at every stride-th row from the first."""
    k = (taps.shape[1] - 1) // 2
    for r in numba.prange(density.shape[0]):
        row = stride * r + first
        # Offsets d whose source row row - d lies in the raster: lo..hi.
        lo, hi = max(-k, row - along_x.shape[0] + 1), min(k, row)
        out = density[r]
        out[:] = 0.0
        for b in range(taps.shape[0]):
            t = taps[b]
            for d in range(lo, hi - 1, 3):
                _add_three(
                    out,
                    t[k + d], along_x[row - d, b],
                    t[k + d + 1], along_x[row - d - 1, b],
                    t[k + d + 2], along_x[row - d - 2, b],
                )  # fmt: skip
            for d in range(hi + 1 - (hi + 1 - lo) % 3, hi + 1):
                _add_scaled(out, t[k + d], along_x[row - d, b])


@numba.njit(cache=True)
def _add_three(
    out: FloatArray,
    t0: float,
    s0: FloatArray,
    t1: float,
    s1: FloatArray,
    t2: float,
    s2: FloatArray,
) -> None:
    """Add t0 · s0 + t1 · s1 + t2 · s2 to out: three sources per sweep cut the traffic to out."""
    for i in range(out.size):
        out[i] += t0 * s0[i] + t1 * s1[i] + t2 * s2[i]


@numba.njit(cache=True)
def _add_scaled(out: FloatArray, scale: float, values: FloatArray) -> None:
    """Add scale · values to out."""
    for i in range(out.size):
        out[i] += scale * values[i]


def _gaussian_pair_error(rho: float, order: int, r_max: float, n: int = 121) -> float:
    """Return the worst relative error of the order-m expansion over pairs within r_max bandwidths.

    Scans target offsets v on an n × n grid and sub-cell offsets e on a 9 × 9 grid over
    [-rho, rho]² (the corners included); the error depends only on (v, e).
    """
    u = np.linspace(-r_max - rho, r_max + rho, n)
    e = np.linspace(-rho, rho, 9)
    vx, vy, ex, ey = np.meshgrid(u, u, e, e, indexing="ij", sparse=True)
    hx, hy = _hermite(order, vx), _hermite(order, vy)
    tx = [ex**a / math.factorial(a) * hx[a] for a in range(order + 1)]
    ty = [ey**b / math.factorial(b) * hy[b] for b in range(order + 1)]
    approx = sum(tx[a] * ty[b] for a in range(order + 1) for b in range(order + 1 - a))
    exact = np.exp(vx * ex - ex**2 / 2 + vy * ey - ey**2 / 2)
    near = np.hypot(vx - ex, vy - ey) <= r_max
    return float(np.abs(approx / exact - 1.0)[near].max())


# ---------------------------------------------------------------------------------------------
# Quartic: exact polynomial moments inside the disc, point by point on its edge


def _quartic_offsets(c: float, h: float) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Return (inside, edge) masks over offsets -k..k: source cells inside / cut by the disc."""
    k = math.ceil(h / c) + 1
    o = np.arange(-k, k + 1)
    oy, ox = np.meshgrid(o, o, indexing="ij")
    far = np.hypot(np.abs(ox) + 0.5, np.abs(oy) + 0.5) * c
    near = np.hypot(np.maximum(np.abs(ox) - 0.5, 0), np.maximum(np.abs(oy) - 0.5, 0)) * c
    inside = far <= h
    edge = ~inside & (near < h)
    return inside, edge


def _quartic_density(xy: FloatArray, w: FloatArray, window: GridWindow, h: float) -> FloatArray:
    """Return the quartic density (per km²) at the window's cell centres."""
    c = window.cell_size_m
    ny, nx = window.shape
    inside, edge = _quartic_offsets(c, h)
    k = (inside.shape[0] - 1) // 2
    edge_dy, edge_dx = np.nonzero(edge)
    bands = _group_by_band(xy, w, window.ix0, window.iy0, nx, ny, c)
    moments = np.zeros((ny, nx, 9))
    exact_edge = np.zeros((ny, nx))
    _quartic_moments(
        *bands, window.ix0, window.iy0, nx, ny, c, h, edge_dx - k, edge_dy - k, moments, exact_edge
    )
    o = np.arange(-k, k + 1) * c / h
    vy, vx = np.meshgrid(o, o, indexing="ij")
    a = 1.0 - vx**2 - vy**2
    # Coefficients of (a + 2 v·e - |e|²)² on the moments
    # 1, ex, ey, ex², ex·ey, ey², ex·|e|², ey·|e|², |e|⁴.
    kernels = np.stack(
        [a * a, 4 * a * vx, 4 * a * vy, 4 * vx**2 - 2 * a, 8 * vx * vy, 4 * vy**2 - 2 * a,
         -4 * vx, -4 * vy, np.ones_like(a)], axis=-1,
    ) * inside[:, :, None]  # fmt: skip
    ly = scipy.fft.next_fast_len(ny + k + 1, real=True)
    lx = scipy.fft.next_fast_len(nx + k + 1, real=True)
    placed = np.zeros((ly, lx, 9))
    wrap = np.arange(-k, k + 1)
    placed[(wrap % ly)[:, None], (wrap % lx)[None, :]] = kernels
    spectrum = scipy.fft.rfft2(placed, axes=(0, 1), workers=-1)
    spectrum *= scipy.fft.rfft2(moments, s=(ly, lx), axes=(0, 1), workers=-1)
    dense = scipy.fft.irfft2(spectrum.sum(axis=2), s=(ly, lx), workers=-1)[:ny, :nx]
    return (dense + exact_edge) * (PER_KM2 * 3.0 / (math.pi * h * h))


@numba.njit(cache=True)
def _quartic_moments(
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    starts: npt.NDArray[np.int64],
    ix0: int,
    iy0: int,
    nx: int,
    ny: int,
    c: float,
    h: float,
    edge_dx: npt.NDArray[np.int64],
    edge_dy: npt.NDArray[np.int64],
    moments: FloatArray,
    exact_edge: FloatArray,
) -> None:
    """Add each point's nine quartic moments to its cell, and its exact kernel to the cells
    whose disc edge cuts its cell."""
    h2 = h * h
    for i in range(starts[-1]):
        cx = math.floor(x[i] / c)
        cy = math.floor(y[i] / c)
        col, row = cx - ix0, cy - iy0
        if col < 0 or col >= nx:
            continue
        ex = (x[i] - (cx + 0.5) * c) / h
        ey = (y[i] - (cy + 0.5) * c) / h
        r2 = ex * ex + ey * ey
        wi = w[i]
        cell = moments[row, col]
        cell[0] += wi
        cell[1] += wi * ex
        cell[2] += wi * ey
        cell[3] += wi * ex * ex
        cell[4] += wi * ex * ey
        cell[5] += wi * ey * ey
        cell[6] += wi * ex * r2
        cell[7] += wi * ey * r2
        cell[8] += wi * r2 * r2
        for j in range(edge_dx.size):
            tc, tr = col + edge_dx[j], row + edge_dy[j]
            if tc < 0 or tc >= nx or tr < 0 or tr >= ny:
                continue
            dx = (cx + edge_dx[j] + 0.5) * c - x[i]
            dy = (cy + edge_dy[j] + 0.5) * c - y[i]
            q = 1.0 - (dx * dx + dy * dy) / h2
            if q > 0.0:
                exact_edge[tr, tc] += wi * q * q

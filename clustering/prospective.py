"""Prospective hotspotting (Bowers, Johnson & Pease 2004): recent, nearby crime raises the risk.

Every incident of the last `weeks` weeks before the forecast week adds

    1 / ((1 + d) · (1 + t))

to every cell whose centre lies within bandwidth_m of the centre of the incident's cell, where d
is the Chebyshev distance between the two cells in whole cells (0 for the incident's own cell)
and t the whole weeks between the incident's week and the week before the forecast (0 for the
last week, weeks - 1 for the oldest). Older incidents are ignored, and so are those of the
forecast week itself or later.

Because the weight is a product of a space part and a time part, the sum is one convolution: the
incidents are binned with weight 1 / (1 + t), and the binned raster is convolved with the fixed
footprint 1 / (1 + d) (scipy.ndimage, direct, so integer-weighted sums are exact up to rounding).
Weeks are plain integers (consecutive week numbers); `clustering.weeks.week_numbers` turns
timestamps into Monday-based local weeks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.ndimage

from clustering.params import Estimator
from geo.grid import GridWindow
from geo.points import as_xy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def prospective_footprint(cell_size_m: float, bandwidth_m: float) -> FloatArray:
    """Return the (2k+1, 2k+1) space weights 1 / (1 + d), zero beyond the bandwidth.

    An offset counts when the distance between the cell centres is within bandwidth_m (a 1e-9
    tolerance keeps exact multiples inside); d = max(|dx|, |dy|) in cells.
    """
    reach = bandwidth_m / cell_size_m
    k = math.floor(reach + 1e-9)
    o = np.arange(-k, k + 1)
    inside = o[:, None] ** 2 + o[None, :] ** 2 <= reach * reach + 1e-9
    chebyshev = np.maximum(np.abs(o)[:, None], np.abs(o)[None, :])
    return np.where(inside, 1.0 / (1.0 + chebyshev), 0.0)


class ProspectiveHotspots(Estimator):
    """Prospective hotspot risk on the stable grid for the week after the data.

    Parameters: cell_size_m, the grid; bandwidth_m, how far an incident raises the risk (between
    cell centres); weeks, how many weeks before the forecast week count.

    Learned by `fit`: window_ (GridWindow, the incidents' cells padded by the reach), risk_
    ((ny, nx) summed weights), forecast_week_ and n_incidents_ (the incidents that counted).
    """

    window_: GridWindow
    risk_: FloatArray
    forecast_week_: int
    n_incidents_: int

    def __init__(
        self, *, cell_size_m: float = 150.0, bandwidth_m: float = 400.0, weeks: int = 8
    ) -> None:
        self.cell_size_m = cell_size_m
        self.bandwidth_m = bandwidth_m
        self.weeks = weeks

    def fit(self, points: Any, week: Any, forecast_week: int) -> ProspectiveHotspots:
        """Score the cells for forecast_week from points (metres) and their integer week numbers."""
        c, band, weeks = self._checked_params()
        xy = as_xy(points)
        week_arr = np.asarray(week)
        if week_arr.shape != (len(xy),):
            raise ValueError(f"week must have shape ({len(xy)},), got {week_arr.shape}")
        if week_arr.size and not np.issubdtype(week_arr.dtype, np.integer):
            raise ValueError(f"week must hold integer week numbers, got dtype {week_arr.dtype}")
        t = int(forecast_week) - 1 - week_arr.astype(np.int64)
        recent = (t >= 0) & (t < weeks)
        footprint = prospective_footprint(c, band)
        reach = footprint.shape[0] // 2
        if recent.any():
            window = GridWindow.covering(xy[recent, 0], xy[recent, 1], c, pad_cells=reach)
        else:  # nothing recent: a one-cell window of zero risk
            window = GridWindow(c, 0, 0, 1, 1)
        weighted = window.bin(xy[recent, 0], xy[recent, 1], 1.0 / (1.0 + t[recent]))
        # The footprint is symmetric, so correlation and convolution agree.
        self.risk_ = scipy.ndimage.correlate(weighted, footprint, mode="constant", cval=0.0)
        self.window_ = window
        self.forecast_week_ = int(forecast_week)
        self.n_incidents_ = int(recent.sum())
        return self

    def risk_at(self, ix: Any, iy: Any) -> FloatArray:
        """Return the risk of cells (ix, iy); cells outside the window have zero risk."""
        return raster_at(self.risk_, self.window_, ix, iy, fill=0.0)

    def _checked_params(self) -> tuple[float, float, int]:
        c, band = float(self.cell_size_m), float(self.bandwidth_m)
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"cell_size_m must be a positive number of metres, got {c}")
        if not (math.isfinite(band) and band >= 0):
            raise ValueError(f"bandwidth_m must be a number of metres >= 0, got {band}")
        if isinstance(self.weeks, bool) or int(self.weeks) != self.weeks or self.weeks < 1:
            raise ValueError(f"weeks must be a whole number >= 1, got {self.weeks!r}")
        return c, band, int(self.weeks)


def raster_at(raster: FloatArray, window: GridWindow, ix: Any, iy: Any, fill: float) -> FloatArray:
    """Return raster values at cells (ix, iy) of window; `fill` for cells outside it."""
    col = np.asarray(ix, dtype=np.int64) - window.ix0
    row = np.asarray(iy, dtype=np.int64) - window.iy0
    inside = (col >= 0) & (col < window.nx) & (row >= 0) & (row < window.ny)
    out = np.full(col.shape, fill, dtype=np.float64)
    out[inside] = raster[row[inside], col[inside]]
    return out

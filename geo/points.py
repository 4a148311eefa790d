"""Points as plain (n, 2) arrays of metres, the form every hotspot method takes."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def as_xy(points: Any) -> FloatArray:
    """Return points as a float64 array of shape (n, 2): x and y in metres.

    Accepts an (n, 2) array-like, or a GeoSeries / GeoDataFrame of points in a projected CRS.
    """
    geometry = getattr(points, "geometry", None)
    if geometry is not None:
        crs = getattr(geometry, "crs", None)
        if crs is not None and not crs.is_projected:
            raise ValueError(f"points must be in a projected CRS in metres, got {crs.to_string()}")
        if len(geometry) and not (geometry.geom_type == "Point").all():
            raise ValueError("every geometry must be a Point")
        xy = np.column_stack([geometry.x.to_numpy(), geometry.y.to_numpy()]).astype(np.float64)
    else:
        xy = np.asarray(points, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"points must have shape (n, 2), got {xy.shape}")
    if not np.isfinite(xy).all():
        raise ValueError("points contain NaN or infinite coordinates")
    return xy


def as_weights(weights: Any, n: int) -> FloatArray:
    """Return per-point weights as float64 (ones when None), checked for length and sign."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return w


def unique_points(xy: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Return the distinct rows of xy (sorted by x, then y), each row's index into them, and
    the first row of xy holding each distinct point."""
    # +0.0 turns -0.0 into 0.0 (one place); viewed as complex, a row sorts by x then y in one
    # pass, several times faster than np.unique(axis=0). The stable sort keeps the first row first.
    rows = np.ascontiguousarray(np.asarray(xy, dtype=np.float64) + 0.0)
    if rows.ndim != 2 or rows.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {rows.shape}")
    order = np.argsort(rows.view(np.complex128).ravel(), kind="stable")
    ordered = rows[order]
    starts = np.ones(len(rows), dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse, order[starts].astype(np.int64)

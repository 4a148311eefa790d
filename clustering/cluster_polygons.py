"""Hotspot polygons from cluster labels: each cluster's buffered concave hull and its statistics."""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd  # geopandas' own table library; used here for time zones
import shapely

from clustering.weeks import DEFAULT_TZ
from geo.points import as_xy

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_WEEKDAYS = 7
_HOURS = 24


def cluster_polygons(
    points: Any,
    labels: Any,
    *,
    eps_m: float,
    categories: Any = None,
    times: Any = None,
    buffer_fraction: float = 0.25,
    concave_ratio: float = 0.3,
    tz: str = DEFAULT_TZ,
    crs: Any = None,
) -> gpd.GeoDataFrame:
    """Return one row per cluster (label >= 0, ordered by label): polygon, counts and times.

    The polygon is the concave hull of the cluster's points (shapely.concave_hull with
    concave_ratio) buffered by buffer_fraction * eps_m, so clusters of one to three points or
    of collinear points, whose hulls are points or lines, still become polygons.

    Columns: cluster, count, counts_by_category (code -> count, when categories are given),
    first_time, last_time, busiest_weekday (0 = Monday) and busiest_hour (0-23), all in tz
    (when times are given: naive datetime64 are taken as UTC), area_m2, density_per_km2
    (count per km² of polygon) and geometry, in crs (by default the points' CRS).
    Ties for the busiest weekday or hour go to the smallest value.
    """
    xy = as_xy(points)
    labels_arr = _checked_labels(labels, len(xy))
    _check_shape_params(eps_m, buffer_fraction, concave_ratio)
    if crs is None:
        crs = getattr(points, "crs", None)

    members = np.flatnonzero(labels_arr >= 0)
    # Members grouped by cluster, each group in input order, so every result is deterministic.
    order = members[np.argsort(labels_arr[members], kind="stable")]
    cluster_ids, counts = np.unique(labels_arr[order], return_counts=True)
    group = np.repeat(np.arange(len(cluster_ids), dtype=np.int64), counts)

    geometry = _hulls(xy[order], group, buffer_fraction * eps_m, concave_ratio)
    area_m2 = np.asarray(shapely.area(geometry), dtype=np.float64)
    columns: dict[str, Any] = {"cluster": cluster_ids.astype(np.int64), "count": counts}
    if categories is not None:
        columns["counts_by_category"] = _category_counts(categories, len(xy), order, group)
    if times is not None:
        columns.update(_time_columns(times, len(xy), order, group, counts, tz))
    columns["area_m2"] = area_m2
    columns["density_per_km2"] = counts / (area_m2 / 1e6)
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=crs), crs=crs)


def _checked_labels(labels: Any, n: int) -> IntArray:
    """Return labels as int64, checked to be one integer per point."""
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _check_shape_params(eps_m: float, buffer_fraction: float, concave_ratio: float) -> None:
    """Raise ValueError unless the polygon parameters make sense."""
    if not (math.isfinite(eps_m) and eps_m > 0):
        raise ValueError(f"eps_m must be a positive number of metres, got {eps_m}")
    if not (math.isfinite(buffer_fraction) and buffer_fraction > 0):
        # Without a buffer, clusters of collinear points would have no area.
        raise ValueError(f"buffer_fraction must be positive, got {buffer_fraction}")
    if not 0.0 <= concave_ratio <= 1.0:
        raise ValueError(f"concave_ratio must lie in [0, 1], got {concave_ratio}")


def _hulls(
    member_xy: FloatArray, group: IntArray, buffer_m: float, concave_ratio: float
) -> npt.NDArray[np.object_]:
    """Return each group's concave hull buffered by buffer_m, as an array of polygons."""
    if len(group) == 0:
        return np.empty(0, dtype=object)
    multipoints = shapely.multipoints(member_xy, indices=group)
    hulls = shapely.concave_hull(multipoints, ratio=concave_ratio)
    polygons = np.asarray(shapely.buffer(hulls, buffer_m), dtype=object)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():  # GEOS buffers are valid; this guards against a future regression
        polygons[invalid] = shapely.make_valid(polygons[invalid])
    return polygons


def _category_counts(
    categories: Any, n: int, order: IntArray, group: IntArray
) -> npt.NDArray[np.object_]:
    """Return, per cluster, a dict of category code -> number of its points, codes sorted."""
    codes = np.asarray(categories)
    if codes.shape != (n,):
        raise ValueError(f"categories must have shape ({n},), got {codes.shape}")
    n_groups = int(group[-1]) + 1 if len(group) else 0  # groups are numbered 0..k-1, sorted
    values, which = np.unique(codes[order], return_inverse=True)
    table = np.bincount(
        group * len(values) + which.ravel(), minlength=n_groups * len(values)
    ).reshape(n_groups, len(values))
    names = values.tolist()  # plain str / int keys, not numpy scalars
    counts = np.empty(n_groups, dtype=object)  # an object column even when there are no clusters
    for i, row in enumerate(table):
        counts[i] = {names[j]: int(row[j]) for j in np.flatnonzero(row)}
    return counts


def _time_columns(
    times: Any, n: int, order: IntArray, group: IntArray, counts: IntArray, tz: str
) -> dict[str, Any]:
    """Return first_time, last_time, busiest_weekday and busiest_hour per cluster, in tz."""
    stamps = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    if len(stamps) != n:
        raise ValueError(f"times must have {n} values, got {len(stamps)}")
    if stamps.hasnans:
        raise ValueError("times contain missing values")
    local = stamps[order].tz_convert(tz)
    by_time = np.lexsort((local.asi8, group))  # within each cluster, earliest first
    ends = np.cumsum(counts)
    starts = ends - counts
    weekday = np.asarray(local.day_of_week, dtype=np.int64)
    hour = np.asarray(local.hour, dtype=np.int64)
    return {
        "first_time": local[by_time[starts]],
        "last_time": local[by_time[ends - 1]],
        "busiest_weekday": _busiest(group, weekday, len(counts), _WEEKDAYS),
        "busiest_hour": _busiest(group, hour, len(counts), _HOURS),
    }


def _busiest(group: IntArray, value: IntArray, n_groups: int, n_values: int) -> IntArray:
    """Return per group the most frequent value in 0..n_values-1, the smallest on a tie."""
    table = np.bincount(group * n_values + value, minlength=n_groups * n_values)
    return table.reshape(n_groups, n_values).argmax(axis=1).astype(np.int64)

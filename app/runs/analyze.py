"""`est analyze`: a hotspot method on a file, without a database, to a GeoJSON file.

The file is read with the importer's readers and mapping files, projected to a metric CRS
(the UTM zone of the data unless one is given), and handed to one of the clustering methods.
The grid methods keep to a study area, as a run keeps to its kommun: the area given, else the
data's own extent, the cells near an incident (within the distance band for Gi*, three
bandwidths for kernel density, where a lone incident's density is down to 1% of its peak). So
a stray point far from the rest adds the few cells around it, not every cell of a bounding box
stretched out to it. The result is written as RFC 7946 GeoJSON: lon/lat, no `crs` member.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy import ndimage

from app.core.errors import InvalidInput
from app.ingest.batch import RawBatch
from app.ingest.mapping import Mapping
from app.ingest.readers import ReadTotals, read_batches
from clustering.cluster_polygons import cluster_polygons
from clustering.dbscan import DBSCAN
from clustering.gistar import GiStar
from clustering.kde import KernelDensity, arcgis_bandwidth
from geo.crs import LONLAT, metric_crs_for, parse_crs, to_lonlat, transform
from geo.geojson import feature_collection, geometries
from geo.grid import GridWindow, cell_polygons

if TYPE_CHECKING:
    from pyproj import CRS

Method = Literal["dbscan", "kde", "gistar"]
METHODS: tuple[Method, ...] = ("dbscan", "kde", "gistar")
KDE_EXTENT_BANDWIDTHS = 3.0  # a Gaussian is down to 1.1% of its peak at three bandwidths
MAX_WINDOW_CELLS = 25_000_000  # about 2 GB of kernel density rasters, 10 s on one core


@dataclass
class Points:
    """The usable points of a file in a metric CRS, with their times and categories.

    `tz` is the file's time zone (the mapping's, or the one given, else EST_TIMEZONE): hours,
    weekdays and weeks computed from these points are its local ones. `left_out` counts the rows
    not used, by reason (`skipped` is their total without the rows the mapping calls no
    incident).
    """

    xy: npt.NDArray[np.float64]
    time: npt.NDArray[np.datetime64]
    category: npt.NDArray[np.object_]
    crs: CRS
    tz: str
    read: int
    skipped: int
    left_out: dict[str, int] = field(default_factory=dict)


def read_points(
    path: Path,
    mapping: Mapping,
    *,
    default_timezone: str,
    crs: str | None = None,
    timezone: str | None = None,
    metric_crs: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Points:
    """Read a file's points that have a location and a time (within since/until).

    The time zone is `timezone`, else the mapping's, else `default_timezone` (EST_TIMEZONE).
    """
    xs, ys, times, cats = [], [], [], []
    source_crs: str | None = None
    totals = ReadTotals()
    skipped = 0
    left_out: Counter[str] = Counter()
    batches = read_batches(
        path,
        mapping,
        crs_override=crs,
        timezone_override=timezone,
        default_timezone=default_timezone,
    )
    for read in batches:
        totals.add(read)
        b = read.batch
        source_crs = b.crs
        bad = {e.row for e in b.errors}
        keep = np.isfinite(b.x) & np.isfinite(b.y) & ~np.isnat(b.occurred_from)
        keep &= ~np.isin(b.row, list(bad))
        in_dates = np.ones(len(keep), dtype=bool)
        if since is not None:
            in_dates &= b.occurred_from >= np.datetime64(since.replace(tzinfo=None), "us")
        if until is not None:
            in_dates &= b.occurred_from < np.datetime64(until.replace(tzinfo=None), "us")
        left_out += _left_out(b, keep, in_dates, bad)
        keep &= in_dates
        skipped += int((~keep).sum())
        xs.append(b.x[keep])
        ys.append(b.y[keep])
        times.append(b.occurred_from[keep])
        cats.append(b.category[keep])
    if source_crs is None or not xs or sum(len(x) for x in xs) == 0:
        raise InvalidInput(f"{path} holds no record with a location and a time")
    x, y = np.concatenate(xs), np.concatenate(ys)
    source = parse_crs(source_crs)
    target = metric_crs_for(x, y, source, metric_crs)
    mx, my = transform(x, y, source, target)
    left_out.update(
        {f"the mapping calls {k!r} no incident": n for k, n in totals.not_incident.items()}
    )
    return Points(
        xy=np.column_stack([mx, my]),
        time=np.concatenate(times),
        category=np.concatenate(cats),
        crs=target,
        tz=timezone or mapping.time.timezone or default_timezone,
        read=totals.rows_read,
        skipped=skipped,
        left_out=dict(left_out.most_common()),
    )


def _left_out(
    batch: RawBatch, usable: npt.NDArray[np.bool_], in_dates: npt.NDArray[np.bool_], bad: set[int]
) -> Counter[str]:
    """Why each row of a batch is not used, one reason a row: its first error (with the value
    left out, so that equal reasons add up), no location, no time, or outside --from/--to."""
    reasons: Counter[str] = Counter()
    first: dict[int, str] = {}
    for error in batch.errors:
        reason = re.sub(r"'[^']*'", "…", error.reason)
        first.setdefault(error.row, f"{error.field}: {reason}")
    reasons.update(first.values())
    clean = ~np.isin(batch.row, list(bad))
    no_place = clean & ~(np.isfinite(batch.x) & np.isfinite(batch.y))
    reasons["no location"] += int(no_place.sum())
    reasons["no time"] += int((clean & ~no_place & np.isnat(batch.occurred_from)).sum())
    reasons["outside --from/--to"] += int((usable & ~in_dates).sum())
    return +reasons  # drop the zero counts


@dataclass
class Analysis:
    """A method's result in lon/lat, and the study area it kept to, in words."""

    result: gpd.GeoDataFrame
    kept_to: str


def analyze(
    points: Points,
    method: Method,
    *,
    eps_m: float = 150.0,
    min_samples: int = 10,
    cell_size_m: float = 100.0,
    bandwidth_m: float | None = None,
    distance_band_m: float = 300.0,
    area: shapely.Geometry | None = None,
) -> Analysis:
    """Run one method within `area` (in the points' CRS; None: the data's own extent) and
    return its result in lon/lat (RFC 7946)."""
    xy = points.xy
    if method == "dbscan":
        inside = np.ones(len(xy), dtype=bool)
        if area is not None:
            inside = shapely.contains_xy(area, xy[:, 0], xy[:, 1])
        model = DBSCAN(eps_m=eps_m, min_samples=min_samples).fit(xy[inside])
        result = cluster_polygons(
            xy[inside],
            model.labels_,
            eps_m=eps_m,
            categories=points.category[inside],
            times=points.time[inside],
            crs=points.crs,
            tz=points.tz,
        )
        if "counts_by_category" in result:
            result["counts_by_category"] = result["counts_by_category"].map(
                lambda d: {str(k): int(v) for k, v in d.items()}
            )
        kept_to = "every point" if area is None else f"the {int(inside.sum())} points in the area"
    elif method == "kde":
        h = bandwidth_m if bandwidth_m is not None else arcgis_bandwidth(xy)
        study, kept_to = _study_area(
            points, area, cell_size_m, KDE_EXTENT_BANDWIDTHS * h, "three bandwidths"
        )
        _check_window(points, study, cell_size_m, math.ceil(5 * h / cell_size_m) + 1)
        kde = KernelDensity(cell_size_m=cell_size_m, bandwidth_m=h).fit(xy, area=study)
        result = kde.to_cells().set_crs(points.crs, allow_override=True)
    elif method == "gistar":
        study, kept_to = _study_area(
            points, area, cell_size_m, distance_band_m, "the distance band"
        )
        _check_window(points, study, cell_size_m, 0)
        gi = GiStar(cell_size_m=cell_size_m, distance_band_m=distance_band_m).fit(xy, area=study)
        cells = gi.to_cells()
        # As a run publishes them: the cells with incidents, and empty ones in a significant bin.
        result = cells[(cells["count"] > 0) | (cells["bin"] != 0)]
        result = result.set_crs(points.crs, allow_override=True)
    else:
        raise InvalidInput(f"unknown method {method!r}: use dbscan, kde or gistar")
    return Analysis(result.to_crs(LONLAT), kept_to)


def _study_area(
    points: Points, area: shapely.Geometry | None, cell_size_m: float, reach_m: float, why: str
) -> tuple[shapely.Geometry, str]:
    """The area given, else the data's own extent; and which it is, in words."""
    if area is not None:
        return area, "the area given"
    extent = data_extent(points, cell_size_m, reach_m)
    return extent, f"the cells within {reach_m:.0f} m ({why}) of an incident"


def data_extent(points: Points, cell_size_m: float, reach_m: float) -> shapely.Geometry:
    """The cells whose centre lies within reach_m of the centre of a cell holding an incident,
    as one (multi)polygon in the points' CRS: the data's own extent."""
    x, y = points.xy[:, 0], points.xy[:, 1]
    pad = math.ceil(reach_m / cell_size_m)
    bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    _check_window(points, shapely.box(*bounds), cell_size_m, pad)
    window = GridWindow.from_bounds(bounds, cell_size_m, pad_cells=pad)
    empty = window.bin(x, y) == 0
    near = ndimage.distance_transform_edt(empty) * cell_size_m <= reach_m
    ix, iy = window.cell_keys()
    return shapely.coverage_union_all(cell_polygons(ix[near], iy[near], cell_size_m))


def _check_window(points: Points, area: shapely.Geometry, cell_size_m: float, pad: int) -> None:
    """Refuse a grid too large to compute, saying where the points lie and what to change."""
    minx, miny, maxx, maxy = area.bounds
    nx = math.ceil((maxx - minx) / cell_size_m) + 2 * pad + 1
    ny = math.ceil((maxy - miny) / cell_size_m) + 2 * pad + 1
    if nx * ny <= MAX_WINDOW_CELLS:
        return
    px, py = points.xy[:, 0], points.xy[:, 1]
    lon, lat = to_lonlat(np.array([px.min(), px.max()]), np.array([py.min(), py.max()]), points.crs)
    raise InvalidInput(
        f"the study area spans {(maxx - minx) / 1000:.0f} × {(maxy - miny) / 1000:.0f} km, "
        f"{nx * ny / 1e6:.0f} million cells of {cell_size_m:g} m (at most "
        f"{MAX_WINDOW_CELLS / 1e6:.0f} million); the points lie between lon {lon[0]:.3f} and "
        f"{lon[1]:.3f}, lat {lat[0]:.3f} and {lat[1]:.3f}: give --area (a kommun's boundary, "
        "say) or a larger --cell-size-m, or leave out the points far from the others"
    )


def write_geojson(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Write a result in lon/lat as RFC 7946 GeoJSON (no `crs` member), replacing the file."""
    properties = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for column in properties.columns:
        if pd.api.types.is_datetime64_any_dtype(properties[column]):
            properties[column] = properties[column].map(
                lambda t: t.isoformat() if pd.notna(t) else None
            )
    features = (
        {"type": "Feature", "geometry": geometry, "properties": values}
        for geometry, values in zip(
            geometries(frame.geometry.values), properties.to_dict("records"), strict=True
        )
    )
    path.write_bytes(feature_collection(features))

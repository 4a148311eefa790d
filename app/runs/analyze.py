"""`est analyze`: a hotspot method on a file, without a database, to a GeoJSON file.

The file is read with the importer's readers and mapping files, projected to a metric CRS
(the UTM zone of the data unless one is given), and handed to one of the clustering methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from app.core.errors import InvalidInput
from app.ingest.mapping import Mapping
from app.ingest.readers import ReadTotals, read_batches
from clustering.cluster_polygons import cluster_polygons
from clustering.dbscan import DBSCAN
from clustering.gistar import GiStar
from clustering.kde import KernelDensity
from geo.crs import LONLAT, metric_crs_for, parse_crs, transform

if TYPE_CHECKING:
    from pyproj import CRS

Method = Literal["dbscan", "kde", "gistar"]
METHODS: tuple[Method, ...] = ("dbscan", "kde", "gistar")


@dataclass
class Points:
    """The usable points of a file in a metric CRS, with their times and categories.

    `tz` is the file's time zone (the mapping's, or the one given, else EST_TIMEZONE): hours,
    weekdays and weeks computed from these points are its local ones.
    """

    xy: npt.NDArray[np.float64]
    time: npt.NDArray[np.datetime64]
    category: npt.NDArray[np.object_]
    crs: CRS
    tz: str
    read: int
    skipped: int


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
        if since is not None:
            keep &= b.occurred_from >= np.datetime64(since.replace(tzinfo=None), "us")
        if until is not None:
            keep &= b.occurred_from < np.datetime64(until.replace(tzinfo=None), "us")
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
    return Points(
        xy=np.column_stack([mx, my]),
        time=np.concatenate(times),
        category=np.concatenate(cats),
        crs=target,
        tz=timezone or mapping.time.timezone or default_timezone,
        read=totals.rows_read,
        skipped=skipped,
    )


def analyze(
    points: Points,
    method: Method,
    *,
    eps_m: float = 150.0,
    min_samples: int = 10,
    cell_size_m: float = 100.0,
    bandwidth_m: float | None = None,
    distance_band_m: float = 300.0,
) -> gpd.GeoDataFrame:
    """Run one method and return its result in lon/lat (RFC 7946)."""
    if method == "dbscan":
        model = DBSCAN(eps_m=eps_m, min_samples=min_samples).fit(points.xy)
        result = cluster_polygons(
            points.xy,
            model.labels_,
            eps_m=eps_m,
            categories=points.category,
            times=points.time,
            crs=points.crs,
            tz=points.tz,
        )
        if "counts_by_category" in result:
            result["counts_by_category"] = result["counts_by_category"].map(
                lambda d: {str(k): int(v) for k, v in d.items()}
            )
    elif method == "kde":
        kde = KernelDensity(cell_size_m=cell_size_m, bandwidth_m=bandwidth_m).fit(points.xy)
        result = kde.to_cells().set_crs(points.crs, allow_override=True)
    elif method == "gistar":
        gi = GiStar(cell_size_m=cell_size_m, distance_band_m=distance_band_m).fit(points.xy)
        result = gi.to_cells().set_crs(points.crs, allow_override=True)
    else:
        raise InvalidInput(f"unknown method {method!r}: use dbscan, kde or gistar")
    return result.to_crs(LONLAT)


def write_geojson(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Write a result as GeoJSON (lon/lat), replacing the file."""
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].map(lambda t: t.isoformat() if pd.notna(t) else None)
    path.unlink(missing_ok=True)
    frame.to_file(path, driver="GeoJSON")

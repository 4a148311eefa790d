"""What a run reads: the area, its incidents in the weeks the methods need, the input's digest,
the exact counts of the area figures and the previous published run's hotspots and forecast.

Runs read as the system role (est_system, which row-level security lets read every area): a
run is the deployment's own work, and what it publishes is then served by the access rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely import wkb as shapely_wkb
from sqlalchemy import Connection, text

from app.access.privacy import Period
from app.core.errors import NotFound
from app.db.reference import group_categories
from app.runs.figures import GroupCounts, figure_periods
from app.runs.profiles import ProfileSettings
from clustering.weeks import week_numbers

NO_PLACE = ("area_centroid", "unknown")  # points that stand for an area, not a place


@dataclass(frozen=True)
class AreaRow:
    """An area as a run needs it."""

    id: int
    code: str
    name: str
    geom: shapely.Geometry


def load_area(conn: Connection, code: str) -> AreaRow:
    """The area by code, with its polygon in the storage CRS."""
    row = conn.execute(
        text("SELECT id, code, name, ST_AsBinary(geom) AS wkb FROM est.area WHERE code = :c"),
        {"c": code},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no area {code!r}")
    return AreaRow(row.id, row.code, row.name, shapely_wkb.loads(bytes(row.wkb)))


def group_codes(conn: Connection, group: str) -> list[str] | None:
    """The categories of a profile's group (None for all categories)."""
    return None if group == "all" else group_categories(conn, group)


def input_digest(
    conn: Connection, area_id: int, since: datetime, until: datetime, profile_version: int
) -> str:
    """A digest of every incident of the area that a run of [since, until) may read, deleted
    ones included: any new, changed or deleted incident changes it."""
    digest = conn.scalar(
        text("""
        SELECT md5(:version || '|' || coalesce(string_agg(
                   i.id || ':' || extract(epoch FROM i.updated_at) || ':'
                   || coalesce(extract(epoch FROM i.deleted_at)::text, ''), ',' ORDER BY i.id), ''))
        FROM est.incident i JOIN est.incident_area ia ON ia.incident_id = i.id
        WHERE ia.area_id = :area AND i.occurred_from >= :since AND i.occurred_from < :until
    """),
        {"area": area_id, "since": since, "until": until, "version": str(profile_version)},
    )
    return str(digest)


@dataclass(frozen=True)
class Incidents:
    """The incidents a run uses, and how many it left out and why."""

    xy: npt.NDArray[np.float64]
    time: npt.NDArray[np.datetime64]
    week: npt.NDArray[np.int64]
    category: npt.NDArray[np.object_]
    left_out: dict[str, int]


def load_incidents(
    conn: Connection,
    area_id: int,
    since: datetime,
    until: datetime,
    settings: ProfileSettings,
    tz: str,
) -> Incidents:
    """The area's incidents of [since, until) in the profile's categories, with a place and
    a time known to within the profile's `max_interval_days`."""
    codes = group_codes(conn, settings.category_group)
    rows = conn.execute(
        text("""
        SELECT ST_X(i.geom) AS x, ST_Y(i.geom) AS y,
               (extract(epoch FROM i.occurred_from) * 1000000)::bigint AS t, i.category_code,
               i.location_precision::text AS precision, c.sensitive,
               coalesce(i.occurred_to - i.occurred_from
                        > make_interval(days => CAST(:max_days AS integer)), false) AS vague
        FROM est.incident i
        JOIN est.incident_area ia ON ia.incident_id = i.id AND ia.area_id = :area
        JOIN est.category c ON c.code = i.category_code
        WHERE i.deleted_at IS NULL AND i.occurred_from >= :since AND i.occurred_from < :until
          AND (CAST(:codes AS text[]) IS NULL OR i.category_code = ANY(CAST(:codes AS text[])))
        ORDER BY i.id
    """),
        {
            "area": area_id,
            "since": since,
            "until": until,
            "codes": codes,
            "max_days": settings.max_interval_days,
        },
    ).all()
    names = ["x", "y", "t", "category", "precision", "sensitive", "vague"]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    frame = pd.DataFrame({k: list(v) for k, v in zip(names, columns, strict=True)})
    sensitive = frame["sensitive"].astype(bool).to_numpy()
    centroid = (frame["precision"] == "area_centroid").to_numpy()
    unknown = (frame["precision"] == "unknown").to_numpy()
    vague = frame["vague"].astype(bool).to_numpy()
    keep = ~sensitive & ~unknown
    if settings.exclude_area_centroids:
        keep &= ~centroid
    left_out = {
        "sensitive": int(sensitive.sum()),
        "area_centroid": int((centroid & ~sensitive).sum())
        if settings.exclude_area_centroids
        else 0,
        "unknown_location": int((unknown & ~sensitive).sum()),
        "long_interval": int((vague & keep).sum()),
    }
    keep &= ~vague
    used = frame[keep]
    times = pd.to_datetime(used["t"].to_numpy(dtype=np.int64), unit="us", utc=True)
    return Incidents(
        xy=used[["x", "y"]].to_numpy(dtype=np.float64).reshape(-1, 2),
        time=times.tz_localize(None).to_numpy(dtype="datetime64[us]"),
        week=week_numbers(times, tz).astype(np.int64),
        category=used["category"].to_numpy(dtype=object),
        left_out=left_out,
    )


def figure_counts(
    conn: Connection, area_id: int, period: Period, settings: ProfileSettings, tz: str
) -> list[GroupCounts]:
    """Exact counts per category group for the figures' periods (the run's filters: no
    sensitive categories, places only unless the profile keeps area centroids)."""
    periods = figure_periods(period)
    spans = sorted({p for ps in periods.values() for p in ps}, key=lambda p: p.first_day)
    kept = ["exact", "address", "street"]
    if not settings.exclude_area_centroids:
        kept.append("area_centroid")
    rows = conn.execute(
        text("""
        WITH span AS (
            SELECT s.first_day, (s.first_day::timestamp AT TIME ZONE :tz) AS t_from,
                   (s.end_day::timestamp AT TIME ZONE :tz) AS t_to
            FROM unnest(CAST(:firsts AS date[]), CAST(:ends AS date[])) AS s(first_day, end_day)
        )
        SELECT m.group_code, span.first_day, count(*)::integer AS n
        FROM span
        JOIN est.incident i ON i.occurred_from >= span.t_from AND i.occurred_from < span.t_to
        JOIN est.incident_area ia ON ia.incident_id = i.id AND ia.area_id = :area
        JOIN est.category c ON c.code = i.category_code AND NOT c.sensitive
        JOIN est.category_group_member m ON m.category_code = i.category_code
        WHERE i.deleted_at IS NULL AND i.location_precision::text = ANY(:kept)
        GROUP BY 1, 2
    """),
        {
            "tz": tz,
            "area": area_id,
            "kept": kept,
            "firsts": [p.first_day for p in spans],
            "ends": [p.end_day for p in spans],
        },
    ).all()
    counts: dict[tuple[str, date], int] = {(r.group_code, r.first_day): r.n for r in rows}

    def n(group: str, p: Period) -> int:
        return counts.get((group, p.first_day), 0)

    return [
        GroupCounts(
            group,
            n(group, periods["this_period"][0]),
            n(group, periods["previous_period"][0]),
            n(group, periods["same_period_last_year"][0]),
            tuple(n(group, p) for p in periods["baseline"]),
        )
        for group in all_group_codes(conn)
    ]


def all_group_codes(conn: Connection) -> list[str]:
    """Every category group, in code order."""
    return list(conn.scalars(text("SELECT code FROM est.category_group ORDER BY code")))


def previous_hotspots(conn: Connection, run_id: int | None, srid: int) -> gpd.GeoDataFrame | None:
    """The DBSCAN hotspots (not the gone ones) of a published run: id and polygon."""
    if run_id is None:
        return None
    rows = conn.execute(
        text(
            "SELECT hotspot_key, ST_AsBinary(geom) AS wkb FROM est.hotspot "
            "WHERE run_id = :run AND method = 'dbscan' AND change_label <> 'gone' "
            "AND geom IS NOT NULL ORDER BY hotspot_key"
        ),
        {"run": run_id},
    ).all()
    return gpd.GeoDataFrame(
        {"id": [r.hotspot_key for r in rows]},
        geometry=[shapely_wkb.loads(bytes(r.wkb)) for r in rows],
        crs=srid,
    )


def flagged_forecast(conn: Connection, run_id: int) -> tuple[int, Any, Any]:
    """The flagged cells of a run's forecast: cell size and their ix, iy."""
    rows = conn.execute(
        text("SELECT cell_size_m, ix, iy FROM est.forecast_cell WHERE run_id = :run AND flagged"),
        {"run": run_id},
    ).all()
    size = rows[0].cell_size_m if rows else 0
    return (
        size,
        np.array([r.ix for r in rows], dtype=np.int64),
        np.array([r.iy for r in rows], dtype=np.int64),
    )

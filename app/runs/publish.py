"""Writing a run's results under its id, and publishing it by switching layer_current.

Everything of one run is written in the run's transaction, and layer_current is switched in
that same transaction, so readers see the old lägesbild or the new one, never a mix. A run of
an earlier week than the one published (a recomputed history) is stored and readable by week
or run id, but does not take layer_current back in time.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from app.runs.compute import RunResult
from app.runs.viewer import ViewerLayers

PUBLISHED_LAYERS = ("hotspots", "density", "gistar", "emerging", "forecast", "viewer", "figures")


def layer_names(period_kind: str) -> list[str]:
    """The layer_current names of a run: the week's as they are, a tertial's prefixed."""
    if period_kind == "week":
        return list(PUBLISHED_LAYERS)
    return [f"{period_kind}.{layer}" for layer in PUBLISHED_LAYERS]


def _multi(geometry: Any) -> bytes | None:
    if geometry is None or shapely.is_empty(geometry):
        return None
    if geometry.geom_type == "Polygon":
        geometry = shapely.MultiPolygon([geometry])
    return bytes(shapely.to_wkb(geometry))


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _stats(row: Any) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()

    stats = {
        "counts_by_category": {str(k): int(v) for k, v in dict(row.counts_by_category).items()},
        "weekly": [int(v) for v in row.weekly],
        "weekly_by_category": dict(row.weekly_by_category),
        "first_time": when(row.first_time),
        "last_time": when(row.last_time),
        "busiest_weekday": int(row.busiest_weekday),
        "busiest_hour": int(row.busiest_hour),
        "density_per_km2": float(row.density_per_km2),
    }
    for name in ("area_change", "iou"):
        value = getattr(row, name, None)
        stats[name] = None if value is None or pd.isna(value) else float(value)
    merged = getattr(row, "merged_from", ())
    split = getattr(row, "split_from", None)
    stats["merged_from"] = list(merged) if isinstance(merged, tuple | list) else []
    stats["split_from"] = None if split is None or pd.isna(split) else str(split)
    return stats


def write_results(
    conn: Connection, run_id: int, srid: int, result: RunResult, viewer: ViewerLayers
) -> None:
    """Insert every layer of the run under its id."""
    hotspots = []
    for row, (viewer_geom, viewer_count) in zip(
        result.hotspots.itertuples(), viewer.hotspots, strict=True
    ):
        hotspots.append(
            {
                "run": run_id,
                "key": row.id,
                "label": str(row.change),
                "wkb": _multi(row.geometry),
                "n": int(row.count),
                "area": float(row.area_m2),
                "stats": _json(_stats(row)),
                "vwkb": _multi(viewer_geom),
                "vn": viewer_count,
            }
        )
    for row in result.gone.itertuples():
        hotspots.append(
            {
                "run": run_id,
                "key": row.id,
                "label": "gone",
                "wkb": _multi(row.geometry),
                "n": 0,
                "area": float(row.area_m2),
                "stats": _json({"reason": row.reason, "merged_into": _plain(row.merged_into)}),
                "vwkb": None,
                "vn": None,
            }
        )
    if hotspots:
        conn.execute(
            text("""
            INSERT INTO est.hotspot (run_id, hotspot_key, method, change_label, geom,
                                     incident_count, area_m2, stats, viewer_geom, viewer_count)
            VALUES (:run, :key, 'dbscan', CAST(:label AS est.change_label),
                    ST_GeomFromWKB(:wkb, :srid), :n, :area, CAST(:stats AS jsonb),
                    ST_GeomFromWKB(:vwkb, :srid), :vn)
        """),
            [{**h, "srid": srid} for h in hotspots],
        )
    size = result.parameters
    _cells(
        conn,
        "est.density_cell",
        run_id,
        int(size["kde"]["cell_size_m"]),
        result.density,
        ["density", "isopleth"],
    )
    _cells(
        conn,
        "est.gistar_cell",
        run_id,
        int(size["gistar"]["cell_size_m"]),
        result.gistar.rename(columns={"count": "incident_count"}),
        ["incident_count", "z", "p", "p_adjusted", "bin"],
    )
    _cells(
        conn,
        "est.emerging_cell",
        run_id,
        int(size["emerging"]["cell_size_m"]),
        result.emerging,
        ["pattern", "trend_z", "trend_p", "hot_steps", "cold_steps"],
    )
    _cells(
        conn,
        "est.forecast_cell",
        run_id,
        int(size["forecast"]["cell_size_m"]),
        result.forecast,
        ["risk", "rank", "flagged"],
    )
    if len(viewer.cells):
        columns = ["layer", "cell_size_m", "ix", "iy", "shown", "value", "bin", "pattern"]
        cells = viewer.cells[columns].astype(
            {"cell_size_m": "int64", "ix": "int64", "iy": "int64", "shown": "Int64", "bin": "Int64"}
        )
        _copy(conn, "est.viewer_cell", run_id, cells)


def _cells(
    conn: Connection,
    table: str,
    run_id: int,
    cell_size_m: int,
    frame: pd.DataFrame,
    columns: list[str],
) -> None:
    if not len(frame):
        return
    out = frame[["ix", "iy", *columns]].copy()
    out.insert(0, "cell_size_m", cell_size_m)
    _copy(conn, table, run_id, out)


def _copy(conn: Connection, table: str, run_id: int, frame: pd.DataFrame) -> None:
    """COPY the rows of a frame (plus run_id) into a table: cells are many, COPY is quick."""
    names = ["run_id", *frame.columns]
    raw = conn.connection.driver_connection
    assert raw is not None
    columns = [_column(frame[name]) for name in frame.columns]
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for values in zip(itertools.repeat(run_id), *columns):
            copy.write_row(values)


def _column(series: pd.Series) -> list[Any]:
    """A column as plain Python values, missing ones (NaN, NA, None) as None: made column by
    column, since a run writes hundreds of thousands of cells."""
    numpy_dtype = isinstance(series.dtype, np.dtype)  # not pandas' nullable Int64 and such
    if numpy_dtype and series.dtype.kind in "iub":
        return list(series.to_numpy().tolist())
    if numpy_dtype and series.dtype.kind == "f":
        values = series.to_numpy()
        plain = values.tolist()
        return [None if v != v else v for v in plain] if np.isnan(values).any() else plain
    return [_plain(v) for v in series.astype(object).tolist()]


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_figures(
    conn: Connection, run_id: int, audience: str, figures: list[dict[str, Any]]
) -> None:
    """Insert the area figures of one audience."""
    if not figures:
        return
    conn.execute(
        text("""
        INSERT INTO est.area_figure (run_id, audience, group_code, this_week, last_week,
                                     same_week_last_year, mean_12_weeks, tests)
        VALUES (:run, :audience, :group_code, :this_week, :last_week, :same_week_last_year,
                :mean_12_weeks, CAST(:tests AS jsonb))
    """),
        [{**f, "run": run_id, "audience": audience, "tests": _json(f["tests"])} for f in figures],
    )


def publish(conn: Connection, run_id: int) -> bool:
    """Mark the run published and point layer_current at it, unless a later period of its kind
    is published for its area and profile; return whether layer_current now points at it."""
    run = conn.execute(
        text(
            "UPDATE est.hotspot_run SET published_at = clock_timestamp() WHERE id = :id "
            "RETURNING area_id, profile_id, period_kind, window_end"
        ),
        {"id": run_id},
    ).one()
    newer = conn.scalar(
        text("""
        SELECT 1 FROM est.layer_current c JOIN est.hotspot_run r ON r.id = c.run_id
        WHERE c.area_id = :area AND c.profile_id = :profile AND r.period_kind = :kind
          AND r.window_end > :end
        LIMIT 1
    """),
        {
            "area": run.area_id,
            "profile": run.profile_id,
            "kind": run.period_kind,
            "end": run.window_end,
        },
    )
    if newer:
        return False
    conn.execute(
        text("""
        INSERT INTO est.layer_current (area_id, profile_id, layer, run_id, published_at)
        SELECT :area, :profile, layer, :run, clock_timestamp()
        FROM unnest(CAST(:layers AS text[])) AS layer
        ON CONFLICT (area_id, profile_id, layer)
        DO UPDATE SET run_id = EXCLUDED.run_id, published_at = EXCLUDED.published_at
    """),
        {
            "area": run.area_id,
            "profile": run.profile_id,
            "run": run_id,
            "layers": layer_names(run.period_kind),
        },
    )
    return True

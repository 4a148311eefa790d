"""Retention: archive raw incidents older than the retention period, then delete them.

The archive (a GeoPackage in the storage CRS and a CSV for the kommun's e-archive) is written
and flushed to disk before the delete commits, so a crash loses nothing: at worst the same
incidents are archived twice. Runs whose window ended before the cutoff are deleted with all
their layers (their hotspot hulls are made of incident coordinates), except a run that is still
published in layer_current (an area that has had no newer run); so are alert events made before
the cutoff, with their deliveries' logs.
"""

from __future__ import annotations

import calendar
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from app.access import audit
from app.core.spreadsheet import csv_lines
from app.db.deployment import storage_srid

ARCHIVE_COLUMNS = (
    "id",
    "organisation",
    "source",
    "external_id",
    "category_code",
    "occurred_from",
    "occurred_to",
    "reported_at",
    "location_precision",
    "description",
    "created_at",
)


@dataclass(frozen=True)
class PurgeResult:
    """What a purge did (or, dry, would do)."""

    cutoff: datetime
    incidents: int
    files: tuple[Path, ...]
    runs: int = 0


def retention_cutoff(now: datetime, months: int) -> datetime:
    """Return the moment `months` calendar months before now (the day clamped to month end)."""
    year, month0 = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month0 + 1)[1])
    return now.replace(year=year, month=month0 + 1, day=day)


EXPIRED_SQL = "coalesce(i.occurred_to, i.occurred_from) < :cutoff"


def purge(
    conn: Connection,
    months: int,
    archive_dir: Path,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Archive and delete incidents that ended before the cutoff; log what was purged."""
    now = now or datetime.now(UTC)
    cutoff = retention_cutoff(now, months)
    runs = _purge_runs(conn, cutoff, dry_run)
    if dry_run:
        n = conn.scalar(
            text(f"SELECT count(*) FROM est.incident i WHERE {EXPIRED_SQL}"), {"cutoff": cutoff}
        )
        return PurgeResult(cutoff=cutoff, incidents=int(n or 0), files=(), runs=runs)
    rows = conn.execute(
        text(f"""
            SELECT i.id, o.code AS organisation, i.source, i.external_id, i.category_code,
                   i.occurred_from, i.occurred_to, i.reported_at,
                   i.location_precision::text AS location_precision, i.description,
                   i.created_at, ST_AsBinary(i.geom) AS wkb
            FROM est.incident i JOIN est.organisation o ON o.id = i.organisation_id
            WHERE {EXPIRED_SQL}
            ORDER BY i.id
            FOR UPDATE OF i
        """),
        {"cutoff": cutoff},
    ).all()
    if not rows:
        return PurgeResult(cutoff=cutoff, incidents=0, files=(), runs=runs)
    frame = pd.DataFrame(rows, columns=[*ARCHIVE_COLUMNS, "wkb"])
    files = _write_archive(frame, storage_srid(conn), archive_dir, now)
    deleted = conn.execute(
        text("DELETE FROM est.incident WHERE id = ANY(:ids)"), {"ids": frame["id"].tolist()}
    ).rowcount
    audit.record(
        conn,
        None,
        "purge",
        actor="est purge",
        row_count=deleted,
        filters={
            "cutoff": cutoff.isoformat(),
            "retention_months": months,
            "archive": {str(f): _sha256(f) for f in files},
        },
    )
    return PurgeResult(cutoff=cutoff, incidents=deleted, files=files, runs=runs)


EXPIRED_RUNS_SQL = """
    FROM est.hotspot_run r
    WHERE r.window_end < :cutoff
      AND NOT EXISTS (SELECT 1 FROM est.layer_current c WHERE c.run_id = r.id)
"""


def _purge_runs(conn: Connection, cutoff: datetime, dry_run: bool) -> int:
    """Delete (or, dry, count) the runs whose window ended before the cutoff; audit it."""
    if dry_run:
        return int(
            conn.scalar(text(f"SELECT count(*) {EXPIRED_RUNS_SQL}"), {"cutoff": cutoff}) or 0
        )
    deleted = conn.execute(
        text(f"DELETE FROM est.hotspot_run WHERE id IN (SELECT r.id {EXPIRED_RUNS_SQL})"),
        {"cutoff": cutoff},
    ).rowcount
    # alerts older than the cutoff go too, with their deliveries and every attempt's log
    events = conn.execute(
        text("DELETE FROM est.alert_event WHERE created_at < :cutoff"), {"cutoff": cutoff}
    ).rowcount
    if events:
        audit.record(
            conn,
            None,
            "purge.alerts",
            actor="est purge",
            row_count=events,
            filters={"cutoff": cutoff.isoformat()},
        )
    if deleted:
        audit.record(
            conn,
            None,
            "purge.runs",
            actor="est purge",
            row_count=deleted,
            filters={"cutoff": cutoff.isoformat()},
        )
    return int(deleted)


def _write_archive(
    frame: pd.DataFrame, srid: int, archive_dir: Path, now: datetime
) -> tuple[Path, ...]:
    archive_dir.mkdir(parents=True, exist_ok=True)
    stem = archive_dir / f"incidents-purged-{now:%Y%m%dT%H%M%SZ}"
    gpkg, csv_path = stem.with_suffix(".gpkg"), stem.with_suffix(".csv")
    geometry = shapely.from_wkb(frame["wkb"].map(bytes).to_numpy())
    table = frame.drop(columns=["wkb"])
    for column in ("occurred_from", "occurred_to", "reported_at", "created_at"):
        table[column] = pd.to_datetime(table[column], utc=True)
    gpd.GeoDataFrame(table, geometry=geometry, crs=srid).to_file(
        gpkg, layer="incidents", driver="GPKG"
    )
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        for line in csv_lines(
            ARCHIVE_COLUMNS, frame[list(ARCHIVE_COLUMNS)].itertuples(index=False)
        ):
            f.write(line)
        f.flush()
        os.fsync(f.fileno())
    with gpkg.open("rb") as f:
        os.fsync(f.fileno())
    return gpkg, csv_path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

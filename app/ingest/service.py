"""Ingestion end to end for one batch: validate against the deployment, store, and account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer
from shapely import wkb
from sqlalchemy import Connection, text

from app.ingest.batch import RawBatch, RowError
from app.ingest.store import NOTHING_STORED, Staging, UpsertResult, prepare
from app.ingest.validate import DefaultLocation, IngestContext, Validated, describe, validate
from app.settings import Settings


def ingest_context(
    conn: Connection, settings: Settings, now: datetime | None = None
) -> IngestContext:
    """Read what validation needs from the database: CRS, accepted area, categories, centroids."""
    row = conn.execute(
        text("SELECT srid, ST_AsBinary(accepted_area) AS area FROM est.deployment")
    ).one()
    if row.area is None:
        raise RuntimeError("no accepted area: load areas (`est areas load`) or set an extent")
    area = wkb.loads(bytes(row.area))
    shapely.prepare(area)
    categories = frozenset(conn.scalars(text("SELECT code FROM est.category")))
    centroids = conn.execute(
        text(
            "SELECT name, kind, ST_X(c) AS x, ST_Y(c) AS y FROM ("
            "SELECT name, kind, ST_Centroid(geom) AS c FROM est.area "
            "WHERE kind IN ('kommun', 'lan')) s"
        )
    ).all()
    places = [
        DefaultLocation(
            f"the centroid of {r.name}" + (" kommun" if r.kind == "kommun" else ""), r.x, r.y
        )
        for r in centroids
    ]
    to_storage = Transformer.from_crs(4326, row.srid, always_xy=True)
    for name, lon, lat in [("0/0", 0.0, 0.0), *_configured(settings.default_locations)]:
        x, y = to_storage.transform(lon, lat)
        if np.isfinite(x) and np.isfinite(y):
            places.append(DefaultLocation(name, float(x), float(y)))
    return IngestContext(
        srid=int(row.srid),
        accepted_area=area,
        categories=categories,
        now=now or datetime.now(UTC),
        default_locations=tuple(places),
        default_tolerance_m=settings.default_location_tolerance_m,
    )


def _configured(values: list[str]) -> list[tuple[str, float, float]]:
    out = []
    for value in values:
        name, _, coords = value.rpartition(":")
        lon, lat = (float(v) for v in coords.split(","))
        out.append((name or coords, lon, lat))
    return out


@dataclass
class BatchOutcome:
    """What happened to one batch: the validation, the store's counts and the notes."""

    validated: Validated
    stored: UpsertResult
    notes: list[str]

    @property
    def rejected(self) -> list[RowError]:
        """The rows that were not stored, with field and reason."""
        return self.validated.rejected


def _iso(values: npt.NDArray[np.datetime64]) -> npt.NDArray[np.str_]:
    text_values = np.datetime_as_string(values, unit="us", timezone="UTC")
    return np.where(np.isnat(values), "", text_values)


def staged_frame(v: Validated, created_by: str) -> pd.DataFrame:
    """Return validated columns as a frame in the staging table's layout."""
    return pd.DataFrame(
        {
            "row_no": v.row,
            "source": v.source,
            "external_id": v.external_id,
            "category_code": v.category,
            "occurred_from": _iso(v.occurred_from),
            "occurred_to": _iso(v.occurred_to),
            "x": v.x,
            "y": v.y,
            "location_precision": v.location_precision,
            "description": v.description,
            "created_by": created_by,
        }
    )


def ingest_batch(
    conn: Connection,
    ctx: IngestContext,
    organisation_id: int,
    created_by: str,
    batch: RawBatch,
    source: str | None = None,
    store_when_rejected: bool = True,
    shared_point_warning: int = 50,
) -> BatchOutcome:
    """Validate a batch and store its valid rows (all of them, or none when any is rejected)."""
    validated = validate(batch, ctx, source)
    if validated.rejected and not store_when_rejected:
        return BatchOutcome(validated, NOTHING_STORED, [])
    staging = Staging(conn, organisation_id, ctx.srid)
    stored = staging.store(prepare(staged_frame(validated, created_by)))
    shared = staging.shared_points(shared_point_warning)
    notes = describe(validated.masked_counts, validated.at_default_location, shared)
    return BatchOutcome(validated, stored, notes)


def record_results(outcome: BatchOutcome) -> list[dict[str, Any]]:
    """Per input row: its status and, for a rejection, the field and the reason."""
    v = outcome.validated
    results: list[dict[str, Any]] = [
        {
            "row": int(r),
            "external_id": e,
            "status": outcome.stored.status(int(r)),
            **({"masked": True} if int(r) in v.masked else {}),
        }
        for r, e in zip(v.row, v.external_id, strict=True)
    ]
    results += [
        {"row": e.row, "status": "rejected", "field": e.field, "reason": e.reason}
        for e in v.rejected
    ]
    return sorted(results, key=lambda r: r["row"])

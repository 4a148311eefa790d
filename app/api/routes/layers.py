"""Aggregated layers for everyone with a grant, viewers included: counts per grid cell."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.access.aggregates import grid_counts, has_grant
from app.api.deps import LayerReaderPrincipal, SessionDep, SettingsDep
from app.api.params import require_zone
from app.core.errors import NotFound
from app.db.deployment import storage_srid
from app.db.reference import group_categories
from geo.crs import LONLAT, transform_geometries
from geo.geojson import MEDIA_TYPE, feature_collection, geometries
from geo.grid import cell_polygons

router = APIRouter(prefix="/api/v1/layers", tags=["layers"])


@router.get(
    "/grid",
    summary="Incident counts per grid cell of an area (whole weeks, small counts hidden)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
def grid_layer(
    principal: LayerReaderPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    area: Annotated[str, Query(description="area code, e.g. 1214")],
    since: Annotated[datetime, Query(description="start; moved back to its week's Monday")],
    until: Annotated[datetime, Query(description="end; moved back to its week's Monday")],
    cell_size_m: Annotated[int, Query(ge=100, le=5000)] = 250,
    group: Annotated[str | None, Query(description="category group, e.g. andts")] = None,
) -> Response:
    """Return counts per cell as GeoJSON polygons in lon/lat, suppressed inside the database.

    Weeks start on Monday at midnight in the deployment's time zone (EST_TIMEZONE at `est db
    init`).
    """
    require_zone("since", since)
    require_zone("until", until)
    conn = session.connection()
    if not has_grant(conn, principal.organisation_id, area):
        raise NotFound(f"no area {area!r} that your organisation has a grant on")
    codes = None
    if group is not None:
        codes = group_categories(conn, group)
        if not codes:
            raise NotFound(f"no category group {group!r}")
    k, base = settings.suppression_k, settings.rounding_base
    counts = grid_counts(conn, area, cell_size_m, since, until, codes, k, base)
    cells = cell_polygons(counts.ix, counts.iy, cell_size_m)
    polygons = geometries(transform_geometries(cells, storage_srid(conn), LONLAT))
    features = [
        {
            "type": "Feature",
            "id": f"{cell_size_m}:{ix}:{iy}",
            "geometry": polygon,
            "properties": {"cell_size_m": cell_size_m, "ix": ix, "iy": iy, "count": n},
        }
        for ix, iy, n, polygon in zip(
            counts.ix.tolist(), counts.iy.tolist(), counts.count.tolist(), polygons, strict=True
        )
    ]
    body = feature_collection(features, area=area, suppression_k=k, rounding_base=base)
    return Response(body, media_type=MEDIA_TYPE)

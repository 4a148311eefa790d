"""Aggregated layers for everyone with a grant, viewers included: counts per grid cell."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import numpy as np
import shapely
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pyproj import Transformer
from sqlalchemy import text

from app.api.deps import LayerReaderPrincipal, SessionDep, SettingsDep
from app.core.errors import InvalidInput, NotFound
from geo.geojson import feature_collection
from geo.grid import cell_polygons

router = APIRouter(prefix="/api/v1/layers", tags=["layers"])
GEOJSON = "application/geo+json"


@router.get(
    "/grid",
    summary="Incident counts per grid cell of an area (whole weeks, small counts hidden)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
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
    """Return counts per cell as GeoJSON polygons in lon/lat, suppressed inside the database."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need a time zone, e.g. 2026-05-04T00:00:00+02:00")
    granted = session.scalar(
        text(
            "SELECT 1 FROM est.area a JOIN est.area_grant g ON g.area_id = a.id "
            "WHERE a.code = :area AND g.organisation_id = :org "
            "AND (g.expires_at IS NULL OR g.expires_at > now())"
        ),
        {"area": area, "org": principal.organisation_id},
    )
    if granted is None:
        raise NotFound(f"no area {area!r} that your organisation has a grant on")
    codes = None
    if group is not None:
        codes = list(
            session.scalars(
                text("SELECT category_code FROM est.category_group_member WHERE group_code = :g"),
                {"g": group},
            )
        )
        if not codes:
            raise NotFound(f"no category group {group!r}")
    rows = session.execute(
        text(
            "SELECT ix, iy, incident_count FROM est.grid_counts(:area, :size, :since, :until, "
            "CAST(:codes AS text[]), :k, :base)"
        ),
        {
            "area": area,
            "size": cell_size_m,
            "since": since,
            "until": until,
            "codes": codes,
            "k": settings.suppression_k,
            "base": settings.rounding_base,
        },
    ).all()
    srid = session.scalar(text("SELECT srid FROM est.deployment"))
    ix = np.array([r.ix for r in rows], dtype=np.int64)
    iy = np.array([r.iy for r in rows], dtype=np.int64)
    to_lonlat = Transformer.from_crs(srid, 4326, always_xy=True)
    polygons = shapely.transform(
        cell_polygons(ix, iy, cell_size_m), lambda xy: np.column_stack(to_lonlat.transform(*xy.T))
    )
    features = [
        {
            "type": "Feature",
            "id": f"{cell_size_m}:{r.ix}:{r.iy}",
            "geometry": shapely.geometry.mapping(p),
            "properties": {
                "cell_size_m": cell_size_m,
                "ix": r.ix,
                "iy": r.iy,
                "count": r.incident_count,
            },
        }
        for r, p in zip(rows, polygons, strict=True)
    ]
    return Response(
        feature_collection(
            features,
            area=area,
            suppression_k=settings.suppression_k,
            rounding_base=settings.rounding_base,
        ),
        media_type=GEOJSON,
    )

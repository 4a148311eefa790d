"""Aggregated layers for everyone with a grant, viewers included: counts per grid cell.

What viewers get follows app.access.privacy: allowed cell sizes, periods and category groups,
counts suppressed, perturbed and rounded inside the database.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import Connection

from app.access import privacy
from app.api.deps import DeploymentDep, LayerReaderPrincipal, SessionDep
from app.core.errors import Forbidden, NotFound
from app.db.reference import group_categories
from geo.crs import LONLAT, transform_geometries
from geo.geojson import MEDIA_TYPE, feature_collection, geometries
from geo.grid import cell_polygons

router = APIRouter(prefix="/api/v1/layers", tags=["layers"])


@router.get(
    "/grid",
    summary="Incident counts per grid cell of an area for one period (small counts hidden)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
def grid_layer(
    principal: LayerReaderPrincipal,
    session: SessionDep,
    deployment: DeploymentDep,
    area: Annotated[str, Query(description="area code, e.g. 1214")],
    day: Annotated[date, Query(alias="date", description="a day in the period, e.g. 2026-10-07")],
    period: Annotated[privacy.PeriodKind, Query(description="which period holds the date")] = (
        "week"
    ),
    cell_size_m: Annotated[
        int, Query(ge=10, le=5000, description="125, 250, 500, 1000 or 2000 m (est.privacy)")
    ] = 250,
    group: Annotated[str | None, Query(description="category group, e.g. andts")] = None,
    exact: Annotated[
        bool, Query(description="exact counts at any cell size: analysts with a raw grant")
    ] = False,
) -> Response:
    """Return counts per cell as GeoJSON polygons in lon/lat.

    Periods are whole ISO weeks, aligned 4- and 12-week blocks, tertials or years, starting at
    local midnight in the deployment's time zone (EST_TIMEZONE at `est db init`).
    """
    conn = session.connection()
    if not privacy.has_grant(conn, principal.organisation_id, area):
        raise NotFound(f"no area {area!r} that your organisation has a grant on")
    chosen = privacy.period_of(period, day)
    current = deployment.get(conn)
    members: dict[str, object] = {"area": area, "period": _period(chosen)}
    if exact:
        if not privacy.has_raw_grant(conn, principal, area):
            raise Forbidden("exact counts need the analyst role and a raw grant on the area")
        codes = _group(conn, group)
        grid = privacy.exact_grid(
            conn, principal, area, cell_size_m, chosen, current.timezone, codes
        )
        members["exact"] = True
    else:
        if group is not None:
            _group(conn, group)  # a clear 404 for an unknown group, before the database refuses
        protected = privacy.protection(conn)
        grid = privacy.viewer_grid(conn, protected, area, cell_size_m, chosen, group)
        members.update(exact=False, protection=protected.describe())
    cells = cell_polygons(grid.ix, grid.iy, cell_size_m)
    polygons = geometries(transform_geometries(cells, current.srid, LONLAT))
    features = [
        {
            "type": "Feature",
            "id": f"{cell_size_m}:{ix}:{iy}",
            "geometry": polygon,
            "properties": {"cell_size_m": cell_size_m, "ix": ix, "iy": iy, "count": n},
        }
        for ix, iy, n, polygon in zip(
            grid.ix.tolist(), grid.iy.tolist(), grid.count.tolist(), polygons, strict=True
        )
    ]
    return Response(feature_collection(features, **members), media_type=MEDIA_TYPE)


def _group(conn: Connection, group: str | None) -> list[str] | None:
    if group is None:
        return None
    codes = group_categories(conn, group)
    if not codes:
        raise NotFound(f"no category group {group!r}")
    return codes


def _period(p: privacy.Period) -> dict[str, str]:
    return {
        "kind": p.kind,
        "label": p.label,
        "first_day": p.first_day.isoformat(),
        "end_day": p.end_day.isoformat(),
    }

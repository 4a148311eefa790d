"""Areas: kommuner, län and the unions of kommuner that police areas work in."""

from __future__ import annotations

from typing import Annotated

import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from app.api.deps import SessionDep
from app.api.params import ListPageDep
from app.core.errors import NotFound
from app.db.areas import area_properties, area_with_geometry, list_areas
from app.db.deployment import storage_srid
from geo.crs import LONLAT, transform_geometries
from geo.geojson import MEDIA_TYPE, dumps, feature

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])


class AreaOut(BaseModel):
    """An area without its geometry."""

    code: str
    name: str
    kind: str
    version: int


class AreaPage(BaseModel):
    """A page of areas with the total count and a link to the next page."""

    items: list[AreaOut]
    total: int
    limit: int
    offset: int
    next: str | None


@router.get("", summary="List areas")
def list_all(
    session: SessionDep,
    request: Request,
    page: ListPageDep,
    kind: Annotated[str | None, Query(description="kommun, lan, union or custom")] = None,
) -> AreaPage:
    """Return areas ordered by code, optionally of one kind."""
    rows, total = list_areas(session.connection(), kind, page.limit, page.offset)
    return AreaPage(
        items=[AreaOut(**area_properties(r)) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
        next=page.next_url(request, total),
    )


@router.get(
    "/{code}",
    summary="One area as a GeoJSON Feature (CRS84)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
def get_area(session: SessionDep, code: str) -> Response:
    """Return the area's current version as a GeoJSON Feature in lon/lat (RFC 7946)."""
    conn = session.connection()
    found = area_with_geometry(conn, code)
    if found is None:
        raise NotFound(f"no area with code {code!r}")
    area, wkb = found
    geometry = transform_geometries(shapely.from_wkb(wkb), storage_srid(conn), LONLAT)
    return Response(
        dumps(feature(area.code, geometry, area_properties(area))), media_type=MEDIA_TYPE
    )

"""Areas: kommuner, län and the unions of kommuner that police areas work in."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import func, select

from app.api.deps import SessionDep
from app.core.errors import NotFound
from app.db.models import Area

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
def list_areas(
    session: SessionDep,
    request: Request,
    kind: Annotated[str | None, Query(description="kommun, lan, union or custom")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AreaPage:
    """Return areas ordered by code, optionally of one kind."""
    query = select(Area.code, Area.name, Area.kind, Area.version)
    if kind is not None:
        query = query.where(Area.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Area.code).limit(limit).offset(offset)).all()
    next_url = None
    if offset + limit < total:
        next_url = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    return AreaPage(
        items=[AreaOut(code=r.code, name=r.name, kind=r.kind, version=r.version) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
        next=next_url,
    )


@router.get(
    "/{code}",
    summary="One area as a GeoJSON Feature (CRS84)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def get_area(session: SessionDep, code: str) -> Response:
    """Return the area's current version as a GeoJSON Feature in lon/lat (RFC 7946)."""
    row = session.execute(
        select(
            Area.code,
            Area.name,
            Area.kind,
            Area.version,
            func.ST_AsGeoJSON(func.ST_Transform(Area.geom, 4326), 6).label("geometry"),
        ).where(Area.code == code)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no area with code {code!r}")
    feature: dict[str, Any] = {
        "type": "Feature",
        "id": row.code,
        "properties": {
            "code": row.code,
            "name": row.name,
            "kind": row.kind,
            "version": row.version,
        },
        "geometry": orjson.loads(row.geometry),
    }
    return Response(orjson.dumps(feature), media_type="application/geo+json")

"""Raw incidents, for analysts (where granted) and reporters (their own): read and export."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from app.access import audit
from app.access.auth import Principal
from app.access.visibility import IncidentFilter, count_visible, visible_incident, visible_incidents
from app.api.deps import (
    RawReaderPrincipal,
    SessionDep,
    SettingsDep,
    request_id,
)
from app.core.errors import InvalidInput, NotFound
from app.core.spreadsheet import csv_lines
from geo.geojson import dumps, feature_collection, point_feature

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

GEOJSON = "application/geo+json"
PROPERTIES = (
    "organisation",
    "source",
    "external_id",
    "category_code",
    "label_sv",
    "occurred_from",
    "occurred_to",
    "reported_at",
    "location_precision",
    "description",
)


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """Parse "minlon,minlat,maxlon,maxlat" (CRS84)."""
    if value is None:
        return None
    try:
        minx, miny, maxx, maxy = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat in degrees") from None
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidInput("bbox must have minlon < maxlon and minlat < maxlat, in degrees")
    return minx, miny, maxx, maxy


def incident_filter(
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CRS84)")] = None,
    since: Annotated[datetime | None, Query(description="occurred at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="occurred before (ISO 8601)")] = None,
    category: Annotated[
        list[str] | None, Query(description="category codes; a code includes its children")
    ] = None,
    area: Annotated[str | None, Query(description="area code, e.g. 1214")] = None,
) -> IncidentFilter:
    """Parse the filter query parameters shared by list and export."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone, e.g. 2026-05-01T00:00:00+02:00")
    return IncidentFilter(
        bbox=parse_bbox(bbox), since=since, until=until, categories=category or [], area=area
    )


FilterDep = Annotated[IncidentFilter, Depends(incident_filter)]


def _audit(
    session: Session,
    principal: Principal,
    request: Request,
    action: str,
    filters: dict[str, Any],
    rows: int,
    reason: str | None = None,
) -> None:
    """Put a read or an export of raw incidents on record, in the request's transaction."""
    audit.record(
        session,
        principal,
        action,
        endpoint=request.url.path,
        request_id=request_id(request),
        filters=filters,
        row_count=rows,
        reason=reason,
    )


def _feature(row: dict[str, Any]) -> dict[str, Any]:
    return point_feature(row["id"], row["lon"], row["lat"], {k: row[k] for k in PROPERTIES})


@router.get(
    "",
    summary="Incidents the caller may see, as GeoJSON",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def list_incidents(
    principal: RawReaderPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    f: FilterDep,
    limit: Annotated[int, Query(ge=1)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Return a page of raw incidents (logged in the audit trail)."""
    if limit > settings.max_page_size:
        raise InvalidInput(f"limit may be at most {settings.max_page_size}")
    conn = session.connection()
    total = count_visible(conn, principal, f)
    features = [_feature(r) for r in visible_incidents(conn, principal, f, limit, offset)]
    _audit(session, principal, request, "incident.read", f.as_dict(), len(features))
    links = []
    if offset + limit < total:
        nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append({"rel": "next", "href": str(nxt), "type": GEOJSON})
    body = feature_collection(
        features, numberMatched=total, numberReturned=len(features), links=links
    )
    return Response(body, media_type=GEOJSON)


@router.get(
    "/export.csv",
    summary="Export incidents as CSV (analysts and reporters; a reason is required)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_incidents(
    principal: RawReaderPrincipal,
    session: SessionDep,
    request: Request,
    f: FilterDep,
    reason: Annotated[str, Query(min_length=5, max_length=500, description="why, for the log")],
) -> StreamingResponse:
    """Return every visible incident under the filter as CSV for Swedish Excel."""
    conn = session.connection()
    rows = list(visible_incidents(conn, principal, f, limit=None))
    _audit(session, principal, request, "incident.export", f.as_dict(), len(rows), reason)
    columns = ("id", *PROPERTIES, "lon", "lat")
    lines = csv_lines(columns, ([r[c] for c in columns] for r in rows))
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="incidents.csv"'},
    )


@router.get(
    "/{incident_id}",
    summary="One incident as a GeoJSON Feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def get_incident(
    incident_id: int, principal: RawReaderPrincipal, session: SessionDep, request: Request
) -> Response:
    """Return one incident the caller may see; any other id is 'not found'."""
    row = visible_incident(session.connection(), principal, incident_id)
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    _audit(session, principal, request, "incident.read", {"id": incident_id}, 1)
    return Response(dumps(_feature(row)), media_type=GEOJSON)

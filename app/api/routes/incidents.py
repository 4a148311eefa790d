"""Raw incidents, for analysts (where granted) and reporters (their own): read and export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from app.access import audit
from app.access.auth import Principal
from app.access.visibility import IncidentFilter, count_visible, visible_incident, visible_incidents
from app.api.deps import RawReaderPrincipal, SessionDep, SettingsDep, request_id
from app.api.params import BBoxDep, KeysetPageDep, WindowDep
from app.core.errors import NotFound
from app.core.spreadsheet import csv_lines
from app.db.engine import set_statement_timeout
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


def incident_filter(
    bbox: BBoxDep,
    window: WindowDep,
    category: Annotated[
        list[str] | None, Query(description="category codes; a code includes its children")
    ] = None,
    area: Annotated[str | None, Query(description="area code, e.g. 1214")] = None,
) -> IncidentFilter:
    """Parse the filter query parameters shared by list and export."""
    return IncidentFilter(
        bbox=bbox, since=window.since, until=window.until, categories=category or [], area=area
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
    request: Request,
    f: FilterDep,
    page: KeysetPageDep,
) -> Response:
    """Return a page of raw incidents, oldest first (logged in the audit trail).

    The next link carries where this page ended (`after`); numberMatched is exact up to
    10,000 and left out beyond.
    """
    conn = session.connection()
    rows = list(visible_incidents(conn, principal, f, page.limit + 1, page.after))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    features = [_feature(r) for r in rows]
    _audit(session, principal, request, "incident.read", f.as_dict(), len(features))
    links = []
    if more:
        last = (rows[-1]["occurred_from"], rows[-1]["id"])
        links.append({"rel": "next", "href": page.next_url(request, last), "type": GEOJSON})
    total = count_visible(conn, principal, f)
    counts = {"numberMatched": total} if total is not None else {}
    body = feature_collection(features, **counts, numberReturned=len(features), links=links)
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
    settings: SettingsDep,
    request: Request,
    f: FilterDep,
    reason: Annotated[str, Query(min_length=5, max_length=500, description="why, for the log")],
) -> StreamingResponse:
    """Return every visible incident under the filter as CSV for Swedish Excel."""
    set_statement_timeout(session, settings.export_timeout_s)
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

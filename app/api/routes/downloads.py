"""Whole layers of one area to download: GET /api/v1/areas/{code}/layers/{layer}.geojson,
.gpkg and .csv.

`{layer}` is the id of a run layer of /ogc (hotspots, density, gistar, emerging, forecast,
viewer-grid). Only run layers are offered, never the raw incidents. These files hold what /ogc
items with `area={code}` give the same key (app.api.layer_files). Viewers, and analysts whose
raw grants do not cover the whole area, get the viewer version. A file of the analyst version
(hull vertices are incident coordinates, counts are exact) is an export: it goes to the audit
trail as `layer.export`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from app.access import audit
from app.access.auth import Principal
from app.access.coverage import covers
from app.api import layer_files
from app.api.caching import cached, etag
from app.api.deps import CurrentPrincipal, DeploymentDep, SessionDep, request_id
from app.api.layer_files import LayerRequest
from app.api.ogc.collections import COLLECTIONS, Collection
from app.api.ogc.params import WEEK_PATTERN
from app.core.errors import Forbidden, NotFound
from app.core.vocabulary import Role
from app.runs.profiles import NAME_PATTERN
from geo.geojson import MEDIA_TYPE as GEOJSON

router = APIRouter(prefix="/api/v1/areas", tags=["downloads"])

GEOPACKAGE = "application/geopackage+sqlite3"
CSV = "text/csv; charset=utf-8"
LAYERS = {c.id: c for c in COLLECTIONS if c.layer is not None}
LAYER_NAMES = ", ".join(LAYERS)
Encoder = Callable[[Collection, Principal, list[dict[str, Any]], int], bytes]
UNSAFE_IN_NAMES = re.compile(r"[^\w.-]", re.ASCII)

AreaCode = Annotated[str, Path(max_length=64, description="the area's code, e.g. 1285")]
LayerId = Annotated[str, Path(max_length=64, description=f"an /ogc run layer: {LAYER_NAMES}")]


def layer_request(
    code: AreaCode,
    week: Annotated[
        str | None,
        Query(
            pattern=WEEK_PATTERN,
            description="the latest published run of an ISO week (2026-W47) or tertial (2026-T3)",
        ),
    ] = None,
    run: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="a run's id")] = None,
    profile: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="an analysis profile's name")
    ] = None,
) -> LayerRequest:
    """Which runs of the area a download reads; none named: those published now."""
    return LayerRequest(code, week, run, profile)


@dataclass(frozen=True)
class Download:
    """One layer, area and request of a caller: its ETag, and its features when they are
    needed (not for a 304)."""

    collection: Collection
    principal: Principal
    srid: int
    etag: str
    read: Callable[[], list[dict[str, Any]]]
    name: str  # of the file, without its extension

    def answer(
        self, request: Request, extension: str, media_type: str, encode: Encoder
    ) -> Response:
        """The file (or 304), named <code>-<layer>-<week>.<extension>."""

        def build() -> Response:
            body = encode(self.collection, self.principal, self.read(), self.srid)
            disposition = f'attachment; filename="{self.name}.{extension}"'
            return Response(
                body, media_type=media_type, headers={"Content-Disposition": disposition}
            )

        return cached(request, self.etag, build)


def _collection(layer: str, principal: Principal) -> Collection:
    """The run layer of that id, if the caller's role may read it."""
    collection = LAYERS.get(layer)
    if collection is None:
        raise NotFound(f"no layer {layer!r} to download; the layers are {LAYER_NAMES}")
    if principal.role not in collection.roles:
        roles = ", ".join(sorted(r.value for r in collection.roles))
        raise Forbidden(
            f"the layer {layer} needs the role {roles}; your key has {principal.role.value}"
        )
    return collection


def read_download(
    request: Request,
    layer: LayerId,
    principal: CurrentPrincipal,
    session: SessionDep,
    deployment: DeploymentDep,
    asked: Annotated[LayerRequest, Depends(layer_request)],
) -> Download:
    """Every feature of the request the caller may see; 404 naming what is not there."""
    collection = _collection(layer, principal)
    conn = session.connection()
    # unknown and not covered answer alike, so that nobody learns which areas exist
    if not covers(conn, asked.area):
        raise NotFound(f"no area {asked.area!r} that your organisation has a grant on")
    srid = deployment.get(conn).srid
    runs = layer_files.published_runs(conn, collection, principal, srid, asked)
    if not runs:
        raise NotFound(asked.missing(collection), missing="published run")

    def read() -> list[dict[str, Any]]:
        rows = layer_files.read_layer(conn, collection, principal, srid, asked.area, runs)
        if principal.role is Role.analyst and any(r.raw for r in runs):
            audit.record(
                session,
                principal,
                "layer.export",
                endpoint=request.url.path,
                request_id=request_id(request),
                filters={"layer": collection.id, **asked.selection},
                row_count=len(rows),
            )
        return rows

    weeks = "_".join(sorted({r.week for r in runs}))
    name = UNSAFE_IN_NAMES.sub("_", f"{asked.area}-{collection.id}-{weeks}")
    tag = etag(request, collection.id, principal, runs)
    return Download(collection, principal, srid, tag, read, name)


DownloadDep = Annotated[Download, Depends(read_download)]


@router.get(
    "/{code}/layers/{layer}.geojson",
    summary="A layer of the area as GeoJSON (CRS84)",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}}},
)
def layer_geojson(request: Request, download: DownloadDep) -> Response:
    """Return every feature of the area's published run of the layer (or of `week`, `run`,
    `profile`) as one RFC 7946 FeatureCollection, the features of /ogc items."""
    return download.answer(request, "geojson", GEOJSON, layer_files.to_geojson)


@router.get(
    "/{code}/layers/{layer}.gpkg",
    summary="A layer of the area as a GeoPackage (the storage CRS)",
    response_class=Response,
    responses={200: {"content": {GEOPACKAGE: {}}}},
)
def layer_geopackage(request: Request, download: DownloadDep) -> Response:
    """Return the same features as a GeoPackage in the deployment's storage CRS (EPSG:3006 by
    default), one layer named as the collection."""
    return download.answer(request, "gpkg", GEOPACKAGE, layer_files.to_geopackage)


@router.get(
    "/{code}/layers/{layer}.csv",
    summary="A layer of the area as CSV for Swedish Excel (geometry as WKT, CRS84)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def layer_csv(request: Request, download: DownloadDep) -> Response:
    """Return the same features as CSV (';', a BOM): `id`, the properties, and `wkt`, the
    geometry as WKT in CRS84 (lon lat), as the GeoJSON's coordinates."""
    return download.answer(request, "csv", CSV, layer_files.to_csv)

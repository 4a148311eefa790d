"""One router definition for every collection: OGC API – Features (Parts 1, 2, 3) under /ogc.

`OgcFeatures(COLLECTIONS).router` has the landing page, /conformance, /api (the OpenAPI 3.0
document), /collections and, for each collection of the registry, /collections/{id},
/items, /items/{featureId} and /queryables, all made by `register_routes` from the
collection's description. The routes hold no SQL: app.api.ogc.query builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError

from app.access import audit
from app.access.auth import Principal
from app.api.caching import AnswerCache, cached, etag
from app.api.deps import (
    CurrentPrincipal,
    DeploymentDep,
    SessionDep,
    SettingsDep,
    request_id,
)
from app.api.errors import problem_responses
from app.api.ogc import features as encode
from app.api.ogc import openapi, query, tiles
from app.api.ogc.collections import Collection
from app.api.ogc.links import Links
from app.api.ogc.params import (
    TRS_GREGORIAN,
    ItemsQuery,
    offered_crs,
    read_crs,
    read_format,
    read_items_query,
    refuse_unknown,
    single,
)
from app.core.errors import Forbidden, InvalidParameter, NotFound
from geo.geojson import MEDIA_TYPE as GEOJSON
from geo.geojson import dumps, feature_collection

JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
HTML = "text/html"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
)
OBJECT = {"type": "object"}
FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {"type": {"enum": ["FeatureCollection"]}, "features": {"type": "array"}},
}
FEATURE = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {"type": {"enum": ["Feature"]}},
}


def _answer(body: Any, media_type: str = JSON, **headers: str) -> Response:
    return Response(
        body if isinstance(body, bytes) else dumps(body),
        media_type=media_type,
        headers=headers or None,
    )


def _stamp() -> str:
    # whole seconds: the same length in every answer, so HEAD's Content-Length matches GET's
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _require(collection: Collection, principal: Principal) -> None:
    if principal.role not in collection.roles:
        roles = ", ".join(sorted(r.value for r in collection.roles))
        raise Forbidden(
            f"the collection {collection.id} needs the role {roles}; "
            f"your key has {principal.role.value}"
        )


def _only_f(request: Request) -> None:
    refuse_unknown(request.query_params, ("f",))
    read_format(request.query_params)


class OgcFeatures:
    """The /ogc routes of a registry of collections (the titiler factory pattern)."""

    def __init__(self, collections: Sequence[Collection], prefix: str = openapi.PREFIX) -> None:
        self.collections = tuple(collections)
        self.prefix = prefix
        self.router = APIRouter(prefix=prefix, tags=["ogc"], responses=problem_responses())
        self.register_routes()

    def get(
        self,
        path: str,
        endpoint: Callable[..., Response],
        summary: str,
        answer: tuple[str, dict[str, Any]] = (JSON, OBJECT),
        parameters: list[dict[str, Any]] | None = None,
        **more: Any,
    ) -> None:
        """Add a GET route answering `answer` (media type, schema); its query parameters are
        documented here and read by the route itself (app.api.ogc.params)."""
        media_type, schema = answer
        extra = {"parameters": parameters} if parameters is not None else None
        self.router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            summary=summary,
            response_class=Response,
            responses={200: {"description": "OK", "content": {media_type: {"schema": schema}}}},
            openapi_extra=extra,
            **more,
        )

    def register_routes(self) -> None:
        """Add the service's routes, then each collection's."""
        only_f = [openapi.ref("f")]
        self.get("", self.landing_page(), "Landing page")
        # clients that join "/" to the root URL (GDAL's, ogctests) get the page, not a redirect
        self.get("/", self.landing_page(), "Landing page", include_in_schema=False)
        self.get(
            "/conformance",
            self.conformance(),
            "The conformance classes it implements",
            parameters=only_f,
        )
        self.get(
            "/api", self.service_desc(), "This OpenAPI 3.0 document", (openapi.MEDIA_TYPE, OBJECT)
        )
        self.get(
            "/api.html",
            self.service_doc(),
            "The documentation of this API (Swagger UI)",
            (HTML, {"type": "string"}),
        )
        self.get(
            "/collections",
            self.collection_list(),
            "The collections you may read",
            parameters=only_f,
        )
        for collection in self.collections:
            self.register_collection(collection)

    def register_collection(self, collection: Collection) -> None:
        """Add /collections/{id}, its items, one item and its queryables."""
        path, title = f"/collections/{collection.id}", collection.title
        only_f = [openapi.ref("f")]
        self.get(
            path,
            self.collection_page(collection),
            f"{title}: description, extent, CRS",
            parameters=only_f,
        )
        self.get(
            f"{path}/items",
            self.items(collection),
            f"{title}: features",
            (GEOJSON, FEATURE_COLLECTION),
            openapi.items_parameters(collection),
            description=collection.description,
        )
        self.get(
            f"{path}/items/{{featureId}}",
            self.item(collection),
            f"{title}: one feature",
            (GEOJSON, FEATURE),
            [openapi.ref("f"), openapi.ref("crs")],
        )
        self.get(
            f"{path}/queryables",
            self.queryables(collection),
            f"{title}: what filters may name",
            (SCHEMA_JSON, OBJECT),
            only_f,
        )
        if collection.layer is not None:
            self.register_tiles(collection)

    def register_tiles(self, collection: Collection) -> None:
        """Add a run layer's vector tiles: the tileset list, its TileJSON and the tiles."""
        path, title = f"/collections/{collection.id}/tiles", collection.title
        selectors = [openapi.ref("f"), *openapi.run_selectors(collection)]
        self.get(path, self.tilesets(collection), f"{title}: vector tilesets", parameters=selectors)
        self.get(
            f"{path}/{tiles.TILE_MATRIX_SET}/tilejson.json",
            self.tilejson(collection),
            f"{title}: TileJSON 3.0 of the WebMercatorQuad tiles",
            parameters=selectors,
        )
        self.get(
            f"{path}/{tiles.TILE_MATRIX_SET}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
            self.tile(collection),
            f"{title}: one Mapbox Vector Tile (zoom, row, column)",
            (tiles.MEDIA_TYPE, {"type": "string", "format": "binary"}),
            selectors,
        )

    def landing_page(self) -> Callable[..., Response]:
        """GET /ogc."""

        def landing(request: Request, _: CurrentPrincipal, settings: SettingsDep) -> Response:
            _only_f(request)
            links = Links(request, settings)
            return _answer(
                {
                    "title": "EST Lägesbild",
                    "description": "The published lägesbild (hotspots, density, Gi*, trends, "
                    "forecast, protected counts), areas and raw incidents as OGC API – Features.",
                    "links": [
                        links.to(self.prefix, "self", JSON, "This document"),
                        links.to(
                            f"{self.prefix}/api",
                            "service-desc",
                            openapi.MEDIA_TYPE,
                            "The API definition",
                        ),
                        links.to(
                            f"{self.prefix}/api.html", "service-doc", HTML, "The API documentation"
                        ),
                        links.to(
                            f"{self.prefix}/conformance",
                            "conformance",
                            JSON,
                            "The conformance classes",
                        ),
                        links.to(f"{self.prefix}/collections", "data", JSON, "The collections"),
                    ],
                }
            )

        return landing

    def conformance(self) -> Callable[..., Response]:
        """GET /ogc/conformance."""

        def conformance(request: Request, _: CurrentPrincipal) -> Response:
            _only_f(request)
            return _answer({"conformsTo": list(CONFORMANCE)})

        return conformance

    def service_desc(self) -> Callable[..., Response]:
        """GET /ogc/api: the OpenAPI 3.0 document, made once per process."""

        def service_desc(request: Request, _: CurrentPrincipal, settings: SettingsDep) -> Response:
            _only_f(request)
            state = request.app.state
            if getattr(state, "ogc_openapi", None) is None:
                state.ogc_openapi = openapi.document(
                    self.router.routes,
                    settings.max_page_size,
                    request.app.title,
                    request.app.version,
                )
            doc = {**state.ogc_openapi, "servers": [{"url": Links(request, settings).base}]}
            return _answer(doc, openapi.MEDIA_TYPE)

        return service_desc

    def service_doc(self) -> Callable[..., Response]:
        """GET /ogc/api.html: Swagger UI on the document of /ogc/api."""

        def service_doc(request: Request, _: CurrentPrincipal, settings: SettingsDep) -> Response:
            refuse_unknown(request.query_params, ())
            page = get_swagger_ui_html(
                openapi_url=Links(request, settings).href(f"{self.prefix}/api"),
                title="EST Lägesbild: OGC API – Features",
            )
            return Response(page.body, media_type=HTML)

        return service_doc

    def collection_list(self) -> Callable[..., Response]:
        """GET /ogc/collections: the collections the caller's role may read."""

        def collections(
            request: Request,
            principal: CurrentPrincipal,
            session: SessionDep,
            deployment: DeploymentDep,
            settings: SettingsDep,
        ) -> Response:
            _only_f(request)
            conn = session.connection()
            srid = deployment.get(conn).srid
            links = Links(request, settings)
            described = [
                self.describe(c, principal, conn, srid, links)
                for c in self.collections
                if principal.role in c.roles
            ]
            return _answer(
                {
                    "links": [
                        links.to(f"{self.prefix}/collections", "self", JSON, "This document")
                    ],
                    "collections": described,
                }
            )

        return collections

    def describe(
        self, collection: Collection, principal: Principal, conn: Any, srid: int, links: Links
    ) -> dict[str, Any]:
        """A collection's description: extent for the caller, CRS, links."""
        bbox, span = query.extent(conn, collection, principal.role, principal.organisation_id, srid)
        here = f"{self.prefix}/collections/{collection.id}"
        extent: dict[str, Any] = {}
        if bbox is not None:
            extent["spatial"] = {"bbox": [bbox], "crs": offered_crs(srid)[0].uri}
        if span is not None:
            extent["temporal"] = {
                "interval": [[_iso(span[0]), _iso(span[1])]],
                "trs": TRS_GREGORIAN,
            }
        return {
            "id": collection.id,
            "title": collection.title,
            "description": collection.description,
            "itemType": "feature",
            "crs": [c.uri for c in offered_crs(srid)],
            "storageCrs": offered_crs(srid)[2].uri,
            "extent": extent,
            "links": [
                links.to(here, "self", JSON, collection.title),
                links.to(f"{here}/items", "items", GEOJSON, f"{collection.title}: features"),
                links.to(f"{here}/queryables", QUERYABLES_REL, SCHEMA_JSON, "Queryables"),
                links.to(f"{here}/queryables", "queryables", SCHEMA_JSON, "Queryables"),
            ],
        }

    def collection_page(self, collection: Collection) -> Callable[..., Response]:
        """GET /ogc/collections/{id}."""

        def collection_page(
            request: Request,
            principal: CurrentPrincipal,
            session: SessionDep,
            deployment: DeploymentDep,
            settings: SettingsDep,
        ) -> Response:
            _require(collection, principal)
            _only_f(request)
            conn = session.connection()
            srid = deployment.get(conn).srid
            return _answer(
                self.describe(collection, principal, conn, srid, Links(request, settings))
            )

        return collection_page

    def items(self, collection: Collection) -> Callable[..., Response]:
        """GET /ogc/collections/{id}/items."""

        def items(
            request: Request,
            principal: CurrentPrincipal,
            session: SessionDep,
            deployment: DeploymentDep,
            settings: SettingsDep,
        ) -> Response:
            _require(collection, principal)
            conn = session.connection()
            current = deployment.get(conn)
            asked = read_items_query(
                request.query_params,
                collection,
                principal.role,
                current.srid,
                current.timezone,
                settings.max_page_size,
            )

            def build() -> Response:
                page = _database_checked(
                    lambda: query.read_page(
                        conn,
                        collection,
                        principal.role,
                        principal.organisation_id,
                        current.srid,
                        asked,
                    )
                )
                found = encode.features(
                    collection, principal.role, page.rows, asked.crs, current.srid
                )
                if collection.raw_incidents:
                    filters = {"collection": collection.id, **dict(request.query_params)}
                    audit.record(
                        session,
                        principal,
                        "incident.read",
                        endpoint=request.url.path,
                        request_id=request_id(request),
                        filters=filters,
                        row_count=len(found),
                    )
                links = Links(request, settings)
                here = f"{self.prefix}/collections/{collection.id}"
                page_links = [
                    links.same(request, "self", GEOJSON, "This page"),
                    links.to(here, "collection", JSON, collection.title),
                    links.to(f"{here}/queryables", QUERYABLES_REL, SCHEMA_JSON, "Queryables"),
                ]
                if page.rows and page.after:
                    cursor = query.next_cursor(page, collection, asked, forward=True)
                    page_links.append(links.same(request, "next", GEOJSON, "Next page", cursor))
                if page.rows and page.before:
                    cursor = query.next_cursor(page, collection, asked, forward=False)
                    page_links.append(links.same(request, "prev", GEOJSON, "Previous page", cursor))
                counts = {"numberMatched": page.matched} if page.matched is not None else {}
                body = feature_collection(
                    found,
                    timeStamp=_stamp(),
                    **counts,
                    numberReturned=len(found),
                    links=page_links,
                )
                headers = {"Content-Crs": f"<{asked.crs.uri}>", "Link": link_header(page_links)}
                return _answer(body, GEOJSON, **headers)

            if collection.layer is None:  # no published run to name the answer after
                return build()
            org, srid = principal.organisation_id, current.srid
            runs = query.selected_runs(conn, collection, principal.role, org, srid, asked)
            tag = etag(request, collection.id, principal, runs, Links(request, settings).base)
            return cached(request, tag, build)

        return items

    def item(self, collection: Collection) -> Callable[..., Response]:
        """GET /ogc/collections/{id}/items/{featureId}."""

        def item(
            request: Request,
            featureId: str,  # noqa: N803 (the name OGC API gives it in the path)
            principal: CurrentPrincipal,
            session: SessionDep,
            deployment: DeploymentDep,
            settings: SettingsDep,
        ) -> Response:
            _require(collection, principal)
            refuse_unknown(request.query_params, ("f", "crs"))
            read_format(request.query_params)
            conn = session.connection()
            srid = deployment.get(conn).srid
            crs = read_crs("crs", single(request.query_params, "crs"), srid)
            wanted = encode.id_columns(collection, featureId)
            row = None
            if wanted is not None:
                row = _database_checked(
                    lambda: query.read_feature(
                        conn,
                        collection,
                        principal.role,
                        principal.organisation_id,
                        srid,
                        wanted,
                    )
                )
            if row is None:
                raise NotFound(f"no feature {featureId!r} in {collection.id} that you may see")
            if collection.raw_incidents:
                audit.record(
                    session,
                    principal,
                    "incident.read",
                    endpoint=request.url.path,
                    request_id=request_id(request),
                    filters={"collection": collection.id, "id": featureId},
                    row_count=1,
                )
            feature = encode.features(collection, principal.role, [row], crs, srid)[0]
            links = Links(request, settings)
            here = f"{self.prefix}/collections/{collection.id}"
            feature["links"] = [
                links.same(request, "self", GEOJSON, "This feature"),
                links.to(here, "collection", JSON, collection.title),
            ]
            headers = {"Content-Crs": f"<{crs.uri}>", "Link": link_header(feature["links"])}
            return _answer(feature, GEOJSON, **headers)

        return item

    def queryables(self, collection: Collection) -> Callable[..., Response]:
        """GET /ogc/collections/{id}/queryables: a JSON Schema of what filters may name."""

        def queryables(
            request: Request, principal: CurrentPrincipal, settings: SettingsDep
        ) -> Response:
            _require(collection, principal)
            _only_f(request)
            links = Links(request, settings)
            here = f"{self.prefix}/collections/{collection.id}/queryables"
            properties: dict[str, Any] = {
                "geometry": {
                    "format": f"geometry-{collection.geometry_type.lower()}",
                    "x-ogc-role": "primary-geometry",
                }
            }
            for prop in collection.queryables(principal.role):
                if prop.type != "object":
                    properties[prop.name] = openapi.property_schema(prop)
            return _answer(
                {
                    "$schema": "https://json-schema.org/draft/2019-09/schema",
                    "$id": links.href(here),
                    "type": "object",
                    "title": collection.title,
                    "properties": properties,
                    "additionalProperties": False,
                },
                SCHEMA_JSON,
            )

        return queryables

    def tilesets(self, collection: Collection) -> Callable[..., Response]:
        """GET /ogc/collections/{id}/tiles: the one tileset (OGC API – Tiles)."""

        def tilesets(
            request: Request, principal: CurrentPrincipal, settings: SettingsDep
        ) -> Response:
            _require(collection, principal)
            _tile_params(request)
            links = Links(request, settings)
            here = f"{self.prefix}/collections/{collection.id}/tiles/{tiles.TILE_MATRIX_SET}"
            query = request.url.query
            template = links.href(here, "") + "/{tileMatrix}/{tileRow}/{tileCol}"
            tilejson = links.href(f"{here}/tilejson.json", query)
            return _answer(
                {
                    "links": [links.same(request, "self", JSON, "This document")],
                    "tilesets": [
                        {
                            "title": collection.title,
                            "dataType": "vector",
                            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                            "tileMatrixSetURI": tiles.TILE_MATRIX_SET_URI,
                            "links": [
                                {
                                    "href": template + (f"?{query}" if query else ""),
                                    "rel": "item",
                                    "type": tiles.MEDIA_TYPE,
                                    "templated": True,
                                    "title": "A tile",
                                },
                                {
                                    "href": tilejson,
                                    "rel": "describedby",
                                    "type": JSON,
                                    "title": "TileJSON 3.0",
                                },
                            ],
                        }
                    ],
                }
            )

        return tilesets

    def tilejson(self, collection: Collection) -> Callable[..., Response]:
        """GET …/tiles/WebMercatorQuad/tilejson.json: what a web map needs to draw the layer."""

        def tilejson(
            request: Request,
            principal: CurrentPrincipal,
            session: SessionDep,
            deployment: DeploymentDep,
            settings: SettingsDep,
        ) -> Response:
            _require(collection, principal)
            conn = session.connection()
            current = deployment.get(conn)
            srid = current.srid
            selection = _tile_selection(request, collection, principal, current)
            here = f"{self.prefix}/collections/{collection.id}/tiles/{tiles.TILE_MATRIX_SET}"
            runs = query.selected_runs(
                conn, collection, principal.role, principal.organisation_id, srid, selection
            )

            links = Links(request, settings)

            def build() -> Response:
                bbox, _ = query.extent(
                    conn, collection, principal.role, principal.organisation_id, srid
                )
                query_string = request.url.query
                template = links.href(here) + "/{z}/{y}/{x}"
                doc = {
                    "tilejson": "3.0.0",
                    "name": collection.title,
                    "description": collection.description,
                    "scheme": "xyz",
                    "tiles": [template + (f"?{query_string}" if query_string else "")],
                    "minzoom": tiles.MIN_ZOOM,
                    "maxzoom": tiles.MAX_ZOOM,
                    "bounds": bbox or [-180.0, -85.0511287798066, 180.0, 85.0511287798066],
                    "vector_layers": [
                        {
                            "id": collection.id,
                            "description": collection.description,
                            "minzoom": tiles.MIN_ZOOM,
                            "maxzoom": tiles.MAX_ZOOM,
                            "fields": tiles.tile_fields(collection, principal.role),
                        }
                    ],
                }
                return _answer(doc)

            tag = etag(request, collection.id, principal, runs, links.base)
            return cached(request, tag, build)

        return tilejson

    def tile(self, collection: Collection) -> Callable[..., Response]:
        """GET …/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}."""

        def tile(
            request: Request,
            tileMatrix: int,  # noqa: N803 (OGC API – Tiles' names)
            tileRow: int,  # noqa: N803
            tileCol: int,  # noqa: N803
            principal: CurrentPrincipal,
            session: SessionDep,
            deployment: DeploymentDep,
        ) -> Response:
            _require(collection, principal)
            where = tiles.Tile.checked(tileMatrix, tileRow, tileCol)
            conn = session.connection()
            current = deployment.get(conn)
            srid = current.srid
            selection = _tile_selection(request, collection, principal, current)
            org, role = principal.organisation_id, principal.role
            runs = query.selected_runs(conn, collection, role, org, srid, selection)

            tag = etag(request, collection.id, principal, runs)
            kept: AnswerCache = request.app.state.tile_cache

            def build() -> Response:
                made = kept.get(tag)
                if made is None:
                    made = tiles.read_tile(conn, collection, role, org, srid, where, selection)
                    kept.put(tag, made)
                return Response(made, media_type=tiles.MEDIA_TYPE)

            return cached(request, tag, build)

        return tile


def _tile_params(request: Request) -> None:
    """Refuse what a tile request cannot take: it names runs only (area, profile, week, run)."""
    refuse_unknown(request.query_params, ("f", *tiles.RUN_SELECTORS))
    read_format(request.query_params)


def _tile_selection(
    request: Request, collection: Collection, principal: Principal, current: Any
) -> ItemsQuery:
    """The runs a tile request names, read as items' `name=value` parameters."""
    _tile_params(request)
    return read_items_query(
        request.query_params, collection, principal.role, current.srid, current.timezone, 1
    )


def link_header(links: list[dict[str, str]]) -> str:
    """The links of an answer as an HTTP Link header (RFC 8288), commas in URLs escaped."""
    return ", ".join(
        f'<{link["href"].replace(",", "%2C")}>; rel="{link["rel"]}"; type="{link["type"]}"'
        for link in links
    )


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _database_checked(read: Callable[[], Any]) -> Any:
    """Run a read; a value the database refuses (out of range, a bad pattern) is a 400."""
    try:
        return read()
    except DBAPIError as exc:
        state = getattr(exc.orig, "sqlstate", "") or ""
        if state.startswith("22"):  # data exception: the request's value, not the server
            first = str(exc.orig).splitlines()[0] if exc.orig else "a value is out of range"
            raise InvalidParameter(
                f"the request holds a value that cannot be used: {first}"
            ) from None
        raise

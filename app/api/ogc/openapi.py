"""The OpenAPI 3.0 document of /ogc (its service-desc), made from the routes themselves.

FastAPI writes the paths; this module adds what OGC API clients read there: the shared
parameters in `components.parameters` (QGIS takes its page size from `limit`'s maximum and
default), and OpenAPI 3.0's way of saying a value may be null. /openapi.json stays the REST
API's document: the /ogc routes are left out of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from app.api.ogc.collections import Collection, Property
from app.api.ogc.params import DEFAULT_LIMIT

PREFIX = "/ogc"
MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"


def ref(name: str) -> dict[str, str]:
    """A reference to one of the shared parameters."""
    return {"$ref": f"#/components/parameters/{name}"}


def shared_parameters(max_limit: int) -> dict[str, dict[str, Any]]:
    """The parameters several routes take, as components.parameters."""

    def query(name: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
            **more,
        }

    return {
        "f": query(
            "f",
            "The format: JSON (GeoJSON for features) is the only one.",
            {"type": "string", "enum": ["json", "geojson"]},
        ),
        "limit": query(
            "limit",
            f"Features per page; a larger value is taken as {max_limit}.",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": DEFAULT_LIMIT},
            style="form",
            explode=False,
        ),
        "cursor": query(
            "cursor",
            "Where the page starts: the value of a next or prev link.",
            {"type": "string", "maxLength": 2000},
        ),
        "bbox": query(
            "bbox",
            "Only features that intersect the box: minx,miny,maxx,maxy in bbox-crs, in its "
            "axis order (CRS84: lon,lat; EPSG:4326: lat,lon); 6 numbers with heights.",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            style="form",
            explode=False,
        ),
        "bbox-crs": query(
            "bbox-crs",
            "The CRS of bbox (a URI of the collection's crs list).",
            {"type": "string", "format": "uri"},
        ),
        "crs": query(
            "crs",
            "The CRS of the answer's coordinates (a URI of its crs list).",
            {"type": "string", "format": "uri"},
        ),
        "datetime": query(
            "datetime",
            "An instant (2026-11-18T12:00:00Z), a date or an interval (a/b, ../b, a/..): "
            "features whose time meets it. For run layers it picks the runs of those weeks.",
            {"type": "string"},
        ),
        "filter": query("filter", "A CQL2 text filter over the queryables.", {"type": "string"}),
        "filter-lang": query(
            "filter-lang",
            "The filter's language.",
            {"type": "string", "enum": ["cql2-text"], "default": "cql2-text"},
        ),
        "filter-crs": query(
            "filter-crs", "The CRS of the filter's geometries.", {"type": "string", "format": "uri"}
        ),
        "sortby": query(
            "sortby",
            "Sort keys: +name or -name, separated by commas (the id breaks ties).",
            {"type": "string"},
        ),
    }


ITEMS_REFS = (
    "f",
    "limit",
    "cursor",
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "filter",
    "filter-lang",
    "filter-crs",
    "sortby",
)
JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date-time": {"type": "string", "format": "date-time"},
    "object": {"type": "object"},
}


def property_schema(prop: Property) -> dict[str, Any]:
    """The JSON Schema of a property's values."""
    schema: dict[str, Any] = {**JSON_TYPES[prop.type], "description": prop.description}
    if prop.enum:
        schema["enum"] = list(prop.enum)
    return schema


def items_parameters(collection: Collection) -> list[dict[str, Any]]:
    """The parameters of a collection's items: the shared ones and one per queryable."""
    filters = [
        {
            "name": p.name,
            "in": "query",
            "required": False,
            "description": f"Only features whose {p.name} equals this. {p.description}.",
            "schema": {k: v for k, v in property_schema(p).items() if k != "description"},
        }
        for p in collection.properties
        if p.type != "object"
    ]
    return [*(ref(n) for n in ITEMS_REFS), *filters]


def run_selectors(collection: Collection) -> list[dict[str, Any]]:
    """The parameters of a run layer's tiles: which runs (area, profile, week, run)."""
    return [
        p
        for p in items_parameters(collection)
        if p.get("name") in ("area", "profile", "week", "run")
    ]


def document(
    routes: Iterable[BaseRoute], max_limit: int, title: str, version: str
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the /ogc routes (those of OgcFeatures.router)."""
    doc = get_openapi(
        title=f"{title}: OGC API – Features",
        version=version,
        openapi_version="3.0.3",
        description="Every layer of the published lägesbild as OGC API – Features (Parts 1, 2 "
        "and 3). Authenticate with an API key as the password of HTTP Basic (any user name) "
        "or as a Bearer token.",
        routes=list(routes),
    )
    doc.setdefault("components", {})["parameters"] = shared_parameters(max_limit)
    return as_openapi_30(doc)


def as_openapi_30(node: Any) -> Any:
    """Rewrite JSON Schema 2020 (OpenAPI 3.1) constructs FastAPI writes into OpenAPI 3.0."""
    if isinstance(node, list):
        return [as_openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_openapi_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            out.pop(key)
            if len(rest) == 1:
                out.update(rest[0])
            else:
                out[key] = rest
            out["nullable"] = True
    if isinstance(out.get("examples"), list) and "example" not in out:
        out["example"] = out.pop("examples")[0] if out["examples"] else None
    return out


def rest_only(document: dict[str, Any]) -> dict[str, Any]:
    """The REST API's document without the /ogc paths (they have a document of their own)."""
    paths = {p: item for p, item in document.get("paths", {}).items() if not p.startswith(PREFIX)}
    return {**document, "paths": paths}

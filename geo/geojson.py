"""The one GeoJSON encoder (RFC 7946): plain dicts and orjson, lon/lat with 7 decimals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import orjson
import shapely

from geo.crs import swap_axes

MEDIA_TYPE = "application/geo+json"

# 7 decimals of a degree is about a centimetre: more would be noise, fewer would move points.
COORDINATE_DECIMALS = 7
METRE_DECIMALS = 3  # the same for coordinates in metres (a projected CRS): a millimetre
POINT = 0  # shapely's type id of a Point


def point_feature(
    feature_id: Any, lon: float, lat: float, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """Return a Point Feature."""
    return {
        "type": "Feature",
        "id": feature_id,
        "geometry": {
            "type": "Point",
            "coordinates": [round(lon, COORDINATE_DECIMALS), round(lat, COORDINATE_DECIMALS)],
        },
        "properties": dict(properties),
    }


def feature(feature_id: Any, geometry: Any, properties: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Feature of a shapely geometry in lon/lat, its coordinates rounded."""
    return {
        "type": "Feature",
        "id": feature_id,
        "geometry": geometries([geometry])[0],
        "properties": dict(properties),
    }


def geometries(
    geoms: Any, decimals: int = COORDINATE_DECIMALS, north_first: bool = False
) -> list[dict[str, Any] | None]:
    """Return shapely geometries in lon/lat as GeoJSON geometry objects, 7 decimals at most.

    Polygons follow the right-hand rule of RFC 7946: exterior rings counterclockwise, holes
    clockwise, as seen in x, y (lon, lat; easting, northing). `north_first` then writes y before
    x, for a CRS whose authority orders its axes so (EPSG:4326, EPSG:3006; see geo.crs).
    """
    shapes = np.asarray(geoms, dtype=object)
    scale = 10.0**decimals  # dividing (not multiplying by 1e-7) gives the shortest decimals
    if len(shapes) and bool((shapely.get_type_id(shapes) == POINT).all()):
        return _points(shapes, scale, north_first)
    shapes = shapely.orient_polygons(shapes, exterior_cw=False)
    if north_first:
        shapes = swap_axes(shapes)
    rounded = shapely.transform(shapes, lambda xy: np.rint(xy * scale) / scale)
    return [None if g is None else shapely.geometry.mapping(g) for g in rounded]


def _points(points: Any, scale: float, north_first: bool) -> list[dict[str, Any] | None]:
    """Points as GeoJSON straight from their coordinates: a page of them is most of a layer's."""
    empty = shapely.is_empty(points)
    xy = np.rint(shapely.get_coordinates(points) * scale) / scale
    pairs = iter((xy[:, ::-1] if north_first else xy).tolist())
    return [None if e else {"type": "Point", "coordinates": next(pairs)} for e in empty.tolist()]


def dumps(obj: Any) -> bytes:
    """Return a GeoJSON object (a Feature, a geometry) as UTF-8 bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def feature_collection(features: Iterable[Mapping[str, Any]], **members: Any) -> bytes:
    """Return a FeatureCollection as UTF-8 bytes; extra members (links, counts) go on top."""
    return dumps({"type": "FeatureCollection", **members, "features": list(features)})

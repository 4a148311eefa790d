"""The one GeoJSON encoder (RFC 7946): plain dicts and orjson, lon/lat with 7 decimals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import orjson
import shapely

MEDIA_TYPE = "application/geo+json"

# 7 decimals of a degree is about a centimetre: more would be noise, fewer would move points.
COORDINATE_DECIMALS = 7


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


def geometries(geoms: Any) -> list[dict[str, Any] | None]:
    """Return shapely geometries in lon/lat as GeoJSON geometry objects, 7 decimals at most."""
    rounded = shapely.transform(
        np.asarray(geoms, dtype=object), lambda xy: np.round(xy, COORDINATE_DECIMALS)
    )
    return [None if g is None else shapely.geometry.mapping(g) for g in rounded]


def dumps(obj: Any) -> bytes:
    """Return a GeoJSON object (a Feature, a geometry) as UTF-8 bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def feature_collection(features: Iterable[Mapping[str, Any]], **members: Any) -> bytes:
    """Return a FeatureCollection as UTF-8 bytes; extra members (links, counts) go on top."""
    return dumps({"type": "FeatureCollection", **members, "features": list(features)})

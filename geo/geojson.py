"""The one GeoJSON encoder (RFC 7946): plain dicts and orjson, lon/lat with 7 decimals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

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


def dumps(obj: Any) -> bytes:
    """Return a GeoJSON object (a Feature, a geometry) as UTF-8 bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def feature_collection(features: Iterable[Mapping[str, Any]], **members: Any) -> bytes:
    """Return a FeatureCollection as UTF-8 bytes; extra members (links, counts) go on top."""
    return dumps({"type": "FeatureCollection", **members, "features": list(features)})

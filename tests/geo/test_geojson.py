"""geo.geojson: RFC 7946 objects, coordinates with at most 7 decimals."""

from __future__ import annotations

import orjson
import shapely

from geo.geojson import feature, feature_collection, geometries, point_feature


def test_coordinates_are_rounded_to_seven_decimals() -> None:
    point = point_feature(1, 13.123456789012, 55.987654321098, {"a": 1})
    assert point["geometry"]["coordinates"] == [13.1234568, 55.9876543]
    square = shapely.box(13.123456789012, 55.1, 13.223456789012, 55.2)
    ring = feature("c", square, {})["geometry"]["coordinates"][0]
    assert all(len(repr(v).split(".")[1]) <= 7 for xy in ring for v in xy)


def test_a_collection_is_valid_geojson_with_its_extra_members_first() -> None:
    body = orjson.loads(
        feature_collection([feature(1, shapely.Point(13.3, 55.8), {"n": 2})], area="1285")
    )
    assert list(body) == ["type", "area", "features"]
    assert body["features"][0]["geometry"] == {"type": "Point", "coordinates": [13.3, 55.8]}
    assert geometries([None]) == [None]

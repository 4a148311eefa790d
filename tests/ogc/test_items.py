"""/ogc/collections/{id}/items and /items/{featureId} (Part 1 Core and GeoJSON)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely import wkb as shapely_wkb

from app.api.ogc.collections import COLLECTIONS
from tests.ogc.conftest import AREA_A, UNION, Ogc, all_features, get

GEOJSON = "application/geo+json"
TO_LONLAT = Transformer.from_crs(3006, 4326, always_xy=True)


def _links(body: dict[str, Any]) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body["links"]}


@pytest.mark.parametrize("collection", [c.id for c in COLLECTIONS])
def test_every_collection_answers_a_geojson_page_with_counts_and_links(
    ogc: Ogc, ogc_client: TestClient, collection: str
) -> None:
    r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", limit=5)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == GEOJSON
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = r.json()
    assert body["type"] == "FeatureCollection" and "crs" not in body
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timeStamp"])
    assert body["numberReturned"] == len(body["features"]) == 5
    assert body["numberMatched"] > 5
    links = _links(body)
    assert links["self"].startswith(f"http://testserver/ogc/collections/{collection}/items?")
    assert links["collection"] == f"http://testserver/ogc/collections/{collection}"
    assert "limit=5" in links["next"] and "prev" not in links
    for feature in body["features"]:
        assert feature["type"] == "Feature" and isinstance(feature["id"], int | str)


def test_limit_defaults_to_100_and_a_larger_one_than_allowed_is_clamped(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    assert get(ogc_client, ogc, "/ogc/collections/incidents/items").json()["numberReturned"] == 100
    r = get(ogc_client, ogc, "/ogc/collections/incidents/items", limit=50_000)
    assert r.status_code == 200 and r.json()["numberReturned"] == 10_000
    for bad in ("0", "-1", "ten", "1.5"):
        r = get(ogc_client, ogc, "/ogc/collections/incidents/items", limit=bad)
        assert r.status_code == 400 and "limit" in r.json()["detail"]


def test_paging_forward_and_back_returns_every_feature_once_and_repeats_every_parameter(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    params = {"limit": 1000, "week": "2026-W47", "area": AREA_A}
    seen = all_features(ogc_client, ogc, "/ogc/collections/density/items", **params)
    expected = ogc.rows(
        "SELECT count(*) FROM est.density_cell c JOIN est.layer_current l ON l.run_id = c.run_id "
        "JOIN est.area a ON a.id = l.area_id WHERE a.code = :a AND l.layer = 'density'",
        a=AREA_A,
    )[0][0]
    ids = [f["id"] for f in seen]
    assert len(ids) == len(set(ids)) == expected > 2000
    first = get(ogc_client, ogc, "/ogc/collections/density/items", **params).json()
    second = ogc_client.get(_links(first)["next"], headers=ogc.headers("polis", "analyst")).json()
    for name in ("limit=1000", "week=2026-W47", f"area={AREA_A}"):
        assert name in _links(second)["next"] and name in _links(second)["prev"]
    back = ogc_client.get(_links(second)["prev"], headers=ogc.headers("polis", "analyst")).json()
    assert [f["id"] for f in back["features"]] == [f["id"] for f in first["features"]]
    assert "prev" not in _links(back)


def test_sortby_orders_the_pages_and_the_cursor_keeps_that_order(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    seen = all_features(
        ogc_client, ogc, "/ogc/collections/gistar/items", limit=200, sortby="-z,ix", area=UNION
    )
    z = [f["properties"]["z"] for f in seen]
    assert z == sorted(z, reverse=True) and len(seen) == len({f["id"] for f in seen})
    r = get(ogc_client, ogc, "/ogc/collections/gistar/items", sortby="colour")
    assert r.status_code == 400 and "colour" in r.json()["detail"]
    r = get(ogc_client, ogc, "/ogc/collections/gistar/items", cursor="not-a-cursor")
    assert r.status_code == 400 and "cursor" in r.json()["detail"]


def test_a_bbox_returns_exactly_the_incidents_inside_it(ogc: Ogc, ogc_client: TestClient) -> None:
    rows = ogc.rows("SELECT id, ST_X(geom), ST_Y(geom) FROM est.incident")
    ids = np.array([r[0] for r in rows])
    lon, lat = TO_LONLAT.transform(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    box = (13.20, 55.62, 13.25, 55.66)
    inside = (lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])
    found = all_features(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        limit=5000,
        bbox=",".join(map(str, box)),
    )
    assert sorted(f["id"] for f in found) == sorted(ids[inside].tolist())
    assert 0 < len(found) < len(rows)
    for bad in ("1,2,3", "a,b,c,d", "13.3,55.6,13.2,55.7", "0,95,1,96", "nan,1,2,3"):
        r = get(ogc_client, ogc, "/ogc/collections/incidents/items", bbox=bad)
        assert r.status_code == 400 and "bbox" in r.json()["detail"], bad


def test_features_carry_the_stored_geometry_in_lon_lat_to_seven_decimals(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    body = get(ogc_client, ogc, "/ogc/collections/hotspots/items", area=AREA_A).json()
    for feature in body["features"]:
        stored = shapely_wkb.loads(
            bytes(
                ogc.rows(
                    "SELECT ST_AsBinary(geom) FROM est.hotspot WHERE id = :i", i=feature["id"]
                )[0][0]
            )
        )
        expected = shapely.transform(
            stored, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1]))
        )
        got = shapely.geometry.shape(feature["geometry"])
        assert got.hausdorff_distance(expected) < 1e-6
        coordinates = shapely.get_coordinates(got)
        assert all(len(repr(v).split(".")[1]) <= 7 for v in coordinates.ravel().tolist())
        for polygon in getattr(got, "geoms", [got]):  # right-hand rule: exterior rings ccw
            assert polygon.exterior.is_ccw
            assert not any(ring.is_ccw for ring in polygon.interiors)


def test_a_feature_is_read_by_its_id_and_others_are_404(ogc: Ogc, ogc_client: TestClient) -> None:
    for collection in ("hotspots", "gistar", "areas", "incidents"):
        page = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", limit=3).json()
        feature = page["features"][2]
        r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items/{feature['id']}")
        assert r.status_code == 200 and r.headers["content-type"] == GEOJSON
        one = r.json()
        assert one["id"] == feature["id"] and one["geometry"] == feature["geometry"]
        assert one["properties"] == feature["properties"]
        assert _links(one)["collection"] == f"http://testserver/ogc/collections/{collection}"
        assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    for collection, missing in (
        ("hotspots", "999999"),
        ("gistar", "1:2:3"),
        ("areas", "x"),
        ("incidents", "abc"),
        ("gistar", "a:b:c:d"),
    ):
        r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items/{missing}")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_week_and_run_reach_earlier_published_runs(ogc: Ogc, ogc_client: TestClient) -> None:
    current = get(ogc_client, ogc, "/ogc/collections/hotspots/items", area=UNION).json()
    assert {f["properties"]["week"] for f in current["features"]} == {"2026-W47"}
    older = get(ogc_client, ogc, "/ogc/collections/hotspots/items", area=UNION, week="2026-W46")
    weeks = {f["properties"]["week"] for f in older.json()["features"]}
    assert weeks == {"2026-W46"}
    run = older.json()["features"][0]["properties"]["run"]
    by_run = get(ogc_client, ogc, "/ogc/collections/hotspots/items", run=run).json()
    assert by_run["numberMatched"] == older.json()["numberMatched"]
    during = get(
        ogc_client,
        ogc,
        "/ogc/collections/hotspots/items",
        area=UNION,
        datetime="2026-11-11T12:00:00Z",
    ).json()
    assert {f["properties"]["week"] for f in during["features"]} == {"2026-W46"}
    assert (
        get(ogc_client, ogc, "/ogc/collections/hotspots/items", week="2026-48").status_code == 400
    )


@pytest.mark.parametrize(
    ("value", "weeks"),
    [
        ("2026-11-18", {"2026-W47"}),
        ("2026-11-10T00:00:00Z/2026-11-20T00:00:00Z", {"2026-W46", "2026-W47"}),
        ("../2026-11-12T00:00:00+01:00", {"2026-W46"}),
        ("2026-11-17T00:00:00Z/..", {"2026-W47"}),
    ],
)
def test_datetime_takes_instants_dates_and_open_intervals(
    ogc: Ogc, ogc_client: TestClient, value: str, weeks: set[str]
) -> None:
    found = all_features(ogc_client, ogc, "/ogc/collections/hotspots/items", datetime=value)
    assert {f["properties"]["week"] for f in found} == weeks


def test_datetime_on_incidents_keeps_those_of_the_interval(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    expected = ogc.rows(
        "SELECT count(*) FROM est.incident WHERE occurred_from >= '2026-11-18T00:00Z' "
        "AND occurred_from <= '2026-11-18T06:00Z'",
    )[0][0]
    r = get(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        limit=10_000,
        datetime="2026-11-18T00:00:00Z/2026-11-18T06:00:00Z",
    )
    assert r.json()["numberMatched"] == r.json()["numberReturned"] == expected > 0
    for bad in ("yesterday", "2026-11-18T00:00:00", "2026-11-19T00:00:00Z/2026-11-18T00:00:00Z"):
        r = get(ogc_client, ogc, "/ogc/collections/incidents/items", datetime=bad)
        assert r.status_code == 400 and "datetime" in r.json()["detail"], bad


def test_property_parameters_filter_and_unknown_parameters_are_400(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    body = get(ogc_client, ogc, "/ogc/collections/gistar/items", bin=3, area=AREA_A).json()
    assert body["numberMatched"] > 0
    assert {(f["properties"]["bin"], f["properties"]["area"]) for f in body["features"]} == {
        (3, AREA_A)
    }
    incidents = get(ogc_client, ogc, "/ogc/collections/incidents/items", area=AREA_A).json()
    expected = ogc.rows(
        "SELECT count(*) FROM est.incident i JOIN est.incident_area ia ON ia.incident_id = i.id "
        "JOIN est.area a ON a.id = ia.area_id WHERE a.code = :a",
        a=AREA_A,
    )[0][0]
    assert incidents["numberMatched"] == expected
    assert "area" not in incidents["features"][0]["properties"]  # a filter, not a property
    for params, named in (
        ({"colour": "red"}, "colour"),
        ({"bin": "high"}, "bin"),
        ({"limit": ["1", "2"]}, "limit"),
    ):
        r = get(ogc_client, ogc, "/ogc/collections/gistar/items", **params)
        assert r.status_code == 400 and named in r.json()["detail"], params
    assert get(ogc_client, ogc, "/ogc/collections/gistar/items", f="json").status_code == 200


def test_values_the_database_cannot_use_are_400_not_500(ogc: Ogc, ogc_client: TestClient) -> None:
    for collection, params in (
        ("gistar", {"bin": str(2**70)}),
        ("gistar", {"filter": f"incident_count > {2**70}"}),
        ("emerging", {"filter": "pattern LIKE 'x\\'"}),
    ):
        r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", **params)
        assert r.status_code in (200, 400), (params, r.text)
        assert r.status_code != 500

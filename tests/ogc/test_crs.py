"""Part 2: CRS84 by default, EPSG:4326 in latitude, longitude order and the storage CRS in
northing, easting order; crs, bbox-crs, filter-crs and the Content-Crs header."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely import wkb as shapely_wkb
from sqlalchemy import text

from tests.ogc.conftest import AREA_A, Ogc, get

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG_3006 = "http://www.opengis.net/def/crs/EPSG/0/3006"
TO_LONLAT = Transformer.from_crs(3006, 4326, always_xy=True)


def _incident(ogc: Ogc, incident_id: int) -> tuple[float, float]:
    with ogc.engine.connect() as conn:
        row = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM est.incident WHERE id = :i"),
            {"i": incident_id},
        ).one()
    return float(row[0]), float(row[1])


@pytest.mark.parametrize(
    ("crs", "order"),
    [(None, "lonlat"), (CRS84, "lonlat"), (EPSG_4326, "latlon"), (EPSG_3006, "northeast")],
)
def test_points_come_in_the_axis_order_of_the_crs_asked_for(
    ogc: Ogc, ogc_client: TestClient, crs: str | None, order: str
) -> None:
    params = {"limit": 20, **({"crs": crs} if crs else {})}
    r = get(ogc_client, ogc, "/ogc/collections/incidents/items", **params)
    assert r.status_code == 200
    assert r.headers["content-crs"] == f"<{crs or CRS84}>"
    for feature in r.json()["features"]:
        x, y = _incident(ogc, feature["id"])
        lon, lat = TO_LONLAT.transform(x, y)
        expected = {
            "lonlat": (lon, lat),
            "latlon": (lat, lon),
            "northeast": (y, x),
        }[order]
        got = feature["geometry"]["coordinates"]
        tolerance = 1e-3 if order == "northeast" else 1e-7
        assert np.allclose(got, expected, atol=tolerance), (got, expected)


def test_one_feature_takes_crs_too(ogc: Ogc, ogc_client: TestClient) -> None:
    first = get(ogc_client, ogc, "/ogc/collections/incidents/items", limit=1).json()["features"][0]
    r = get(ogc_client, ogc, f"/ogc/collections/incidents/items/{first['id']}", crs=EPSG_3006)
    assert r.headers["content-crs"] == f"<{EPSG_3006}>"
    assert np.allclose(r.json()["geometry"]["coordinates"], _incident(ogc, first["id"])[::-1])


def test_polygons_in_the_storage_crs_are_the_stored_ones_northing_first(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    body = get(ogc_client, ogc, "/ogc/collections/hotspots/items", area=AREA_A, crs=EPSG_3006)
    for feature in body.json()["features"]:
        with ogc.engine.connect() as conn:
            wkb = conn.scalar(
                text("SELECT ST_AsBinary(geom) FROM est.hotspot WHERE id = :i"),
                {"i": feature["id"]},
            )
        stored = shapely_wkb.loads(bytes(wkb))
        got = shapely.transform(shapely.geometry.shape(feature["geometry"]), lambda c: c[:, ::-1])
        assert got.hausdorff_distance(stored) < 1e-3  # written to the millimetre


def test_a_bbox_in_epsg_4326_is_latitude_first(ogc: Ogc, ogc_client: TestClient) -> None:
    lonlat = (13.20, 55.62, 13.25, 55.66)
    latlon = (55.62, 13.20, 55.66, 13.25)
    base = get(
        ogc_client, ogc, "/ogc/collections/incidents/items", bbox=",".join(map(str, lonlat))
    ).json()
    other = get(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        bbox=",".join(map(str, latlon)),
        **{"bbox-crs": EPSG_4326},
    ).json()
    assert other["numberMatched"] == base["numberMatched"] > 100


def test_a_bbox_in_the_storage_crs_is_northing_first(ogc: Ogc, ogc_client: TestClient) -> None:
    with ogc.engine.connect() as conn:
        xy = np.array(conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM est.incident")).all())
    x0, x1, y0, y1 = 381_000.0, 390_000.0, 6_164_000.0, 6_170_000.0
    expected = int(
        ((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).sum()
    )
    r = get(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        bbox=f"{y0},{x0},{y1},{x1}",
        **{"bbox-crs": EPSG_3006},
    )
    assert r.json()["numberMatched"] == expected > 100


def test_a_filter_geometry_is_read_in_filter_crs(ogc: Ogc, ogc_client: TestClient) -> None:
    polygon = "POLYGON((13.20 55.62, 13.25 55.62, 13.25 55.66, 13.20 55.66, 13.20 55.62))"
    swapped = "POLYGON((55.62 13.20, 55.62 13.25, 55.66 13.25, 55.66 13.20, 55.62 13.20))"
    base = get(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        filter=f"S_INTERSECTS(geometry, {polygon})",
    ).json()
    other = get(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        filter=f"S_INTERSECTS(geometry, {swapped})",
        **{"filter-crs": EPSG_4326},
    ).json()
    assert base["numberMatched"] == other["numberMatched"] > 100


@pytest.mark.parametrize("name", ["crs", "bbox-crs", "filter-crs"])
def test_a_crs_that_is_not_offered_is_400_naming_the_choices(
    ogc: Ogc, ogc_client: TestClient, name: str
) -> None:
    r = get(
        ogc_client,
        ogc,
        "/ogc/collections/incidents/items",
        bbox="13.2,55.6,13.3,55.7",
        **{name: "http://www.opengis.net/def/crs/EPSG/0/3857"},
    )
    assert r.status_code == 400
    assert name in r.json()["detail"] and EPSG_3006 in r.json()["detail"]

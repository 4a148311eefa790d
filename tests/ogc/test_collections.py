"""/ogc/collections and /ogc/collections/{id}: which collections a role reads, their extents,
CRS lists and links."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api.ogc.collections import COLLECTIONS
from tests.ogc.conftest import Ogc, get

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
LAYERS = {"hotspots", "density", "gistar", "emerging", "forecast", "viewer-grid"}


@pytest.mark.parametrize(
    ("org", "role", "expected"),
    [
        ("polis", "analyst", {"areas", "incidents"} | LAYERS),
        ("kommun", "reporter", {"areas", "incidents"} | LAYERS),
        ("insyn", "viewer", {"areas"} | LAYERS),
        ("kommun", "admin", {"areas"} | LAYERS),
        ("kommun", "ingest", {"areas"}),
    ],
)
def test_the_list_holds_the_collections_the_role_may_read(
    ogc: Ogc, ogc_client: TestClient, org: str, role: str, expected: set[str]
) -> None:
    r = get(ogc_client, ogc, "/ogc/collections", (org, role))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert {c["id"] for c in r.json()["collections"]} == expected
    assert r.json()["links"][0]["rel"] == "self"


@pytest.mark.parametrize("collection", [c.id for c in COLLECTIONS])
def test_each_collection_describes_its_crs_extent_and_links(
    ogc: Ogc, ogc_client: TestClient, collection: str
) -> None:
    r = get(ogc_client, ogc, f"/ogc/collections/{collection}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == collection and body["itemType"] == "feature"
    assert body["crs"] == [CRS84, f"{EPSG}4326", f"{EPSG}3006"]
    assert body["storageCrs"] == f"{EPSG}3006"
    spatial = body["extent"]["spatial"]
    assert spatial["crs"] == CRS84
    minx, miny, maxx, maxy = spatial["bbox"][0]
    assert 10 < minx < maxx < 26 and 54 < miny < maxy < 70  # around Sweden, lon/lat
    rels = {link["rel"]: link for link in body["links"]}
    assert rels["items"]["type"] == "application/geo+json"
    assert rels["items"]["href"] == f"http://testserver/ogc/collections/{collection}/items"
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/queryables"]["type"] == (
        "application/schema+json"
    )
    if collection in LAYERS:
        start, end = body["extent"]["temporal"]["interval"][0]
        assert start == "2026-11-08T23:00:00Z" and end == "2026-11-22T23:00:00Z"  # W46, W47


def test_a_layers_extent_is_the_areas_the_caller_covers(ogc: Ogc, ogc_client: TestClient) -> None:
    wide = get(ogc_client, ogc, "/ogc/collections/hotspots", ("polis", "analyst")).json()
    narrow = get(ogc_client, ogc, "/ogc/collections/hotspots", ("kommun", "analyst")).json()
    everything = get(ogc_client, ogc, "/ogc/collections/areas", ("kommun", "analyst")).json()
    w, n, e = (b["extent"]["spatial"]["bbox"][0] for b in (wide, narrow, everything))
    assert e[0] < w[0] and w[2] < e[2]  # two kommuner inside Sweden
    assert w[0] <= n[0] and n[2] <= w[2]


def test_collections_a_role_may_not_read_answer_403_and_unknown_ones_404(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    for path in ("/ogc/collections/incidents", "/ogc/collections/incidents/items"):
        r = get(ogc_client, ogc, path, ("insyn", "viewer"))
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = get(ogc_client, ogc, "/ogc/collections/hotspots/items", ("kommun", "ingest"))
    assert r.status_code == 403
    r = get(ogc_client, ogc, "/ogc/collections/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"

"""Vector tiles of the run layers: /ogc/collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}.

A tile is decoded (mapbox-vector-tile) and compared with the items of the same box: every
feature the items give for the tile's box is in the tile, nothing is in it that the items do
not give for the box grown by the tile's buffer, and each attribute is the item's property.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from app.access import admin
from app.api.ogc.tiles import BUFFER, EXTENT, MERGED_UNITS, Tile, lonlat_bounds
from app.core.vocabulary import GrantLevel
from geo.crs import transform_geometries
from tests.ogc.conftest import AREA_A, Ogc, all_features, get

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "data" / "tilejson" / "schema-3.0.0.json").read_text()
)
LAYERS = ("hotspots", "density", "gistar", "emerging", "forecast", "viewer-grid")
ANALYST = ("polis", "analyst")
VIEWER = ("insyn", "viewer")
ANALYST_ONLY = {"stats", "change_label", "p", "isopleth", "trend_p", "hot_steps", "flagged"}


def tile_of(lon: float, lat: float, z: int) -> Tile:
    """The WebMercatorQuad tile holding a point."""
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return Tile(z, y, x)


def decoded(content: bytes, layer: str) -> list[dict[str, Any]]:
    """The features of a tile's one layer."""
    if not content:
        return []
    found = mapbox_vector_tile.decode(content)
    assert set(found) == {layer}, set(found)
    features: list[dict[str, Any]] = found[layer]["features"]
    return features


def fetch(
    client: TestClient, ogc: Ogc, layer: str, tile: Tile, who: tuple[str, str], **params: Any
) -> Any:
    path = f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}"
    return get(client, ogc, path, who, **params)


def items_in(
    client: TestClient,
    ogc: Ogc,
    layer: str,
    box: tuple[float, float, float, float],
    who: tuple[str, str],
) -> dict[str, dict[str, Any]]:
    """The items of a CRS84 box, by feature id (as text, the tiles' `fid`)."""
    bbox = ",".join(f"{v:.7f}" for v in box)
    path = f"/ogc/collections/{layer}/items"
    found = all_features(client, ogc, path, who, bbox=bbox, limit=10_000)
    return {str(f["id"]): f for f in found}


def grown(tile: Tile, by: float) -> tuple[float, float, float, float]:
    """A tile's CRS84 box grown by a share of its size on each side."""
    w, s, e, n = lonlat_bounds(tile)
    dx, dy = (e - w) * by, (n - s) * by
    return w - dx, s - dy, e + dx, n + dy


@pytest.fixture(scope="module")
def centre(ogc: Ogc) -> tuple[float, float]:
    """Where the hotspots of 1230 are: the centre of its biggest viewer hotspot, lon/lat."""
    row = ogc.rows(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Transform(ST_Centroid(h.viewer_geom), 4326) c "
        "FROM est.hotspot h JOIN est.layer_current lc ON lc.run_id = h.run_id "
        "JOIN est.hotspot_run r ON r.id = h.run_id JOIN est.area a ON a.id = r.area_id "
        "WHERE lc.layer = 'hotspots' AND a.code = :a AND h.viewer_geom IS NOT NULL "
        "ORDER BY h.viewer_count DESC LIMIT 1) s",
        a=AREA_A,
    )[0]
    return float(row[0]), float(row[1])


@pytest.mark.parametrize("who", [ANALYST, VIEWER], ids=["analyst", "viewer"])
@pytest.mark.parametrize("layer", LAYERS)
def test_a_tile_holds_the_items_of_its_box_with_their_properties(
    ogc: Ogc,
    ogc_client: TestClient,
    centre: tuple[float, float],
    layer: str,
    who: tuple[str, str],
) -> None:
    tile = tile_of(*centre, 13)
    r = fetch(ogc_client, ogc, layer, tile, who, area=AREA_A)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = decoded(r.content, layer)
    inside = items_in(ogc_client, ogc, layer, lonlat_bounds(tile), who)
    near = items_in(ogc_client, ogc, layer, grown(tile, 1.5 * BUFFER / EXTENT), who)
    inside = {k: v for k, v in inside.items() if v["properties"]["area"] == AREA_A}
    near = {k: v for k, v in near.items() if v["properties"]["area"] == AREA_A}
    fids = [f["properties"]["fid"] for f in features]
    assert len(fids) == len(set(fids))
    assert len(inside) > 0 and set(inside) <= set(fids) <= set(near)
    for f in features:
        item = near[f["properties"]["fid"]]["properties"]
        for name, value in f["properties"].items():
            if name == "fid":
                continue
            expected = item[name]
            if isinstance(value, float):
                assert value == pytest.approx(expected, rel=1e-6), name
            elif name.startswith("period_"):
                assert value.replace("Z", "+00:00")[:19] == expected[:19], name
            else:
                assert value == expected, name
        assert set(f["properties"]) - {"fid"} == {
            k for k, v in item.items() if v is not None and not isinstance(v, dict)
        }
        if who == VIEWER:
            assert item["audience"] == "viewer"
            assert not ANALYST_ONLY & set(f["properties"])


def test_a_viewers_hotspot_tile_holds_no_hull(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float]
) -> None:
    """The viewer version of a hotspot is a union of grid squares: moved back to SWEREF 99 TM,
    every vertex in a viewer's tile lies on the 125 m grid (within the tile's snapping), where
    the analyst's hulls have vertices well off it (hull vertices are incident coordinates)."""
    tile = tile_of(*centre, 15)

    def offsets(who: tuple[str, str]) -> np.ndarray:
        features = decoded(fetch(ogc_client, ogc, "hotspots", tile, who).content, "hotspots")
        assert features, who
        minx, miny, maxx, _ = tile.bounds()
        unit = (maxx - minx) / EXTENT
        shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
        xy = np.vstack([shapely.get_coordinates(g) for g in shapes])
        inner = ((xy > -BUFFER + 1) & (xy < EXTENT + BUFFER - 1)).all(axis=1)
        xy = xy[inner]  # not the corners that clipping at the buffer's edge made
        mercator = shapely.points(minx + xy[:, 0] * unit, miny + xy[:, 1] * unit)
        sweref = shapely.get_coordinates(transform_geometries(mercator, 3857, 3006))
        return np.abs(sweref - np.round(sweref / 125) * 125).max(axis=1)

    assert offsets(VIEWER).max() < 2.0  # a tile unit at zoom 15 is 1.2 m of Web Mercator
    assert offsets(ANALYST).max() > 10.0


def test_feature_ids_are_integers_that_are_the_same_at_every_zoom(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float]
) -> None:
    for layer in ("hotspots", "density", "viewer-grid"):
        seen: dict[str, int] = {}
        for z in (11, 13, 15):
            tile = tile_of(*centre, z)
            for f in decoded(fetch(ogc_client, ogc, layer, tile, ANALYST).content, layer):
                assert isinstance(f["id"], int) and 0 <= f["id"] < 2**53
                fid = f["properties"]["fid"]
                assert seen.setdefault(fid, f["id"]) == f["id"], (layer, fid)
        assert len(seen) > 3, layer
        assert len(set(seen.values())) == len(seen), layer


def test_a_tile_follows_the_week_asked_for(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float]
) -> None:
    tile = tile_of(*centre, 13)
    for week in ("2026-W46", "2026-W47"):
        features = decoded(
            fetch(ogc_client, ogc, "hotspots", tile, VIEWER, area=AREA_A, week=week).content,
            "hotspots",
        )
        assert features and {f["properties"]["week"] for f in features} == {week}


def test_the_tilejson_of_every_layer_validates_and_names_its_fields(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float]
) -> None:
    for layer in LAYERS:
        for who in (ANALYST, VIEWER):
            path = f"/ogc/collections/{layer}/tiles/WebMercatorQuad/tilejson.json"
            r = get(ogc_client, ogc, path, who, area=AREA_A)
            assert r.status_code == 200, r.text
            doc = r.json()
            jsonschema.validate(doc, SCHEMA)
            assert doc["tilejson"] == "3.0.0"
            (template,) = doc["tiles"]
            assert template.startswith("http") and "{z}/{y}/{x}?area=" + AREA_A in template
            (vector_layer,) = doc["vector_layers"]
            assert vector_layer["id"] == layer
            assert set(vector_layer["fields"].values()) <= {"Number", "String", "Boolean"}
            if who == VIEWER:
                assert not ANALYST_ONLY & set(vector_layer["fields"])
            west, south, east, north = doc["bounds"]
            assert west < centre[0] < east and south < centre[1] < north
            assert doc["minzoom"] <= 13 <= doc["maxzoom"]
            # the template, filled in, is a tile the same key may fetch
            url = template.replace("{z}", "13").replace("{y}", str(tile_of(*centre, 13).y))
            url = url.replace("{x}", str(tile_of(*centre, 13).x))
            assert ogc_client.get(url, headers=ogc.headers(*who)).status_code == 200


def test_the_etag_of_a_tile_gives_304_until_something_else_is_asked(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float]
) -> None:
    tile = tile_of(*centre, 13)
    first = fetch(ogc_client, ogc, "density", tile, VIEWER)
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.content
    assert first.headers["cache-control"].startswith("private")
    assert {v.strip() for v in first.headers["vary"].split(",")} >= {"Authorization", "Cookie"}
    path = f"/ogc/collections/density/tiles/WebMercatorQuad/{tile.z}/{tile.y}/{tile.x}"
    again = ogc_client.get(path, headers={**ogc.headers(*VIEWER), "If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    stale = ogc_client.get(path, headers={**ogc.headers(*VIEWER), "If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == first.content
    # another caller, another week, another tile: another answer, another tag
    assert fetch(ogc_client, ogc, "density", tile, ANALYST).headers["etag"] != tag
    assert fetch(ogc_client, ogc, "density", tile, VIEWER, week="2026-W46").headers["etag"] != tag
    nearby = Tile(tile.z, tile.y, tile.x + 1)
    assert fetch(ogc_client, ogc, "density", nearby, VIEWER).headers["etag"] != tag


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("hotspots/tiles/WebMercatorQuad/25/0/0", "tileMatrix"),
        ("hotspots/tiles/WebMercatorQuad/3/8/0", "tileRow"),
        ("hotspots/tiles/WebMercatorQuad/3/0/-1", "tileCol"),
        ("hotspots/tiles/WebMercatorQuad/3/0/0?bbox=1,2,3,4", "bbox"),
        ("hotspots/tiles/WebMercatorQuad/3/0/0?week=vecka", "week"),
    ],
)
def test_a_tile_outside_the_matrix_or_an_unknown_parameter_is_a_400_naming_it(
    ogc: Ogc, ogc_client: TestClient, path: str, detail: str
) -> None:
    r = ogc_client.get(f"/ogc/collections/{path}", headers=ogc.headers(*VIEWER))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]


def test_tiles_need_a_key_and_a_role_that_reads_layers(ogc: Ogc, ogc_client: TestClient) -> None:
    path = "/ogc/collections/hotspots/tiles/WebMercatorQuad/10/300/500"
    assert ogc_client.get(path).status_code == 401
    assert get(ogc_client, ogc, path, ("polis", "ingest")).status_code == 403
    nothing = get(ogc_client, ogc, path, ("utan", "viewer"))
    assert nothing.status_code == 200 and decoded(nothing.content, "hotspots") == []


def test_the_tileset_list_links_the_tiles_and_the_tilejson(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = get(ogc_client, ogc, "/ogc/collections/density/tiles", VIEWER, area=AREA_A)
    assert r.status_code == 200, r.text
    (tileset,) = r.json()["tilesets"]
    assert tileset["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    rels = {link["rel"]: link["href"] for link in tileset["links"]}
    assert rels["item"].endswith("/{tileMatrix}/{tileRow}/{tileCol}?area=" + AREA_A)
    assert get(ogc_client, ogc, rels["describedby"], VIEWER).json()["tilejson"] == "3.0.0"


def test_items_of_a_run_layer_have_an_etag_too_and_items_of_incidents_none(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    first = get(ogc_client, ogc, "/ogc/collections/hotspots/items", VIEWER, area=AREA_A)
    tag = first.headers["etag"]
    again = ogc_client.get(
        "/ogc/collections/hotspots/items",
        params={"area": AREA_A},
        headers={**ogc.headers(*VIEWER), "If-None-Match": tag},
    )
    assert again.status_code == 304 and again.headers["etag"] == tag
    proxied = ogc_client.get(  # other absolute links: another answer
        "/ogc/collections/hotspots/items",
        params={"area": AREA_A},
        headers={**ogc.headers(*VIEWER), "If-None-Match": tag, "Host": "elsewhere.example"},
    )
    assert proxied.status_code == 200 and proxied.headers["etag"] != tag
    raw = get(ogc_client, ogc, "/ogc/collections/incidents/items", ANALYST, limit=1)
    assert raw.status_code == 200 and "etag" not in raw.headers


def test_a_box_on_cell_edges_gets_every_cell_that_meets_it_even_by_an_edge(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    """Cells are found by their index under a box (app.api.ogc.collections.CellRows); the
    answer must still be every cell whose square meets the box, counted here from the table."""
    run, size = ogc.rows(
        "SELECT c.run_id, min(c.cell_size_m) FROM est.density_cell c "
        "JOIN est.layer_current lc ON lc.run_id = c.run_id AND lc.layer = 'density' "
        "JOIN est.hotspot_run r ON r.id = c.run_id JOIN est.area a ON a.id = r.area_id "
        "WHERE a.code = :a GROUP BY c.run_id",
        a=AREA_A,
    )[0]
    cells = np.array(ogc.rows("SELECT ix, iy FROM est.density_cell WHERE run_id = :r", r=run))
    ix, iy = (int(np.median(cells[:, 0])), int(np.median(cells[:, 1])))
    x0, y0 = ix * size, iy * size  # on cell edges: the cells before touch the box
    x1, y1 = x0 + 7 * size, y0 + 5 * size
    meets = (
        ((cells[:, 0] + 1) * size >= x0)
        & (cells[:, 0] * size <= x1)
        & ((cells[:, 1] + 1) * size >= y0)
        & (cells[:, 1] * size <= y1)
    )
    expected = {f"{run}:{size}:{a}:{b}" for a, b in cells[meets].tolist()}
    found = all_features(
        ogc_client,
        ogc,
        "/ogc/collections/density/items",
        ANALYST,
        run=run,
        bbox=f"{y0},{x0},{y1},{x1}",
        **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3006"},
    )
    assert len(expected) > 40
    assert {str(f["id"]) for f in found} == expected


@pytest.mark.parametrize("who", [ANALYST, VIEWER], ids=["analyst", "viewer"])
def test_a_coarse_density_tile_merges_cells_into_blocks_of_the_coarser_grid(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float], who: tuple[str, str]
) -> None:
    """Where cells would be smaller than MERGED_UNITS of the tile's grid, a density tile holds
    the cells of a coarser grid (side × 2^k, index >> k): each the mean density and the least
    isopleth of the items' cells it holds, just large enough to span MERGED_UNITS."""
    tile = tile_of(*centre, 10)
    features = decoded(fetch(ogc_client, ogc, "density", tile, who, area=AREA_A).content, "density")
    inside = items_in(ogc_client, ogc, "density", lonlat_bounds(tile), who)
    near = items_in(ogc_client, ogc, "density", grown(tile, 1.5 * BUFFER / EXTENT), who)
    assert features and inside
    fine = {f["properties"]["cell_size_m"] for f in near.values()}
    assert len(fine) == 1
    (size,) = fine
    blocks: dict[str, list[dict[str, Any]]] = {}
    shift = None
    for f in features:
        p = f["properties"]
        k = round(math.log2(p["cell_size_m"] / size))
        assert k >= 1 and p["cell_size_m"] == size << k
        assert shift in (None, k)  # one zoom, one cell size: one block size
        shift = k
        assert p["fid"] == f"{p['run']}:{p['cell_size_m']}:{p['ix']}:{p['iy']}"
        members = [
            item["properties"]
            for item in near.values()
            if item["properties"]["run"] == p["run"]
            and (item["properties"]["ix"] >> k, item["properties"]["iy"] >> k) == (p["ix"], p["iy"])
        ]
        assert members, p["fid"]
        blocks[p["fid"]] = members
        assert p["density"] == pytest.approx(np.mean([m["density"] for m in members]), rel=1e-9)
        if who == ANALYST:
            assert p["isopleth"] == pytest.approx(min(m["isopleth"] for m in members), rel=1e-12)
        else:
            assert "isopleth" not in p
        # the block spans MERGED_UNITS of the tile's grid, and half of it would not
        xs = [x for ring in f["geometry"]["coordinates"] for x, _ in ring]
        side = max(xs) - min(xs)
        if min(xs) > -BUFFER and max(xs) < EXTENT + BUFFER:  # not clipped at the buffer
            assert MERGED_UNITS * 0.9 <= side < 2 * MERGED_UNITS * 1.1, side
    assert shift is not None
    run_of = {f["properties"]["run"] for f in features}
    held = {
        f"{p['run']}:{size << shift}:{p['ix'] >> shift}:{p['iy'] >> shift}"
        for p in (item["properties"] for item in inside.values())
        if p["run"] in run_of
    }
    assert held <= set(blocks)
    assert len(features) < len(inside)


def test_a_kept_tile_is_not_served_once_the_grant_that_let_the_caller_see_it_changes(
    ogc: Ogc, ogc_client: TestClient, centre: tuple[float, float]
) -> None:
    """Tiles made once are kept by their ETag (app.api.caching.AnswerCache). When the raw grant
    behind an analyst's tile becomes an aggregate one, the next ask gets the viewer version,
    not the kept analyst one."""
    tile = tile_of(*centre, 13)
    first = fetch(ogc_client, ogc, "density", tile, ANALYST, area=AREA_A)
    again = fetch(ogc_client, ogc, "density", tile, ANALYST, area=AREA_A)
    assert first.content == again.content and first.headers["etag"] == again.headers["etag"]
    assert {f["properties"]["audience"] for f in decoded(first.content, "density")} == {"analyst"}

    def grant(level: GrantLevel) -> None:
        with ogc.engine.begin() as conn:
            admin.grant_area(conn, ANALYST[0], AREA_A, level, "test")

    grant(GrantLevel.aggregate)
    try:
        after = fetch(ogc_client, ogc, "density", tile, ANALYST, area=AREA_A)
        assert after.status_code == 200 and after.headers["etag"] != first.headers["etag"]
        features = decoded(after.content, "density")
        assert features and {f["properties"]["audience"] for f in features} == {"viewer"}
        assert not any("isopleth" in f["properties"] for f in features)
    finally:
        grant(GrantLevel.raw)
    restored = fetch(ogc_client, ogc, "density", tile, ANALYST, area=AREA_A)
    assert restored.content == first.content

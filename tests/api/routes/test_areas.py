"""Areas: the 290 kommuner and 21 län load, version and list; LPOs are unions of kommuner."""

from __future__ import annotations

import geopandas as gpd
from fastapi.testclient import TestClient
from shapely import affinity
from sqlalchemy import Engine, text

from app.db.areas import create_union_area, load_areas
from app.ingest.areas import read_kommun_file
from tests.conftest import World


def test_the_290_kommuner_can_be_listed_through_the_api(client: TestClient, world: World) -> None:
    codes: list[str] = []
    url: str | None = "/api/v1/areas?kind=kommun&limit=100"
    while url:
        page = client.get(url, headers=world.headers("kommun-1285", "viewer")).json()
        assert page["total"] == 290
        codes += [a["code"] for a in page["items"]]
        url = page["next"]
    assert len(codes) == len(set(codes)) == 290
    assert {"1214", "1285", "1276", "1083", "0765", "0180"} <= set(codes)


def test_the_21_lan_are_loaded_with_their_names(client: TestClient, world: World) -> None:
    page = client.get(
        "/api/v1/areas",
        params={"kind": "lan", "limit": 50},
        headers=world.headers("kommun-1285", "viewer"),
    ).json()
    assert page["total"] == 21
    assert {"code": "12", "name": "Skåne län", "kind": "lan", "version": 1} in page["items"]


def test_an_area_is_a_geojson_feature_in_lon_lat(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/areas/1285", headers=world.headers("kommun-1285", "viewer"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    feature = r.json()
    assert feature["properties"]["name"] == "Eslöv"
    assert feature["geometry"]["type"] == "MultiPolygon"
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert 12.9 < lon < 13.7 and 55.6 < lat < 56.0  # Eslöv, in Skåne


def test_an_unknown_area_is_a_problem_json_404(client: TestClient, world: World) -> None:
    r = client.get("/api/v1/areas/9999", headers=world.headers("kommun-1285", "viewer"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "9999" in r.json()["detail"]


def test_loading_the_same_file_again_changes_nothing(system_engine: Engine) -> None:
    with system_engine.begin() as conn:
        result = load_areas(conn, read_kommun_file())
    assert (result.created, result.updated, result.unchanged) == (0, 0, 311)


def test_a_changed_boundary_becomes_a_new_version_and_the_old_one_is_kept(
    system_engine: Engine,
) -> None:
    frame = read_kommun_file()
    one = frame[frame["code"] == "0765"].copy()
    one["geometry"] = one.geometry.apply(lambda g: affinity.translate(g, xoff=10.0))
    with system_engine.begin() as conn:
        moved = load_areas(conn, gpd.GeoDataFrame(one, crs=frame.crs))
        version = conn.scalar(text("SELECT version FROM est.area WHERE code = '0765'"))
        kept = conn.scalar(
            text(
                "SELECT count(*) FROM est.area_version v JOIN est.area a ON a.id = v.area_id "
                "WHERE a.code = '0765' AND v.version = 1"
            )
        )
        conn.rollback()
    assert (moved.created, moved.updated) == (0, 1)
    assert version == 2 and kept == 1


def test_an_lpo_is_the_union_of_its_kommuner(system_engine: Engine) -> None:
    with system_engine.begin() as conn:
        create_union_area(conn, "lpo-test", "LPO Test", ["1276", "1214"])
        union_km2, parts_km2, members = conn.execute(
            text("""
            SELECT (SELECT ST_Area(geom) FROM est.area WHERE code = 'lpo-test') / 1e6,
                   (SELECT sum(ST_Area(geom)) FROM est.area WHERE code IN ('1276', '1214')) / 1e6,
                   (SELECT count(*) FROM est.area_component c JOIN est.area a ON a.id = c.area_id
                     WHERE a.code = 'lpo-test')
        """)
        ).one()
        conn.rollback()
    assert members == 2
    assert abs(union_km2 - parts_km2) < 0.01 * parts_km2  # neighbours: shared border only

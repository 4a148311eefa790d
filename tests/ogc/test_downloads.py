"""GET /api/v1/areas/{code}/layers/{layer}.geojson, .gpkg and .csv: a whole published layer of
an area as a file that GDAL opens, holding exactly what /ogc items give the same key."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from app.api.routes.downloads import LAYERS
from tests.ogc.conftest import AREA_A, AREA_B, UNION, Ogc, all_features

ANALYST = ("polis", "analyst")  # raw grants on both kommuner: hulls everywhere
VIEWER = ("insyn", "viewer")
EPSG_3006 = "http://www.opengis.net/def/crs/EPSG/0/3006"
FORMATS = ("geojson", "gpkg", "csv")
# what only the analyst version of a layer has: never in a viewer's file
ANALYST_ONLY = {
    "stats",
    "change_label",
    "p",
    "isopleth",
    "trend_p",
    "hot_steps",
    "cold_steps",
    "flagged",
}
needs_gdal = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is missing")


def download(
    client: TestClient,
    ogc: Ogc,
    layer: str,
    extension: str,
    who: tuple[str, str] = ANALYST,
    area: str = AREA_A,
    **params: Any,
) -> httpx.Response:
    """GET a layer file of an area with the key of (organisation, role)."""
    url = f"/api/v1/areas/{area}/layers/{layer}.{extension}"
    return client.get(url, params=params, headers=ogc.headers(*who))


def saved(response: httpx.Response, folder: Path, extension: str) -> Path:
    """The answer written to a file, as a browser saves it."""
    assert response.status_code == 200, response.text
    path = folder / f"download.{extension}"
    path.write_bytes(response.content)
    return path


def items(
    client: TestClient, ogc: Ogc, layer: str, who: tuple[str, str], area: str, **params: Any
) -> list[dict[str, Any]]:
    """Every feature /ogc items give the key for the area, page after page."""
    path = f"/ogc/collections/{layer}/items"
    return all_features(client, ogc, path, who, area=area, limit=10_000, **params)


def ogr_count(path: Path) -> int:
    """The feature count ogrinfo reads from a file."""
    done = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", str(path)], capture_output=True, text=True, check=True
    )
    assert "Feature Count" in done.stdout, done.stdout + done.stderr
    return int(re.findall(r"Feature Count: (\d+)", done.stdout)[0])


def file_ids(path: Path) -> list[str]:
    """The feature ids of a downloaded file, read through GDAL (GeoJSON: its `id` members)."""
    if path.suffix == ".geojson":
        return [str(f["id"]) for f in json.loads(path.read_bytes())["features"]]
    return [str(v) for v in pyogrio.read_dataframe(path, read_geometry=False)["id"]]


@needs_gdal
@pytest.mark.parametrize("extension", FORMATS)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_every_layer_opens_in_gdal_with_the_features_of_the_items(
    ogc: Ogc, ogc_client: TestClient, tmp_path: Path, layer: str, extension: str
) -> None:
    expected = [str(f["id"]) for f in items(ogc_client, ogc, layer, ANALYST, AREA_A)]
    assert expected, f"the test world has no {layer} in {AREA_A}"
    path = saved(download(ogc_client, ogc, layer, extension), tmp_path, extension)
    assert ogr_count(path) == len(expected)
    assert file_ids(path) == expected


def test_the_files_say_what_they_are_and_are_named_after_area_layer_and_week(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    media_types = {
        "geojson": "application/geo+json",
        "gpkg": "application/geopackage+sqlite3",
        "csv": "text/csv; charset=utf-8",
    }
    for extension, media_type in media_types.items():
        r = download(ogc_client, ogc, "hotspots", extension)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == media_type
        disposition = f'attachment; filename="{AREA_A}-hotspots-2026-W47.{extension}"'
        assert r.headers["content-disposition"] == disposition
    r = download(ogc_client, ogc, "viewer-grid", "csv", area=UNION, week="2026-W46")
    assert 'filename="lpo-ogc-viewer-grid-2026-W46.csv"' in r.headers["content-disposition"]


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_viewers_file_equals_the_viewers_items_feature_for_feature(
    ogc: Ogc, ogc_client: TestClient, layer: str
) -> None:
    for area in (AREA_A, UNION):
        expected = items(ogc_client, ogc, layer, VIEWER, area)
        r = download(ogc_client, ogc, layer, "geojson", VIEWER, area)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["type"] == "FeatureCollection"
        assert got["features"] == expected
        for feature in got["features"]:
            assert feature["properties"]["audience"] == "viewer"
            assert not ANALYST_ONLY & set(feature["properties"]), (layer, feature["properties"])


@needs_gdal
def test_a_viewers_geopackage_and_csv_hold_the_viewer_values_only(
    ogc: Ogc, ogc_client: TestClient, tmp_path: Path
) -> None:
    expected = items(ogc_client, ogc, "viewer-grid", VIEWER, AREA_A)
    counts = [f["properties"]["incident_count"] for f in expected]
    assert counts and min(counts) >= 5 and all(n % 5 == 0 for n in counts)  # the privacy rule
    for extension in ("gpkg", "csv"):
        path = saved(
            download(ogc_client, ogc, "viewer-grid", extension, VIEWER), tmp_path, extension
        )
        table = pyogrio.read_dataframe(path, read_geometry=False)
        assert [int(n) for n in table["incident_count"]] == counts
        assert set(table["audience"]) == {"viewer"}
    hotspots = saved(download(ogc_client, ogc, "hotspots", "gpkg", VIEWER), tmp_path, "gpkg")
    fields = set(pyogrio.read_info(hotspots)["fields"])
    assert "incident_count" in fields and not ANALYST_ONLY & fields


def test_an_analyst_gets_the_viewer_version_where_its_raw_grants_do_not_cover_the_area(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    kommun = ("kommun", "analyst")  # raw on 1230, aggregate on the union
    for area, audience in ((AREA_A, "analyst"), (UNION, "viewer"), (AREA_B, "viewer")):
        r = download(ogc_client, ogc, "hotspots", "geojson", kommun, area)
        assert r.status_code == 200, r.text
        features = r.json()["features"]
        assert features == items(ogc_client, ogc, "hotspots", kommun, area)
        assert {f["properties"]["audience"] for f in features} == {audience}


@needs_gdal
def test_the_geopackage_is_in_the_storage_crs_with_the_items_geometries(
    ogc: Ogc, ogc_client: TestClient, tmp_path: Path
) -> None:
    path = saved(download(ogc_client, ogc, "hotspots", "gpkg"), tmp_path, "gpkg")
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:3006" and info["layer_name"] == "hotspots"
    assert info["geometry_type"] == "MultiPolygon"
    table = pyogrio.read_dataframe(path)
    expected = items(ogc_client, ogc, "hotspots", ANALYST, AREA_A, crs=EPSG_3006)
    assert [f["id"] for f in expected] == [int(i) for i in table["id"]]
    for feature, geometry in zip(expected, table.geometry, strict=True):
        northing_first = shapely.geometry.shape(feature["geometry"])
        given = shapely.transform(northing_first, lambda xy: xy[:, ::-1])
        assert given.symmetric_difference(geometry).area < 1.0  # m²: millimetre rounding
        assert feature["properties"]["stats"] is not None  # the analyst version


def test_the_csv_has_a_bom_semicolons_the_properties_and_wkt_in_crs84(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = download(ogc_client, ogc, "hotspots", "csv")
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"\xef\xbb\xbf")
    text = r.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("id;area;profile;week;run;")
    header, *rows = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    assert header[-1] == "wkt" and "incident_count" in header
    expected = items(ogc_client, ogc, "hotspots", ANALYST, AREA_A)
    assert len(rows) == len(expected)
    first = dict(zip(header, rows[0], strict=True))
    assert first["id"] == str(expected[0]["id"])
    assert json.loads(first["stats"]) == expected[0]["properties"]["stats"]
    shape = shapely.from_wkt(first["wkt"])
    lon, lat = shape.centroid.x, shape.centroid.y
    assert 12.9 < lon < 13.3 and 55.5 < lat < 55.7  # Staffanstorp, lon first
    wanted = shapely.geometry.shape(expected[0]["geometry"])
    assert shape.symmetric_difference(wanted).area < 1e-12


def test_week_gives_that_weeks_run_and_run_a_run_by_its_id(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = download(ogc_client, ogc, "density", "geojson", VIEWER, week="2026-W46")
    assert r.status_code == 200, r.text
    earlier = r.json()["features"]
    assert earlier == items(ogc_client, ogc, "density", VIEWER, AREA_A, week="2026-W46")
    assert {f["properties"]["week"] for f in earlier} == {"2026-W46"}
    (run,) = {f["properties"]["run"] for f in earlier}
    current = download(ogc_client, ogc, "density", "geojson", VIEWER).json()["features"]
    assert {f["properties"]["week"] for f in current} == {"2026-W47"}
    by_id = download(ogc_client, ogc, "density", "geojson", VIEWER, run=run)
    assert by_id.status_code == 200 and by_id.json()["features"] == earlier
    assert 'filename="1230-density-2026-W46.geojson"' in by_id.headers["content-disposition"]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"week": "2026-W30"}, "no published run of hotspots for 1230 in 2026-W30"),
        ({"profile": "finns-inte"}, "no published run of hotspots for 1230 with the profile"),
        ({"run": 999_999}, "no published run 999999 of hotspots for 1230"),
    ],
)
def test_nothing_published_for_what_was_asked_is_a_problem_saying_what(
    ogc: Ogc, ogc_client: TestClient, params: dict[str, Any], detail: str
) -> None:
    r = download(ogc_client, ogc, "hotspots", "gpkg", VIEWER, **params)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].startswith(detail) and r.json()["missing"] == "published run"


def test_a_run_of_another_area_is_not_found_in_this_one(ogc: Ogc, ogc_client: TestClient) -> None:
    other = items(ogc_client, ogc, "density", ANALYST, AREA_B)[0]["properties"]["run"]
    r = download(ogc_client, ogc, "density", "csv", ANALYST, AREA_A, run=other)
    assert r.status_code == 404 and f"no published run {other}" in r.json()["detail"]


def test_an_unreadable_week_is_refused_naming_it(ogc: Ogc, ogc_client: TestClient) -> None:
    r = download(ogc_client, ogc, "hotspots", "geojson", VIEWER, week="47")
    assert r.status_code == 422 and "week" in r.json()["detail"]


@pytest.mark.parametrize(
    ("who", "area", "layer", "status", "detail"),
    [
        (("utan", "viewer"), AREA_A, "hotspots", 404, "no area '1230'"),
        (("utan", "analyst"), AREA_A, "density", 404, "no area '1230'"),
        (VIEWER, "9999", "hotspots", 404, "no area '9999'"),
        (VIEWER, AREA_A, "incidents", 404, "no layer 'incidents'"),
        (VIEWER, AREA_A, "areas", 404, "no layer 'areas'"),
        (VIEWER, AREA_A, "hotspot", 404, "no layer 'hotspot'"),
        (("insyn", "ingest"), AREA_A, "hotspots", 403, "needs the role"),
    ],
)
def test_no_grant_no_such_area_or_layer_and_a_role_without_layers_are_refused(
    ogc: Ogc,
    ogc_client: TestClient,
    who: tuple[str, str],
    area: str,
    layer: str,
    status: int,
    detail: str,
) -> None:
    for extension in FORMATS:
        r = download(ogc_client, ogc, layer, extension, who, area)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert detail in r.json()["detail"]


def test_a_download_needs_a_key(ogc_client: TestClient) -> None:
    r = ogc_client.get(f"/api/v1/areas/{AREA_A}/layers/hotspots.geojson")
    assert r.status_code == 401


def test_a_file_of_the_analyst_version_is_an_audited_export_and_a_viewers_file_is_not(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    def exports() -> list[Any]:
        return ogc.rows(
            "SELECT a.role, a.row_count, a.filters FROM est.audit_log a "
            "WHERE a.action = 'layer.export' ORDER BY a.id"
        )

    before = len(exports())
    kommun = ("kommun", "analyst")  # raw on 1230 only
    hulls = download(ogc_client, ogc, "hotspots", "geojson", kommun, AREA_A)
    shown = download(ogc_client, ogc, "hotspots", "csv", kommun, AREA_B)
    viewer = download(ogc_client, ogc, "hotspots", "gpkg", VIEWER, AREA_A)
    assert hulls.status_code == shown.status_code == viewer.status_code == 200
    made = exports()[before:]
    assert len(made) == 1  # the hulls of 1230; the viewer versions are no export
    assert made[0].role == "analyst"
    assert made[0].row_count == len(hulls.json()["features"]) > 0
    assert made[0].filters["layer"] == "hotspots" and made[0].filters["area"] == AREA_A


def test_a_download_has_an_etag_that_answers_304_and_changes_with_the_week(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    first = download(ogc_client, ogc, "density", "gpkg", VIEWER)
    tag = first.headers["etag"]
    assert first.status_code == 200 and first.headers["cache-control"].startswith("private")
    url = f"/api/v1/areas/{AREA_A}/layers/density.gpkg"
    again = ogc_client.get(url, headers={**ogc.headers(*VIEWER), "If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    older = download(ogc_client, ogc, "density", "gpkg", VIEWER, week="2026-W46")
    assert older.status_code == 200 and older.headers["etag"] != tag
    assert download(ogc_client, ogc, "density", "gpkg", ANALYST).headers["etag"] != tag

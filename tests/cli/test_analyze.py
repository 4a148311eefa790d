"""`est analyze`: a file in, a method's result out as GeoJSON, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sklearn import cluster as sk_cluster
from typer.testing import CliRunner

from app.cli import app
from clustering.synthetic import HotspotSpec, generate_incidents

runner = CliRunner()
TO_LONLAT = Transformer.from_crs(3006, 4326, always_xy=True)
TO_UTM33 = Transformer.from_crs(4326, 32633, always_xy=True)


def _write_est_csv(path: Path, n: int, seed: int = 0) -> None:
    specs = [
        HotspotSpec(393_760, 6_189_485, 60, categories={"skadegorelse.klotter": 1}),
        HotspotSpec(395_000, 6_190_500, 80, categories={"tillgrepp.cykelstold": 1}),
    ]
    inc = generate_incidents(
        specs,
        n,
        start=datetime(2026, 9, 7, tzinfo=UTC),
        weeks=8,
        background_share=0.2,
        bounds=(390_000, 6_186_000, 398_000, 6_194_000),
        background_categories={"ovrigt": 1},
        seed=seed,
    )
    lon, lat = TO_LONLAT.transform(inc.x, inc.y)
    lines = [
        "external_id;category;occurred_from;occurred_to;lon;lat;location_precision;description"
    ]
    for i in range(len(inc)):
        t = inc.time[i].astype("datetime64[s]").astype(datetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"a{i};{inc.category[i]};{t};;{lon[i]:.7f};{lat[i]:.7f};address;")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_dbscan_on_a_file_finds_what_scikit_learn_finds_on_the_same_points(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.geojson"
    _write_est_csv(src, 1500)
    result = runner.invoke(
        app,
        [
            "analyze",
            str(src),
            "--method",
            "dbscan",
            "--eps-m",
            "50",
            "--min-samples",
            "15",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text())["features"]
    # the reference: scikit-learn on the same points, projected to the same UTM zone
    rows = [line.split(";") for line in src.read_text().splitlines()[1:]]
    lon = np.array([float(r[4]) for r in rows])
    lat = np.array([float(r[5]) for r in rows])
    x, y = TO_UTM33.transform(lon, lat)
    labels = sk_cluster.DBSCAN(eps=50, min_samples=15).fit(np.column_stack([x, y])).labels_
    assert len(features) == len(set(labels) - {-1}) >= 2
    assert sum(f["properties"]["count"] for f in features) == int((labels >= 0).sum())
    assert "WGS 84 / UTM zone 33N" in result.output


def test_gistar_and_kde_write_grid_cells_in_lon_lat(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    _write_est_csv(src, 800)
    for method in ("gistar", "kde"):
        out = tmp_path / f"{method}.geojson"
        result = runner.invoke(
            app,
            [
                "analyze",
                str(src),
                "--method",
                method,
                "--cell-size-m",
                "100",
                "--bandwidth-m",
                "200",
                "-o",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        features = json.loads(out.read_text())["features"]
        assert features and features[0]["geometry"]["type"] == "Polygon"
        lon, lat = features[0]["geometry"]["coordinates"][0][0]
        assert 13.0 < lon < 13.6 and 55.7 < lat < 56.0


def test_gistar_says_it_cannot_conclude_on_few_incidents(tmp_path: Path) -> None:
    src = tmp_path / "few.csv"
    _write_est_csv(src, 12)
    result = runner.invoke(
        app, ["analyze", str(src), "--method", "gistar", "-o", str(tmp_path / "o.geojson")]
    )
    assert result.exit_code == 1
    assert "needs at least 30 incidents" in result.output
    assert not (tmp_path / "o.geojson").exists()


def test_hours_are_the_files_own_local_hours(tmp_path: Path) -> None:
    # 30 thefts on one Chicago block, every evening at 22:30 local time (03:30 UTC, 05:30 in
    # Stockholm): the chicago mapping names America/Chicago, so the busiest hour is 22
    src, out = tmp_path / "chicago.csv", tmp_path / "out.geojson"
    rows = ["ID,Date,Primary Type,Description,Location Description,Domestic,Latitude,Longitude"]
    for i in range(30):
        day, lon = 1 + i % 28, -87.6298 + i * 1e-5
        rows.append(f"{i},10/{day:02d}/2017 10:30:00 PM,THEFT,RETAIL,STREET,false,41.8781,{lon}")
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = ["analyze", str(src), "--mapping", "chicago", "--method", "dbscan", "-o", str(out)]
    result = runner.invoke(app, [*args, "--eps-m", "50", "--min-samples", "10"])
    assert result.exit_code == 0, result.output
    (feature,) = json.loads(out.read_text())["features"]
    assert feature["properties"]["busiest_hour"] == 22
    assert "times in America/Chicago" in " ".join(result.output.split())


def _with_a_stray_point(src: Path) -> None:
    """Append one incident 120 km from the others (a geocoding slip, say)."""
    with src.open("a", encoding="utf-8") as f:
        f.write("stray;ovrigt;2026-09-10T12:00:00Z;;15.2;56.9;address;\n")


@pytest.mark.parametrize("method", ["kde", "gistar"])
def test_a_stray_point_adds_its_own_cells_not_a_grid_stretched_out_to_it(
    tmp_path: Path, method: str
) -> None:
    src, alone, out = tmp_path / "in.csv", tmp_path / "alone.geojson", tmp_path / "out.geojson"
    _write_est_csv(src, 800)
    args = ["--method", method, "--cell-size-m", "100", "--bandwidth-m", "200"]
    assert runner.invoke(app, ["analyze", str(src), *args, "-o", str(alone)]).exit_code == 0
    _with_a_stray_point(src)
    result = runner.invoke(app, ["analyze", str(src), *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert "crs" not in document  # RFC 7946; our own importer refuses a crs member
    far = [f for f in document["features"] if f["geometry"]["coordinates"][0][0][0] > 14.5]
    near = len(document["features"]) - len(far)
    # the stray point's cells are only the few within reach of it
    reach_m = 600 if method == "kde" else 300
    assert 0 < len(far) <= 3.2 * (reach_m / 100 + 1) ** 2
    assert abs(near - len(json.loads(alone.read_text())["features"])) <= 0.02 * near
    assert "kept to the cells within" in " ".join(result.output.split())


def test_an_area_keeps_every_method_to_its_cells_and_points(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    _write_est_csv(src, 1500)
    # the western hotspot only (SWEREF 99 TM), as a GeoPackage in its own CRS
    square = shapely.box(392_500, 6_188_000, 394_500, 6_190_500)
    area = tmp_path / "area.gpkg"
    gpd.GeoDataFrame({"name": ["väst"]}, geometry=[square], crs="EPSG:3006").to_file(area)
    lon_min, lat_min = TO_LONLAT.transform(392_500, 6_188_000)
    lon_max, lat_max = TO_LONLAT.transform(394_500, 6_190_500)
    for method in ("dbscan", "kde", "gistar"):
        out = tmp_path / f"{method}.geojson"
        args = ["analyze", str(src), "--method", method, "--area", str(area), "-o", str(out)]
        result = runner.invoke(app, [*args, "--eps-m", "50", "--min-samples", "15"])
        assert result.exit_code == 0, result.output
        features = json.loads(out.read_text())["features"]
        assert features, method
        for f in features:
            for lon, lat in f["geometry"]["coordinates"][0]:
                # cells and hulls may reach a cell or a buffer beyond the area's edge
                assert (
                    lon_min - 0.01 < lon < lon_max + 0.01 and lat_min - 0.01 < lat < lat_max + 0.01
                )


def test_a_study_area_too_large_to_compute_is_refused_saying_where_the_points_are(
    tmp_path: Path,
) -> None:
    src = tmp_path / "in.csv"
    _write_est_csv(src, 100)
    with src.open("a", encoding="utf-8") as f:
        f.write("zero;ovrigt;2026-09-10T12:00:00Z;;0.0;0.0;address;\n")  # the classic 0/0
    out = tmp_path / "o.geojson"
    result = runner.invoke(app, ["analyze", str(src), "--method", "kde", "-o", str(out)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "million cells of 100 m (at most 25 million)" in said and "--area" in said
    assert "lon 0.000 and 13." in said and not out.exists()


def test_an_unreadable_area_file_is_a_clear_error(tmp_path: Path) -> None:
    src, area = tmp_path / "in.csv", tmp_path / "area.geojson"
    _write_est_csv(src, 100)
    area.write_text("not geojson", encoding="utf-8")
    result = runner.invoke(
        app, ["analyze", str(src), "--method", "kde", "--area", str(area), "-o", "x.geojson"]
    )
    assert result.exit_code == 1 and "--area: cannot read" in result.output

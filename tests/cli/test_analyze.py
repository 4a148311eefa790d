"""`est analyze`: a file in, a method's result out as GeoJSON, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
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

"""GDAL's OGC API – Features driver (ogrinfo, ogr2ogr) against the service under uvicorn,
authenticated with HTTP Basic (the key as the password), as a GIS user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from app.api.ogc.collections import COLLECTIONS
from tests.ogc.conftest import Ogc

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed"),
]


def gdal(ogc: Ogc, *args: str, who: tuple[str, str] = ("polis", "analyst")) -> str:
    """Run a GDAL command with Basic authentication; return what it printed."""
    env = {
        **os.environ,
        "GDAL_HTTP_AUTH": "BASIC",
        "GDAL_HTTP_USERPWD": f"qgis:{ogc.token(*who)}",
        "GDAL_HTTP_TIMEOUT": "60",
    }
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def read_layer(
    ogc: Ogc,
    server: str,
    folder: Path,
    layer: str,
    *options: str,
    who: tuple[str, str] = ("polis", "analyst"),
) -> list[dict]:
    """The features ogr2ogr copies from a collection (with its feature ids), as GeoJSON."""
    out = folder / f"{layer}.geojsonl"
    gdal(
        ogc,
        "ogr2ogr",
        "-f",
        "GeoJSONSeq",
        "-preserve_fid",
        *options,
        str(out),
        f"OAPIF:{server}",
        layer,
        who=who,
    )
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def test_every_collection_opens_with_its_features(ogc: Ogc, server: str) -> None:
    listed = gdal(ogc, "ogrinfo", "-ro", "-q", f"OAPIF:{server}")
    for collection in COLLECTIONS:
        assert collection.id in listed
        summary = gdal(ogc, "ogrinfo", "-ro", "-so", f"OAPIF:{server}", collection.id)
        count = int(summary.split("Feature Count: ")[1].split()[0])
        assert count > 0, collection.id
        assert f"Geometry: {collection.geometry_type.replace('Multi', 'Multi ')}" in summary


def test_a_viewer_opens_the_layers_but_not_the_incidents(ogc: Ogc, server: str) -> None:
    listed = gdal(ogc, "ogrinfo", "-ro", "-q", f"OAPIF:{server}", who=("insyn", "viewer"))
    assert "hotspots" in listed and "incidents" not in listed


def test_paging_through_every_incident_returns_exactly_the_stored_count(
    ogc: Ogc, server: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    features = read_layer(ogc, server, tmp_path, "incidents", "-oo", "PAGE_SIZE=1000")
    seconds = time.perf_counter() - started
    assert ogc.incident_count >= 25_000
    assert len(features) == len({f["id"] for f in features}) == ogc.incident_count
    print(f"ogr2ogr read {len(features)} incidents in pages of 1000 in {seconds:.1f} s")


def test_gdal_follows_next_links_with_its_own_page_size(
    ogc: Ogc, server: str, tmp_path: Path
) -> None:
    features = read_layer(ogc, server, tmp_path, "viewer-grid", who=("insyn", "viewer"))
    stored = ogc.scalar(
        "SELECT count(*) FROM est.viewer_cell c JOIN est.layer_current l "
        "ON l.run_id = c.run_id AND l.layer = 'viewer' WHERE c.layer = 'counts'"
    )
    assert len(features) == stored > 10  # GDAL 3.6 asks for 10 a page unless told otherwise


def test_a_bbox_query_returns_the_incidents_inside_it(
    ogc: Ogc, server: str, tmp_path: Path
) -> None:
    box = (13.20, 55.62, 13.25, 55.66)
    spat = ("-spat", *map(str, box))
    features = read_layer(ogc, server, tmp_path, "incidents", "-oo", "PAGE_SIZE=1000", *spat)
    rows = ogc.rows("SELECT id, ST_X(geom), ST_Y(geom) FROM est.incident")
    lon, lat = Transformer.from_crs(3006, 4326, always_xy=True).transform(
        np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    )
    inside = (lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])
    expected = {r[0] for r, keep in zip(rows, inside, strict=True) if keep}
    got = {f["id"] for f in features}
    assert got == expected and 0 < len(got) < len(rows)


def test_a_layer_read_by_gdal_equals_the_stored_viewer_values(
    ogc: Ogc, server: str, tmp_path: Path
) -> None:
    features = read_layer(ogc, server, tmp_path, "hotspots", who=("insyn", "viewer"))
    stored = dict(
        ogc.rows("""
            SELECT h.id, h.viewer_count FROM est.hotspot h
            JOIN est.layer_current l ON l.run_id = h.run_id AND l.layer = 'hotspots'
            WHERE h.viewer_geom IS NOT NULL
        """)
    )
    assert {f["id"]: f["properties"]["incident_count"] for f in features} == stored

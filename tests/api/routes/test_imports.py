"""POST /api/v1/imports: a file upload takes the same path as `est import`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.cli.test_import import HEADER, _rows
from tests.conftest import World
from tests.ingest.test_foreign_exports import incident_collection


def _upload(
    client: TestClient, world: World, content: str, role: str = "reporter", **form: str
) -> object:
    return client.post(
        "/api/v1/imports",
        files={"file": ("incidenter.csv", content.encode("utf-8"), "text/csv")},
        data={"source": "upload", **form},
        headers=world.headers("ingest-test", role),
    )


def test_an_uploaded_file_is_imported_and_a_second_upload_changes_nothing(
    client: TestClient, world: World
) -> None:
    content = "\n".join([HEADER, *_rows(50, "u")]) + "\n"
    first = _upload(client, world, content)
    again = _upload(client, world, content)
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["created"], again.json()["unchanged"]) == (50, 50)


def test_a_file_with_bad_rows_is_refused_whole_unless_valid_rows_are_accepted(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    content = "\n".join([HEADER, *_rows(40, "v", bad_every=20)]) + "\n"
    refused = _upload(client, world, content)
    assert refused.status_code == 422
    body = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert body["rejected_count"] == 2
    assert [(r["row"], r["field"]) for r in body["rejected"]] == [(8, "category"), (28, "category")]
    with system_engine.connect() as conn:
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM est.incident WHERE external_id LIKE 'v%' "
                    "AND source = 'upload'"
                )
            )
            == 0
        )
    accepted = _upload(client, world, content, accept_valid="true")
    assert accepted.status_code == 200 and accepted.json()["created"] == 38


def test_viewers_cannot_import(client: TestClient, world: World) -> None:
    assert _upload(client, world, HEADER + "\n", role="viewer").status_code == 403


def test_an_unknown_mapping_is_a_clear_422(client: TestClient, world: World) -> None:
    r = _upload(client, world, HEADER + "\n", mapping="../../etc/passwd")
    assert r.status_code == 422 and "presets" in r.json()["detail"]


def _post(
    client: TestClient,
    world: World,
    file: tuple[str, bytes, str],
    mapping_file: tuple[str, bytes, str] | None = None,
    **form: str,
) -> Any:
    files = {"file": file, **({"mapping_file": mapping_file} if mapping_file else {})}
    return client.post(
        "/api/v1/imports",
        files=files,
        data={"source": "upload", **form},
        headers=world.headers("ingest-test", "reporter"),
    )


def _collection(external_id: str) -> bytes:
    collection = incident_collection()
    feature = collection["features"][0]
    feature["properties"]["external_id"] = external_id
    feature["geometry"]["coordinates"] = [14.1375, 56.551]  # in Älmhult
    return json.dumps(collection).encode("utf-8")


def test_a_geojson_upload_is_read_as_geojson_with_the_default_mapping(
    client: TestClient, world: World
) -> None:
    for name in ("incidenter.geojson", "export"):  # by its suffix, or by its content
        r = _post(client, world, (name, _collection(f"gj-{name}"), "application/geo+json"))
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 1


def test_a_geopackage_upload_is_read_through_an_uploaded_mapping_file(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    frame = gpd.GeoDataFrame(
        {
            "Ärende": ["gp-1", "gp-2"],
            "Datum": ["2026-10-01", "2026-10-02 21:30"],
            "Typ": ["Klotter", "Cykelstöld"],
        },
        geometry=[shapely.Point(440_900 + i * 10, 6_268_000) for i in range(2)],  # Älmhult
        crs="EPSG:3006",
    )
    gpkg = tmp_path / "rapporter.gpkg"
    frame.to_file(gpkg, layer="rapporter")
    mapping = (
        "source: rapporter\nid: Ärende\ntime: {column: Datum, timezone: Europe/Stockholm}\n"
        "category:\n  column: Typ\n  map: {Klotter: skadegorelse.klotter, "
        "Cykelstöld: tillgrepp.cykelstold}\nprecision: address\n"
    )
    r = _post(
        client,
        world,
        ("rapporter.gpkg", gpkg.read_bytes(), "application/geopackage+sqlite3"),
        ("rapporter.yaml", mapping.encode("utf-8"), "application/yaml"),
        source="",
    )
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["rejected_count"]) == (2, 0)


def test_a_mapping_file_with_an_unknown_code_is_a_422_naming_the_file_and_the_value(
    client: TestClient, world: World
) -> None:
    mapping = b"id: external_id\ntime: occurred_from\nlocation: {lon: lon, lat: lat}\n"
    mapping += b"category:\n  column: category\n"
    mapping += b"  map: {Klotter: skadegorelse.kloter}\n"
    r = _post(
        client,
        world,
        ("incidenter.csv", (HEADER + "\n").encode(), "text/csv"),
        ("min.yaml", mapping, "application/yaml"),
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == (
        "min.yaml: category.map: 'Klotter' maps to 'skadegorelse.kloter': not a category code "
        "of the taxonomy (data/categories.yaml)"
    )


@pytest.mark.parametrize(
    ("file", "mapping_file", "form", "words"),
    [
        (
            ("trasig.gpkg", b"SQLite format 3\x00" + bytes(200), "application/octet-stream"),
            None,
            {},
            "trasig.gpkg",
        ),
        (
            ("x.csv", b"a;b\n", "text/csv"),
            ("m.yaml", b"id: [", "application/yaml"),
            {},
            "not readable YAML",
        ),
        (
            ("x.csv", b"a;b\n", "text/csv"),
            ("m.yaml", b"\xff\xfe", "application/yaml"),
            {},
            "not UTF-8",
        ),
        (
            ("x.csv", b"a;b\n", "text/csv"),
            ("m.yaml", b"id: a\n", "application/yaml"),
            {"mapping": "est"},
            "not both",
        ),
        (
            ("x.geojson", b'{"type": "FeatureCollection", "features": [', "application/geo+json"),
            None,
            {},
            "x.geojson",
        ),
    ],
)
def test_a_broken_upload_is_a_422_that_says_what_is_wrong(
    client: TestClient,
    world: World,
    file: tuple[str, bytes, str],
    mapping_file: tuple[str, bytes, str] | None,
    form: dict[str, str],
    words: str,
) -> None:
    r = _post(client, world, file, mapping_file, **form)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_rejects_carry_the_value_and_points_outside_say_where_the_extent_is(
    client: TestClient, world: World
) -> None:
    far = "out1;skadegorelse.klotter;2026-10-01T12:00:00+02:00;;2.35;48.85;address;Paris"
    r = _upload(client, world, "\n".join([HEADER, far]) + "\n")
    assert r.status_code == 422
    (reject,) = r.json()["rejected"]
    assert reject["value"] == "2.35, 48.85"
    assert "outside the accepted extent (it lies within lon " in reject["reason"]

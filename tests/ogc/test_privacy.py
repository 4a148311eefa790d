"""What a caller gets follows the access rules, and filters, bbox, S_INTERSECTS, sorting and
numberMatched work on the values the caller may see only: a viewer probing with
`incident_count = 1` or with tiny polygons around a hull learns nothing beyond the viewer
values."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely import wkb as shapely_wkb
from sqlalchemy import text

from tests.ogc.conftest import AREA_A, AREA_B, UNION, Ogc, all_features, get

EPSG_3006 = "http://www.opengis.net/def/crs/EPSG/0/3006"
VIEWER = ("insyn", "viewer")


def _current_hotspots(ogc: Ogc) -> list[Any]:
    with ogc.engine.connect() as conn:
        return conn.execute(
            text("""
            SELECT h.id, a.code AS area, h.incident_count, h.viewer_count,
                   ST_AsBinary(h.geom) AS hull, ST_AsBinary(h.viewer_geom) AS cells
            FROM est.hotspot h
            JOIN est.layer_current l ON l.run_id = h.run_id AND l.layer = 'hotspots'
            JOIN est.area a ON a.id = l.area_id
        """)
        ).all()


def _shape(wkb: Any) -> shapely.Geometry | None:
    return shapely_wkb.loads(bytes(wkb)) if wkb is not None else None


def _ids(client: TestClient, ogc: Ogc, who: tuple[str, str], collection: str, **params: Any) -> set:
    return {
        f["id"]
        for f in all_features(
            client, ogc, f"/ogc/collections/{collection}/items", who, limit=1000, **params
        )
    }


@pytest.mark.parametrize(
    ("who", "audiences"),
    [
        (("polis", "analyst"), {AREA_A: "analyst", AREA_B: "analyst", UNION: "analyst"}),
        # a raw grant on one kommun of the union; the aggregate grant on the union reaches 1231
        (("kommun", "analyst"), {AREA_A: "analyst", AREA_B: "viewer", UNION: "viewer"}),
        (("insyn", "analyst"), {AREA_A: "viewer", AREA_B: "viewer", UNION: "viewer"}),
        (("insyn", "viewer"), {AREA_A: "viewer", AREA_B: "viewer", UNION: "viewer"}),
        (("kommun", "admin"), {AREA_A: "viewer", AREA_B: "viewer", UNION: "viewer"}),
        (("kommun", "reporter"), {AREA_A: "viewer", AREA_B: "viewer", UNION: "viewer"}),
        (("utan", "analyst"), {}),
        (("utan", "viewer"), {}),
    ],
)
def test_the_version_a_caller_gets_follows_its_grants_and_role(
    ogc: Ogc, ogc_client: TestClient, who: tuple[str, str], audiences: dict[str, str]
) -> None:
    for collection in ("hotspots", "density", "forecast"):
        found = all_features(
            ogc_client, ogc, f"/ogc/collections/{collection}/items", who, limit=10_000
        )
        got = {f["properties"]["area"]: f["properties"]["audience"] for f in found}
        assert got == audiences, (collection, who)
        if collection == "forecast":  # what only the analyst version has is null in the other
            viewers = [f["properties"] for f in found if f["properties"]["audience"] == "viewer"]
            assert all(p.get("flagged") is None for p in viewers)


def test_viewer_hotspots_are_cells_and_protected_counts_never_hulls(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    stored = {r.id: r for r in _current_hotspots(ogc)}
    found = all_features(ogc_client, ogc, "/ogc/collections/hotspots/items", VIEWER, crs=EPSG_3006)
    assert found
    for feature in found:
        row = stored[feature["id"]]
        got = shapely.transform(shapely.geometry.shape(feature["geometry"]), lambda c: c[:, ::-1])
        assert got.hausdorff_distance(_shape(row.cells)) < 1e-3
        assert feature["properties"]["incident_count"] == row.viewer_count
        assert feature["properties"]["incident_count"] % 5 == 0
        assert "change_label" not in feature["properties"] and "stats" not in feature["properties"]
    hidden = [r.id for r in stored.values() if r.cells is None]
    assert not hidden or not {f["id"] for f in found} & set(hidden)


@pytest.mark.parametrize("collection", ["hotspots", "gistar", "viewer-grid"])
def test_a_viewer_asking_for_counts_of_one_finds_none(
    ogc: Ogc, ogc_client: TestClient, collection: str
) -> None:
    for ask in (
        {"filter": "incident_count = 1"},
        {"incident_count": 1},
        {"filter": "incident_count < 5 AND incident_count > 0"},
    ):
        r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", VIEWER, **ask)
        assert r.status_code == 200 and r.json()["numberMatched"] == 0, (collection, ask)


def test_a_viewers_count_filters_and_sorting_run_on_the_viewer_counts(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    rows = _current_hotspots(ogc)
    differs = [r for r in rows if r.cells is not None and r.viewer_count != r.incident_count]
    assert differs, "the test needs hotspots whose viewer count is not the exact one"
    for row in differs:
        exact = f"incident_count = {row.incident_count}"
        shown = [r.id for r in rows if r.cells is not None and r.viewer_count == row.incident_count]
        assert _ids(ogc_client, ogc, VIEWER, "hotspots", filter=exact) == set(shown)
    for threshold in (100, 1000, 3000):
        expected = {r.id for r in rows if r.cells is not None and r.viewer_count >= threshold}
        got = _ids(ogc_client, ogc, VIEWER, "hotspots", filter=f"incident_count >= {threshold}")
        assert got == expected
    ordered = all_features(
        ogc_client, ogc, "/ogc/collections/hotspots/items", VIEWER, sortby="-incident_count"
    )
    counts = [f["properties"]["incident_count"] for f in ordered]
    assert counts == sorted((r.viewer_count for r in rows if r.cells is not None), reverse=True)


def test_tiny_polygons_around_hull_vertices_find_only_what_the_viewer_cells_show(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    rows = [r for r in _current_hotspots(ogc) if r.hull is not None]
    probes = []
    for row in rows:
        hull, cells = _shape(row.hull), _shape(row.cells)
        vertices = shapely.get_coordinates(hull)
        outside = [
            v for v in vertices if cells is None or not cells.buffer(2).contains(shapely.Point(v))
        ]
        probes.extend(outside[:4])
    assert len(probes) >= 8, "the hulls should reach beyond the shown cells somewhere"
    viewer_geoms = {r.id: _shape(r.cells) for r in _current_hotspots(ogc)}
    hulls = {r.id: _shape(r.hull) for r in rows}
    for x, y in probes:
        tiny = shapely.box(x - 0.5, y - 0.5, x + 0.5, y + 0.5)
        wkt = shapely.to_wkt(shapely.transform(tiny, lambda c: c[:, ::-1]), rounding_precision=3)
        ask = {"filter": f"S_INTERSECTS(geometry, {wkt})", "filter-crs": EPSG_3006}
        seen = _ids(ogc_client, ogc, VIEWER, "hotspots", **ask)
        shown = {i for i, g in viewer_geoms.items() if g is not None and g.intersects(tiny)}
        assert seen == shown
        boxed = _ids(
            ogc_client,
            ogc,
            VIEWER,
            "hotspots",
            bbox=f"{y - 0.5},{x - 0.5},{y + 0.5},{x + 0.5}",
            **{"bbox-crs": EPSG_3006},
        )
        assert boxed == shown
        analyst = _ids(ogc_client, ogc, ("polis", "analyst"), "hotspots", **ask)
        assert analyst == {i for i, g in hulls.items() if g.intersects(tiny)}


def test_the_incident_alone_in_its_cell_is_in_no_viewer_answer(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    x, y = ogc.lone
    point = {"filter": f"S_INTERSECTS(geometry, POINT({y} {x}))", "filter-crs": EPSG_3006}
    for collection in ("viewer-grid", "hotspots", "gistar", "density", "emerging", "forecast"):
        r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", VIEWER, **point)
        assert r.status_code == 200
        counts = [f["properties"].get("incident_count") for f in r.json()["features"]]
        assert all(c in (None, 0) or c >= 5 for c in counts), collection
    grid = get(ogc_client, ogc, "/ogc/collections/viewer-grid/items", VIEWER, **point).json()
    assert grid["numberMatched"] == 0
    raw = get(ogc_client, ogc, "/ogc/collections/incidents/items", ("polis", "analyst"), **point)
    assert [f["properties"]["external_id"] for f in raw.json()["features"]] == ["lone"]


def test_analyst_only_properties_cannot_be_named_by_viewers(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    for collection, ask, named in (
        ("gistar", {"filter": "p < 0.05"}, "p"),
        ("gistar", {"sortby": "p_adjusted"}, "p_adjusted"),
        ("hotspots", {"change_label": "new"}, "change_label"),
        ("hotspots", {"filter": "change_label = 'grown'"}, "change_label"),
        ("forecast", {"filter": "flagged = true"}, "flagged"),
    ):
        r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", VIEWER, **ask)
        assert r.status_code == 400 and named in r.json()["detail"], (collection, ask)


def test_one_feature_by_id_is_the_callers_version_or_404(ogc: Ogc, ogc_client: TestClient) -> None:
    rows = _current_hotspots(ogc)
    shown = next(r for r in rows if r.cells is not None)
    viewer = get(ogc_client, ogc, f"/ogc/collections/hotspots/items/{shown.id}", VIEWER).json()
    assert viewer["properties"]["audience"] == "viewer"
    assert viewer["properties"]["incident_count"] == shown.viewer_count
    analyst = get(ogc_client, ogc, f"/ogc/collections/hotspots/items/{shown.id}").json()
    assert analyst["properties"]["incident_count"] == shown.incident_count
    r = get(ogc_client, ogc, f"/ogc/collections/hotspots/items/{shown.id}", ("utan", "viewer"))
    assert r.status_code == 404
    with ogc.engine.connect() as conn:
        no_cells = conn.scalar(text("SELECT id FROM est.hotspot WHERE viewer_geom IS NULL LIMIT 1"))
    if no_cells is not None:
        r = get(ogc_client, ogc, f"/ogc/collections/hotspots/items/{no_cells}", VIEWER)
        assert r.status_code == 404

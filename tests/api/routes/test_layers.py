"""What viewers see: counts per grid cell only, whole periods, small counts hidden, the rest
perturbed and rounded, no sensitive categories, and never a coordinate of an incident."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ESLOV, World

WEEK_41 = {"period": "week", "date": "2026-10-05"}
MAX_ERROR = 4  # the noise (at most 2) and the rounding to 5 (at most 2)


def _grid(client: TestClient, world: World, org: str, role: str, **params: Any) -> Any:
    query = {"area": "1285", "cell_size_m": 250, **WEEK_41, **params}
    return client.get("/api/v1/layers/grid", params=query, headers=world.headers(org, role))


def _counts(body: dict[str, Any]) -> dict[tuple[int, int], int]:
    return {
        (f["properties"]["ix"], f["properties"]["iy"]): f["properties"]["count"]
        for f in body["features"]
    }


def test_viewers_see_counts_per_cell_suppressed_and_rounded(
    client: TestClient, world: World
) -> None:
    r = _grid(client, world, "kommun-1285", "viewer")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    ix0, iy0 = int((ESLOV[0] + 10) // 250), int((ESLOV[1] + 10) // 250)
    # 12 klotter and 7 cykelstölder shown near their counts; 3 klotter hidden (< 5); 6 sensitive
    # never counted; 6 at an area centroid never counted; 1 övrigt hidden.
    shown = _counts(r.json())
    assert set(shown) == {(ix0, iy0), (ix0 + 2, iy0)}
    assert abs(shown[(ix0, iy0)] - 12) <= MAX_ERROR and abs(shown[(ix0 + 2, iy0)] - 7) <= MAX_ERROR


def test_every_shown_count_is_a_multiple_of_the_base_and_at_least_k(
    client: TestClient, world: World
) -> None:
    for size in (125, 250, 500, 1000, 2000):
        counts = _counts(_grid(client, world, "kommun-1285", "viewer", cell_size_m=size).json())
        assert all(c >= 5 and c % 5 == 0 for c in counts.values()), (size, counts)


def test_layers_are_whole_periods_whatever_day_is_asked(client: TestClient, world: World) -> None:
    week = _grid(client, world, "kommun-1285", "viewer").json()
    assert week["period"] == {
        "kind": "week",
        "label": "2026-W41",
        "first_day": "2026-10-05",
        "end_day": "2026-10-12",
    }
    sunday = _grid(client, world, "kommun-1285", "viewer", date="2026-10-11").json()
    assert _counts(week) == _counts(sunday) != {}
    next_week = _grid(client, world, "kommun-1285", "viewer", date="2026-10-12").json()
    assert _counts(next_week) == {}
    tertial = _grid(client, world, "kommun-1285", "viewer", period="tertial").json()
    assert tertial["period"]["label"] == "2026-T3" and _counts(tertial) == _counts(week)


def test_cell_polygons_are_squares_of_the_grid_in_lon_lat(client: TestClient, world: World) -> None:
    feature = _grid(client, world, "kommun-1285", "viewer").json()["features"][0]
    ring = feature["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    lons = [p[0] for p in ring]
    assert 13.2 < min(lons) < max(lons) < 13.4


def test_no_raw_point_or_free_text_reaches_a_viewer(client: TestClient, world: World) -> None:
    text = _grid(client, world, "kommun-1285", "viewer").text
    assert "Point" not in text and "description" not in text and "HYPERLINK" not in text


def test_an_aggregate_grant_shows_the_layer_and_no_grant_shows_nothing(
    client: TestClient, world: World
) -> None:
    assert _grid(client, world, "kommun-1214", "viewer").status_code == 200
    r = _grid(client, world, "utan-grant", "viewer")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("size", [10, 50, 99, 100, 300, 5000, 5001])
def test_cells_too_small_or_too_large_are_refused(
    client: TestClient, world: World, size: int
) -> None:
    assert _grid(client, world, "kommun-1285", "viewer", cell_size_m=size).status_code == 422


def test_a_category_group_restricts_the_layer(client: TestClient, world: World) -> None:
    tillgrepp = _counts(_grid(client, world, "kommun-1285", "viewer", group="tillgrepp").json())
    assert len(tillgrepp) == 1 and abs(next(iter(tillgrepp.values())) - 7) <= MAX_ERROR
    assert _grid(client, world, "kommun-1285", "viewer", group="nope").status_code == 404


def test_coordinates_have_at_most_seven_decimals(client: TestClient, world: World) -> None:
    body = _grid(client, world, "kommun-1285", "viewer").text
    area = client.get("/api/v1/areas/1285", headers=world.headers("kommun-1285", "viewer")).text
    for text in (body, area):
        decimals = [len(m) for m in re.findall(r"\d\.(\d+)", text)]
        assert decimals and max(decimals) <= 7


def test_analysts_with_a_raw_grant_get_exact_counts_at_any_cell_size(
    client: TestClient, world: World
) -> None:
    r = _grid(client, world, "kommun-1285", "analyst", cell_size_m=100, exact="true")
    assert r.status_code == 200 and r.json()["exact"] is True
    by_column = {ix: n for (ix, _), n in _counts(r.json()).items()}
    x0 = int((ESLOV[0] + 10) // 100)
    # klotter 12, cykel 7, klotter 3, sensitive 6 (analysts may see them), övrigt 1; the six
    # at an area centroid are no place and are left out
    assert by_column == {x0: 12, x0 + 5: 7, x0 + 10: 3, x0 + 15: 6, x0 + 25: 1}


@pytest.mark.parametrize("org,role", [("kommun-1285", "viewer"), ("kommun-1214", "analyst")])
def test_exact_counts_need_an_analyst_with_a_raw_grant(
    client: TestClient, world: World, org: str, role: str
) -> None:
    r = _grid(client, world, org, role, exact="true")
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"

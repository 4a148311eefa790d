"""Part 3: /queryables and CQL2 text filters, translated to SQL with bound values only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api.ogc import cql
from tests.ogc.conftest import AREA_A, UNION, Ogc, all_features, get

SCHEMA_JSON = "application/schema+json"


def _matched(
    client: TestClient,
    ogc: Ogc,
    collection: str,
    filter_text: str,
    who: tuple[str, str] = ("polis", "analyst"),
    **params: object,
) -> int:
    r = get(client, ogc, f"/ogc/collections/{collection}/items", who, filter=filter_text, **params)
    assert r.status_code == 200, (filter_text, r.text)
    matched: int = r.json()["numberMatched"]
    return matched


def _count(ogc: Ogc, sql: str, **params: object) -> int:
    return int(ogc.scalar(sql, **params) or 0)


CURRENT_GISTAR = """
    SELECT count(*) FROM est.gistar_cell c
    JOIN est.layer_current l ON l.run_id = c.run_id AND l.layer = 'gistar'
    JOIN est.area a ON a.id = l.area_id WHERE {where}
"""


def test_queryables_are_a_json_schema_of_what_the_caller_may_filter_on(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    r = get(ogc_client, ogc, "/ogc/collections/gistar/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == SCHEMA_JSON
    schema = r.json()
    assert schema["type"] == "object" and schema["$id"].endswith("/gistar/queryables")
    assert schema["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
    assert schema["properties"]["z"] == {"type": "number", "description": "Gi* z score"}
    assert schema["properties"]["period_start"]["format"] == "date-time"
    assert {"area", "profile", "week", "run", "p", "p_adjusted"} <= set(schema["properties"])
    viewer = get(ogc_client, ogc, "/ogc/collections/gistar/queryables", ("insyn", "viewer"))
    assert not {"p", "p_adjusted"} & set(viewer.json()["properties"])  # analysts' only
    incidents = get(ogc_client, ogc, "/ogc/collections/incidents/queryables").json()
    assert incidents["properties"]["area"]["type"] == "string"
    assert incidents["properties"]["geometry"]["format"] == "geometry-point"


@pytest.mark.parametrize(
    ("filter_text", "where"),
    [
        ("bin = 3", "c.bin = 3"),
        ("bin <> 0 AND z > 2.5", "c.bin <> 0 AND c.z > 2.5"),
        ("bin = 3 OR bin = -3 AND z < 0", "c.bin = 3 OR (c.bin = -3 AND c.z < 0)"),
        ("NOT (bin = 0 OR bin = 1)", "NOT (c.bin = 0 OR c.bin = 1)"),
        ("p_adjusted IS NULL", "c.p_adjusted IS NULL"),
        ("p_adjusted IS NOT NULL AND p_adjusted < 0.01", "c.p_adjusted < 0.01"),
        ("incident_count BETWEEN 5 AND 9", "c.incident_count BETWEEN 5 AND 9"),
        ("bin IN (2, 3)", "c.bin IN (2, 3)"),
        ("area = '1230' AND bin NOT IN (0)", "a.code = '1230' AND c.bin <> 0"),
        ("area LIKE 'lpo%'", "a.code LIKE 'lpo%'"),
        ("2 < bin", "c.bin > 2"),
        ("INCLUDE", "true"),
    ],
)
def test_cql2_counts_what_the_same_condition_counts_in_sql(
    ogc: Ogc, ogc_client: TestClient, filter_text: str, where: str
) -> None:
    expected = _count(ogc, CURRENT_GISTAR.format(where=where))
    assert _matched(ogc_client, ogc, "gistar", filter_text) == expected


def test_and_binds_tighter_than_or_as_cql2_says() -> None:
    node = cql.parse("bin = 3 OR bin = -3 AND z < 0")
    assert type(node).__name__ == "Or"
    assert type(cql.parse("NOT (bin = 0 OR bin = 1)")).__name__ == "Not"
    assert cql.parse("pattern = 'it''s'").rhs == "it's"


def test_s_intersects_takes_wkt_and_bbox(ogc: Ogc, ogc_client: TestClient) -> None:
    polygon = "POLYGON((13.20 55.62, 13.25 55.62, 13.25 55.66, 13.20 55.66, 13.20 55.62))"
    by_wkt = _matched(ogc_client, ogc, "incidents", f"S_INTERSECTS(geometry, {polygon})")
    by_bbox = _matched(
        ogc_client, ogc, "incidents", "S_INTERSECTS(geometry, BBOX(13.20, 55.62, 13.25, 55.66))"
    )
    by_param = get(
        ogc_client, ogc, "/ogc/collections/incidents/items", bbox="13.20,55.62,13.25,55.66"
    ).json()["numberMatched"]
    assert by_wkt == by_bbox == by_param > 0
    holding = _count(
        ogc,
        "SELECT count(*) FROM est.area WHERE ST_Intersects(geom, "
        "ST_Transform(ST_SetSRID(ST_Point(13.2, 55.6), 4326), 3006))",
    )
    point = "POINT(13.2 55.6)"
    assert _matched(ogc_client, ogc, "areas", f"S_INTERSECTS(geometry, {point})") == holding > 0
    both = _matched(
        ogc_client,
        ogc,
        "incidents",
        f"S_INTERSECTS(geometry, {polygon}) AND category_code = 'tillgrepp.cykelstold'",
    )
    assert 0 < both < by_wkt


def test_times_compare_with_timestamps(ogc: Ogc, ogc_client: TestClient) -> None:
    expected = _count(ogc, "SELECT count(*) FROM est.incident WHERE occurred_from >= '2026-11-20Z'")
    got = _matched(
        ogc_client, ogc, "incidents", "occurred_from >= TIMESTAMP('2026-11-20T00:00:00Z')"
    )
    assert got == expected > 0


@pytest.mark.parametrize(
    ("filter_text", "named"),
    [
        ("incident_cnt = 1", "incident_cnt"),
        ("colour = 'red'", "colour"),
        ("bin = 'three'", "bin"),
        ("z = TRUE", "z"),
        ("bin = z", "another"),
        ("bin = ", "CQL2"),
        ("S_WITHIN(geometry, POINT(1 2))", "not served"),
        ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "valid"),
        ("S_INTERSECTS(z, POINT(1 2))", "geometry"),
        ("period_start > '2026-01-01'", "TIMESTAMP"),
        ("stats = 1", "stats"),
    ],
)
def test_a_filter_that_cannot_be_served_is_400_naming_what(
    ogc: Ogc, ogc_client: TestClient, filter_text: str, named: str
) -> None:
    collection = "hotspots" if filter_text.startswith("stats") else "gistar"
    r = get(ogc_client, ogc, f"/ogc/collections/{collection}/items", filter=filter_text)
    assert r.status_code == 400, (filter_text, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert named in r.json()["detail"], r.json()["detail"]
    r = get(
        ogc_client,
        ogc,
        "/ogc/collections/gistar/items",
        filter="bin = 1",
        **{"filter-lang": "cql2-json"},
    )
    assert r.status_code == 400 and "filter-lang" in r.json()["detail"]


def test_values_are_bound_never_spliced_into_the_sql(ogc: Ogc, ogc_client: TestClient) -> None:
    hostile = "x' OR '1'='1"
    quoted = hostile.replace("'", "''")
    assert _matched(ogc_client, ogc, "gistar", f"area = '{quoted}'") == 0
    r = get(ogc_client, ogc, "/ogc/collections/gistar/items", area="1230'; DROP TABLE est.area;--")
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    assert _count(ogc, "SELECT count(*) FROM est.area") > 300


def test_a_filtered_walk_through_pages_keeps_the_filter(ogc: Ogc, ogc_client: TestClient) -> None:
    found = all_features(
        ogc_client,
        ogc,
        "/ogc/collections/gistar/items",
        limit=50,
        filter=f"bin >= 1 AND area = '{UNION}'",
    )
    assert found and {f["properties"]["area"] for f in found} == {UNION}
    assert min(f["properties"]["bin"] for f in found) >= 1
    assert len(found) == _count(
        ogc, CURRENT_GISTAR.format(where=f"c.bin >= 1 AND a.code = '{UNION}'")
    )
    assert AREA_A != UNION

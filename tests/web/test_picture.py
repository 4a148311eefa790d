"""GET /api/v1/lagesbild: the week's picture beside the map, in the version the caller may see."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.access import admin
from app.core import swedish
from app.core.vocabulary import Role
from app.main import create_app
from app.runs.profiles import DEFAULT_NAME
from app.web.routes import STATIC, TEMPLATES
from clustering.change import Comparison, change_tests
from tests.web.conftest import AREA, WEEKS, Web

PATH = "/api/v1/lagesbild"


@pytest.fixture(scope="module")
def client(web: Web) -> Iterator[TestClient]:
    with TestClient(create_app(web.settings), raise_server_exceptions=False) as c:
        yield c


def picture(client: TestClient, web: Web, who: tuple[str, str], **params: str) -> dict:
    answer = client.get(PATH, params=params, headers=web.headers(*who))
    assert answer.status_code == 200, answer.text
    return answer.json()


def published_run(web: Web, week: str) -> int:
    """The newest published run of the week of the area's standard profile (the page's
    default; the demo's tillgrepp profile has runs too)."""
    with web.engine.connect() as conn:
        return int(
            conn.scalar(
                text("""
                SELECT r.id FROM est.hotspot_run r JOIN est.area a ON a.id = r.area_id
                JOIN est.analysis_profile p ON p.id = r.profile_id
                WHERE a.code = :area AND r.period_label = :week AND r.published_at IS NOT NULL
                  AND p.name = :standard AND p.organisation_id IS NULL
                ORDER BY r.published_at DESC LIMIT 1
            """),
                {"area": AREA, "week": week, "standard": DEFAULT_NAME},
            )
        )


def features(client: TestClient, web: Web, who: tuple[str, str], run: int) -> dict[int, dict]:
    answer = client.get(
        "/ogc/collections/hotspots/items",
        params={"run": run, "limit": 1000},
        headers=web.headers(*who),
    )
    assert answer.status_code == 200
    return {f["id"]: f["properties"] for f in answer.json()["features"]}


def test_a_viewer_gets_the_viewer_version_of_the_newest_closed_week(
    client: TestClient, web: Web
) -> None:
    found = picture(client, web, ("kommun-1285", "viewer"))
    assert found["audience"] == "viewer"
    assert found["area"]["code"] == AREA and found["area"]["name"] == "Eslöv"
    assert [w["label"] for w in found["weeks"]] == sorted(WEEKS, reverse=True)
    assert found["week"]["label"] == "2026-W48" and found["week"]["title"] == "vecka 48 2026"
    assert found["run"]["id"] == published_run(web, "2026-W48")
    assert "incidents" not in {layer["id"] for layer in found["layers"]}
    assert "incidents_used" not in found["run"]
    assert found["hotspots"], "the demo has hotspots in Eslöv"
    shown = features(client, web, ("kommun-1285", "viewer"), found["run"]["id"])
    for h in found["hotspots"]:
        assert h["busiest"] is None  # needs single incidents' times: analysts only
        assert shown[h["id"]]["audience"] == "viewer"
        assert shown[h["id"]]["incident_count"] == h["count"]
    assert [h["number"] for h in found["hotspots"]] == list(range(1, len(found["hotspots"]) + 1))


def test_an_analyst_with_a_raw_grant_gets_the_analyst_version_and_the_points(
    client: TestClient, web: Web
) -> None:
    found = picture(client, web, ("kommun-1285", "analyst"))
    assert found["audience"] == "analyst"
    assert "incidents" in {layer["id"] for layer in found["layers"]}
    assert found["run"]["incidents_used"] > 0
    exact = features(client, web, ("kommun-1285", "analyst"), found["run"]["id"])
    for h in found["hotspots"]:
        assert exact[h["id"]]["audience"] == "analyst"
        assert exact[h["id"]]["incident_count"] == h["count"]
        assert sum(c["count"] for c in h["categories"]) == h["count"]
        assert h["busiest"] is not None
    counts = [h["count"] for h in found["hotspots"]]
    assert counts == sorted(counts, reverse=True)  # ranked, largest first


def test_an_analyst_of_an_aggregate_grant_gets_the_viewer_version_and_no_points(
    client: TestClient, web: Web
) -> None:
    found = picture(client, web, ("insyn", "analyst"))
    assert found["audience"] == "viewer"
    assert "incidents" not in {layer["id"] for layer in found["layers"]}


def test_a_viewer_reads_counts_below_k_as_less_than_k(client: TestClient, web: Web) -> None:
    found = picture(client, web, ("kommun-1285", "viewer"))
    k = found["k"]
    series = [w for h in found["hotspots"] for w in h["weekly"]]
    assert any(w["count"] < k for w in series)
    for w in series:
        assert w["text"] == (f"< {k}" if w["count"] < k else str(w["count"]))


def test_each_hotspots_change_since_last_week_is_tested_together_and_said_in_words(
    client: TestClient, web: Web
) -> None:
    found = picture(client, web, ("kommun-1285", "analyst"), week="2026-W47")
    hotspots = found["hotspots"]
    expected = change_tests([Comparison(h["this_week"], h["last_week"], "count") for h in hotspots])
    for h, change in zip(hotspots, expected, strict=True):
        assert h["this_week"] == h["weekly"][-1]["count"]
        assert h["last_week"] == h["weekly"][-2]["count"]
        assert h["change"]["words"] == swedish.tested_change(
            change.direction, bool(change.significant)
        )
    said = {h["change"]["words"] for h in hotspots}
    assert said <= {
        "ökning utöver slumpen",
        "ökning som kan vara slump",
        "minskning utöver slumpen",
        "minskning som kan vara slump",
        "ingen förändring",
    }


def test_a_hotspots_emerging_class_is_named_and_explained(client: TestClient, web: Web) -> None:
    found = picture(client, web, ("kommun-1285", "analyst"))
    classes = [h["emerging"] for h in found["hotspots"] if h["emerging"]]
    assert classes, "the demo's hotspots have trends"
    for c in classes:
        assert c["name"] == swedish.emerging_class(c["class"])
        assert c["sentence"].startswith("Platsen")


def test_another_week_reads_that_weeks_run(client: TestClient, web: Web) -> None:
    found = picture(client, web, ("kommun-1285", "viewer"), week="2026-W46")
    assert found["week"]["label"] == "2026-W46"
    assert found["run"]["id"] == published_run(web, "2026-W46")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"week": "2026-W40"}, 404),  # no run published for it
        ({"area": "1214"}, 404),  # an area the organisation holds no grant on
        ({"profile": "nope"}, 404),
        ({"week": "48"}, 422),
    ],
)
def test_what_is_not_published_or_not_granted_is_not_found(
    client: TestClient, web: Web, params: dict[str, str], status: int
) -> None:
    answer = client.get(PATH, params=params, headers=web.headers("kommun-1285", "viewer"))
    assert answer.status_code == status, answer.text


def test_an_organisation_without_a_published_area_gets_an_empty_picture(
    client: TestClient, web: Web
) -> None:
    # the demo's operator organisation holds no grants
    with web.engine.begin() as conn:
        token = admin.new_key(conn, "drift", Role.admin, "web", None).token
    answer = client.get(PATH, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["areas"] == []


def test_a_viewers_picture_holds_no_raw_incident_data(client: TestClient, web: Web) -> None:
    answer = client.get(PATH, headers=web.headers("kommun-1285", "viewer"))
    for raw in ("Demodata", "demo-1285-", "incidents_used", "busiest_hour", "Point"):
        assert raw not in answer.text


def test_the_pages_own_script_and_style_stay_under_300_kb() -> None:
    own = [STATIC / "map.js", STATIC / "map.css", *TEMPLATES.glob("*.html")]
    assert sum(p.stat().st_size for p in own) < 300_000

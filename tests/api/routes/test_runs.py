"""Runs over REST: an analyst with a raw grant starts the week's run and reads what it did;
nobody else learns that it exists."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.runs.profiles import ensure_default_profiles
from tests.conftest import World

WEEK_41 = "2026-W41"  # the world's incidents are in week 41


@pytest.fixture(scope="module", autouse=True)
def _profiles(world: World, settings: object) -> None:
    from sqlalchemy import create_engine, pool

    from app.settings import SYSTEM_ROLE, Settings

    assert isinstance(settings, Settings)
    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with engine.begin() as conn:
        ensure_default_profiles(conn)
    engine.dispose()


def _start(client: TestClient, world: World, org: str, role: str, **body: object):
    return client.post(
        "/api/v1/runs",
        json={"area": "1285", "week": WEEK_41, **body},
        headers=world.headers(org, role),
    )


def test_an_analyst_starts_a_run_follows_it_and_a_second_one_is_skipped(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    r = _start(client, world, "kommun-1285", "analyst", force=True)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "running" and started["week"] == WEEK_41
    # the test client runs the background work before it returns
    run = client.get(started["href"], headers=world.headers("kommun-1285", "analyst"))
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["status"] == "succeeded" and body["period_label"] == WEEK_41
    assert body["area"] == "1285" and body["current"] in (True, False)
    assert {f["audience"] for f in body["area_figures"]} == {"analyst", "viewer"}
    # 12 klotter + 7 cykelstölder + 3 klotter (+ the övrigt) of week 41 in Eslöv
    everything = next(
        f for f in body["area_figures"] if f["audience"] == "analyst" and f["group_code"] == "all"
    )
    with system_engine.connect() as conn:
        expected = conn.scalar(
            text("""
            SELECT count(*) FROM est.incident i
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN est.area a ON a.id = ia.area_id AND a.code = '1285'
            JOIN est.category c ON c.code = i.category_code AND NOT c.sensitive
            WHERE i.deleted_at IS NULL AND i.location_precision IN ('exact', 'address', 'street')
              AND i.occurred_from >= '2026-10-05 00:00+02'
              AND i.occurred_from < '2026-10-12 00:00+02'
        """)
        )
    assert everything["this_week"] == expected
    again = _start(client, world, "kommun-1285", "analyst")
    assert again.status_code == 200 and again.json()["status"] == "skipped"
    assert again.json()["run_id"] == started["run_id"]
    listed = client.get("/api/v1/runs", headers=world.headers("kommun-1285", "analyst"))
    assert listed.status_code == 200
    assert started["run_id"] in [r["id"] for r in listed.json()["items"]]
    with system_engine.connect() as conn:
        audited = conn.scalar(text("SELECT count(*) FROM est.audit_log WHERE action = 'run.start'"))
    assert audited >= 2


def test_others_cannot_start_or_see_the_areas_runs(client: TestClient, world: World) -> None:
    r = _start(client, world, "kommun-1285", "analyst", force=True)
    run_id = r.json()["run_id"]
    # kommun-1214 holds only an aggregate grant on Eslöv; utan-grant holds none
    for org in ("kommun-1214", "utan-grant"):
        headers = world.headers(org, "analyst")
        assert _start(client, world, org, "analyst").status_code == 404
        assert client.get(f"/api/v1/runs/{run_id}", headers=headers).status_code == 404
        ids = [x["id"] for x in client.get("/api/v1/runs", headers=headers).json()["items"]]
        assert run_id not in ids
    for role in ("viewer", "reporter", "admin"):
        assert _start(client, world, "kommun-1285", role).status_code == 403
        headers = world.headers("kommun-1285", role)
        assert client.get(f"/api/v1/runs/{run_id}", headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"week": "2026-48"}, "week"),
        ({"week": "2099-W01"}, "week"),
        ({"week": "2026-W54"}, "week"),
        ({"colour": "red"}, "colour"),
        ({"profile": "nobody-has-this"}, None),
    ],
)
def test_bad_requests_are_named_problems(
    client: TestClient, world: World, body: dict[str, str], field: str | None
) -> None:
    r = _start(client, world, "kommun-1285", "analyst", **body)
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert field in r.text

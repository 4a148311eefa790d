"""The deployment as the service sees it: its time zone, and a clear answer before set-up ends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, pool

from app.access import admin
from app.core.taxonomy import load_taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.db.areas import load_areas
from app.db.bootstrap import init_database
from app.db.reference import sync_taxonomy
from app.ingest.areas import read_kommun_file
from app.ingest.store import IncidentRecord, upsert_incidents
from app.main import create_app
from app.settings import SYSTEM_ROLE, Settings
from tests.conftest import ESLOV

CHICAGO = ZoneInfo("America/Chicago")


def _deployment(settings: Settings, *, areas: bool) -> dict[str, str]:
    """Initialise the database; with areas, Eslöv and a viewer of it; return keys by role."""
    init_database(settings, 3006)
    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with engine.begin() as conn:
        sync_taxonomy(conn, load_taxonomy())
        if areas:
            kommuner = read_kommun_file()
            load_areas(conn, kommuner[kommuner["code"] == "1285"])
        admin.create_organisation(conn, "k", "Eslövs kommun", "kommun")
        if areas:
            admin.grant_area(conn, "k", "1285", GrantLevel.raw, "test")
        keys = {
            r: admin.new_key(conn, "k", Role(r), "t", None).token for r in ("viewer", "reporter")
        }
    engine.dispose()
    return keys


def _records(prefix: str, x: float, local: datetime) -> list[IncidentRecord]:
    return [
        IncidentRecord(
            source="tz",
            external_id=f"{prefix}-{i}",
            category_code="skadegorelse.klotter",
            occurred_from=local + timedelta(minutes=i),
            occurred_to=None,
            x=x + i,
            y=ESLOV[1] + 10,
            location_precision="address",
            description=None,
        )
        for i in range(5)
    ]


@pytest.fixture()
def chicago(fresh_database: Settings) -> Iterator[tuple[TestClient, dict[str, str], Settings]]:
    settings = fresh_database.model_copy(update={"timezone": "America/Chicago"})
    keys = _deployment(settings, areas=True)
    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with engine.begin() as conn:
        org = admin.organisation_id(conn, "k")
        # Sunday 23:30 in Chicago is Monday 06:30 in Stockholm: the last hour of a Chicago week
        upsert_incidents(
            conn,
            org,
            3006,
            _records("sun", ESLOV[0] + 10, datetime(2026, 10, 4, 23, 30, tzinfo=CHICAGO)),
        )
        # Monday 00:30 in Chicago: the first hour of the next week
        upsert_incidents(
            conn,
            org,
            3006,
            _records("mon", ESLOV[0] + 510, datetime(2026, 10, 5, 0, 30, tzinfo=CHICAGO)),
        )
    engine.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, keys, settings


def _cells(client: TestClient, key: str, day: str) -> dict[int, int]:
    r = client.get(
        "/api/v1/layers/grid",
        params={"area": "1285", "cell_size_m": 250, "period": "week", "date": day},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.text
    return {f["properties"]["ix"]: f["properties"]["count"] for f in r.json()["features"]}


def test_the_viewer_grid_counts_weeks_from_chicago_midnight(
    chicago: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, keys, _ = chicago
    sunday_cell, monday_cell = int((ESLOV[0] + 10) // 250), int((ESLOV[0] + 510) // 250)
    week_41 = _cells(client, keys["viewer"], "2026-10-05")
    week_40 = _cells(client, keys["viewer"], "2026-09-28")
    # five incidents a cell: whatever the noise (at most 2), they round to 5
    assert week_41 == {monday_cell: 5}
    assert week_40 == {sunday_cell: 5}
    # any day of the week names the same week: Sunday 11 October is still week 41
    assert _cells(client, keys["viewer"], "2026-10-11") == {monday_cell: 5}


@pytest.fixture()
def without_areas(fresh_database: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    keys = _deployment(fresh_database, areas=False)
    with TestClient(create_app(fresh_database), raise_server_exceptions=False) as client:
        yield client, keys


def _is_503_naming_the_command(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "est areas load" in r.json()["detail"]


def test_a_post_before_any_area_is_loaded_says_what_to_run(
    without_areas: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = without_areas
    record = {
        "source": "app",
        "external_id": "1",
        "category": "skadegorelse.klotter",
        "occurred_from": "2026-11-20T22:15:00+01:00",
        "lon": 13.3,
        "lat": 55.84,
        "location_precision": "address",
    }
    auth = {"Authorization": f"Bearer {keys['reporter']}"}
    _is_503_naming_the_command(client.post("/api/v1/incidents", json=record, headers=auth))
    csv = (
        b"external_id,category,occurred_from,lon,lat\n"
        b"2,ovrigt,2026-11-20T22:15:00+01:00,13.3,55.84\n"
    )
    upload = {"file": ("a.csv", csv, "text/csv")}
    _is_503_naming_the_command(
        client.post("/api/v1/imports", files=upload, data={"source": "app"}, headers=auth)
    )

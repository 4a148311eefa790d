"""A database of its own for /ogc: two kommuner and their police area with published runs.

Staffanstorp (1230) and Burlöv (1231) get 16 weeks of synthetic incidents around hotspots
(26,000 in all, so that paging clients go through many pages), one incident alone in its cell
in week 47, and the police area `lpo-ogc` is the union of the two. Weeks 46 and 47 are
computed and published for each of the three areas (week 47 is the current one).

Who may see what:
- `kommun`: a raw grant on 1230 and an aggregate one on the union (analyst: hulls of 1230,
  viewer versions of the union, since its raw grant covers one kommun of it);
- `polis`: raw grants on 1230 and 1231 (analyst: hulls everywhere, the union included);
- `insyn`: aggregate grants on all three (viewer versions only, whatever the role);
- `utan`: no grant at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, pool, text

from app.access import admin
from app.core.taxonomy import load_taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.db.areas import create_union_area, load_areas
from app.db.bootstrap import init_database
from app.db.reference import sync_taxonomy
from app.ingest.areas import read_kommun_file
from app.ingest.store import IncidentRecord, upsert_incidents
from app.main import create_app
from app.runs import recompute as runs
from app.runs.inputs import load_area
from app.runs.profiles import ensure_default_profiles
from app.settings import SYSTEM_ROLE, Settings
from clustering.synthetic import HotspotSpec, generate_incidents
from tests.conftest import drop_database, serve, settings_for

TZ = "Europe/Stockholm"
AREA_A, AREA_B, UNION = "1230", "1231", "lpo-ogc"
WEEK_46, WEEK_47 = date(2026, 11, 9), date(2026, 11, 16)
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)  # both weeks closed
INCIDENTS_PER_KOMMUN = 13_000
ORGS = {
    "kommun": ("kommun", [(AREA_A, GrantLevel.raw), (UNION, GrantLevel.aggregate)]),
    "polis": ("police", [(AREA_A, GrantLevel.raw), (AREA_B, GrantLevel.raw)]),
    "insyn": (
        "kommun",
        [
            (AREA_A, GrantLevel.aggregate),
            (AREA_B, GrantLevel.aggregate),
            (UNION, GrantLevel.aggregate),
        ],
    ),
    "utan": ("business", []),
    "kalla": ("police", []),  # reports every incident, reads nothing
}
ROLES = ("analyst", "viewer", "reporter", "admin", "ingest")


@dataclass
class Ogc:
    """The OGC test world: settings, keys, the lone incident and the system engine."""

    settings: Settings
    engine: Engine  # the system role: what tests compare the answers with
    tokens: dict[tuple[str, str], str]
    lone: tuple[float, float]  # SWEREF 99 TM of the incident alone in its cell (week 47)
    incident_count: int

    def headers(self, organisation: str, role: str) -> dict[str, str]:
        """The Authorization header of a key of that organisation and role."""
        return {"Authorization": f"Bearer {self.tokens[(organisation, role)]}"}

    def token(self, organisation: str, role: str) -> str:
        """The key itself."""
        return self.tokens[(organisation, role)]

    def rows(self, sql: str, **params: object) -> list[Any]:
        """The rows of a query as the system role: what the answers are compared with."""
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def scalar(self, sql: str, **params: object) -> Any:
        """The one value of a query as the system role."""
        with self.engine.connect() as conn:
            return conn.scalar(text(sql), params)


def _records(made: object, prefix: str) -> list[IncidentRecord]:
    return [
        IncidentRecord(
            source="ogc-test",
            external_id=f"{prefix}-{i}",
            category_code=str(c),
            occurred_from=t.astype("datetime64[us]").item().replace(tzinfo=UTC),
            occurred_to=None,
            x=float(x),
            y=float(y),
            location_precision="address",
            description=f"{prefix} {i}",
        )
        for i, ((x, y), t, c) in enumerate(
            zip(made.xy, made.time, made.category, strict=True)  # type: ignore[attr-defined]
        )
    ]


def _centres(area: shapely.Geometry) -> list[tuple[float, float]]:
    c = shapely.point_on_surface(area)
    return [(c.x, c.y), (c.x + 1500, c.y)]


def _incidents(
    area: shapely.Geometry, background: shapely.Geometry, seed: int, prefix: str
) -> list[IncidentRecord]:
    start = datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ)) - timedelta(weeks=16)
    categories = {"skadegorelse.klotter": 1, "tillgrepp.cykelstold": 1}
    specs = [
        HotspotSpec(x, y, sigma_m=80, weight=1.0, trend=trend, categories=categories)
        for (x, y), trend in zip(_centres(area), ("persisting", "emerging"), strict=True)
    ]
    made = generate_incidents(
        specs,
        INCIDENTS_PER_KOMMUN,
        start=start,
        weeks=16,
        background_share=0.2,
        background_area=background,
        background_categories=categories,
        seed=seed,
    )
    return _records(made, prefix)


def _lone_point(area: shapely.Geometry) -> shapely.Point:
    """A point of the area 2 km from its hotspots, where no background incident will fall."""
    inner = area.buffer(-1000)
    minx, miny, maxx, maxy = inner.bounds
    hot = shapely.MultiPoint(_centres(area))
    for x in np.arange(minx, maxx, 250.0):
        for y in np.arange(miny, maxy, 250.0):
            p = shapely.Point(x, y)
            if inner.contains(p) and p.distance(hot) > 2000:
                return p
    raise AssertionError("no room for the lone incident")


@pytest.fixture(scope="session")
def ogc(server_url: str) -> Iterator[Ogc]:
    """The OGC test world, computed once for the session in a database of its own."""
    name = f"est_ogc_{uuid.uuid4().hex[:10]}"
    unlimited = {"rate_limit_per_minute": 100_000, "auth_failures_per_minute": 100_000}
    settings = settings_for(server_url, name).model_copy(update=unlimited)
    init_database(settings, 3006)
    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    tokens: dict[tuple[str, str], str] = {}
    with engine.begin() as conn:
        sync_taxonomy(conn, load_taxonomy())
        load_areas(conn, read_kommun_file())
        create_union_area(conn, UNION, "LPO Staffanstorp-Burlöv (test)", [AREA_A, AREA_B])
        ensure_default_profiles(conn)
        for code, (kind, grants) in ORGS.items():
            admin.create_organisation(conn, code, code, kind)
            for role in ROLES:
                tokens[(code, role)] = admin.new_key(conn, code, Role(role), "ogc", None).token
            for area, level in grants:
                admin.grant_area(conn, code, area, level, "test")
        geoms = {code: load_area(conn, code).geom for code in (AREA_A, AREA_B)}
        point = _lone_point(geoms[AREA_A])
        lone = (point.x, point.y)
        kept_apart = geoms[AREA_A].buffer(-300).difference(point.buffer(800))
        records = _incidents(geoms[AREA_A], kept_apart, 1, "a") + _incidents(
            geoms[AREA_B], geoms[AREA_B].buffer(-300), 2, "b"
        )
        records.append(
            IncidentRecord(
                source="ogc-test",
                external_id="lone",
                category_code="skadegorelse.klotter",
                occurred_from=datetime(2026, 11, 18, 21, tzinfo=UTC),
                occurred_to=None,
                x=lone[0],
                y=lone[1],
                location_precision="address",
                description="alone in its cell",
            )
        )
        upsert_incidents(conn, admin.organisation_id(conn, "kalla"), 3006, records)
    for monday in (WEEK_46, WEEK_47):
        for area in (AREA_A, AREA_B, UNION):
            with engine.connect() as conn:
                profile = runs.default_profile(conn, area)
            outcome = runs.recompute(
                engine, area, profile, runs.RunPeriod.week(monday, TZ), force=True, now=NOW
            )
            assert outcome.status == "succeeded" and outcome.published, outcome
    yield Ogc(settings, engine, tokens, lone, len(records))
    engine.dispose()
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def server(ogc: Ogc) -> Iterator[str]:
    """The service under uvicorn on a free port of loopback; yields its /ogc URL."""
    yield from (f"{base}/ogc" for base in serve(ogc.settings))


@pytest.fixture(scope="session")
def ogc_client(ogc: Ogc) -> Iterator[TestClient]:
    """A test client of the service on the OGC world's database."""
    with TestClient(create_app(ogc.settings), raise_server_exceptions=False) as c:
        yield c


def get(
    client: TestClient,
    ogc: Ogc,
    path: str,
    who: tuple[str, str] = ("polis", "analyst"),
    **params: object,
):
    """GET a path of the service with the key of (organisation, role)."""
    return client.get(path, params=params, headers=ogc.headers(*who))


def all_features(
    client: TestClient,
    ogc: Ogc,
    path: str,
    who: tuple[str, str] = ("polis", "analyst"),
    **params: object,
) -> list[dict]:
    """Every feature of an items URL, following its next links."""
    found: list[dict] = []
    r = get(client, ogc, path, who, **params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["features"] or not found, "a next link led to an empty page"
        found.extend(body["features"])
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return found
        r = client.get(nxt[0], headers=ogc.headers(*who))

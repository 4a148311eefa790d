"""Fixtures: a real PostGIS for every test that needs one.

Without EST_DATABASE_URL the suite starts a throwaway PostgreSQL cluster of its own and removes
it at the end; with it, the suite creates (and drops) databases of its own on that server, so the
login must be a superuser.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import make_url

from app.access import admin
from app.core.taxonomy import load_taxonomy
from app.core.vocabulary import GrantLevel, Role
from app.db.areas import load_areas
from app.db.bootstrap import init_database
from app.db.reference import sync_taxonomy
from app.ingest.areas import read_kommun_file
from app.ingest.store import IncidentRecord, upsert_incidents
from app.main import create_app
from app.ops import devdb
from app.settings import APP_ROLE, OWNER_ROLE, SYSTEM_ROLE, Settings


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The administrative URL of a PostgreSQL server with PostGIS (database part ignored)."""
    given = os.environ.get("EST_DATABASE_URL")
    if given:
        yield given
        return
    data_dir = Path(tempfile.mkdtemp(prefix="est-test-pg-"))
    try:
        yield devdb.start(data_dir / "pg", devdb.free_port())
    finally:
        devdb.destroy(data_dir / "pg")
        data_dir.rmdir()


def settings_for(server_url: str, database: str) -> Settings:
    """Return settings pointing at one database of the test server (nothing from .env)."""
    url = make_url(server_url).set(database=database)
    return Settings(
        database_url=url.render_as_string(hide_password=False),
        app_database_url=None,
        owner_database_url=None,
        system_database_url=None,
        scheduler=False,  # tests run nights themselves
        _env_file=None,  # type: ignore[call-arg]
    )


def drop_database(server_url: str, database: str) -> None:
    """Drop a test database, closing whatever still connects to it."""
    url = make_url(server_url).set(database="postgres", drivername="postgresql+psycopg")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    engine.dispose()


def serve(settings: Settings) -> Iterator[str]:
    """The service under uvicorn on a free port of loopback, in a thread; yields its base URL
    (for tests that need a real server: a browser, GDAL, an OIDC provider's redirects)."""
    port = devdb.free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def fresh_database(server_url: str) -> Iterator[Settings]:
    """An empty database of its own (no schema), dropped afterwards."""
    name = f"est_t_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database="postgres", drivername="postgresql+psycopg")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    yield settings_for(server_url, name)
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def settings(server_url: str) -> Iterator[Settings]:
    """A database initialised at head, with the categories and the 290 kommuner + 21 län."""
    name = f"est_s_{uuid.uuid4().hex[:10]}"
    s = settings_for(server_url, name)
    init_database(s, 3006)
    engine = create_engine(s.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with engine.begin() as conn:
        sync_taxonomy(conn, load_taxonomy())
        load_areas(conn, read_kommun_file())
    engine.dispose()
    yield s
    drop_database(server_url, name)


def _engine(settings: Settings, role: str) -> Iterator[Engine]:
    engine = create_engine(settings.role_url(role), poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture()
def system_engine(settings: Settings) -> Iterator[Engine]:
    """An engine logged in as the system role (nightly jobs)."""
    yield from _engine(settings, SYSTEM_ROLE)


@pytest.fixture()
def app_engine(settings: Settings) -> Iterator[Engine]:
    """An engine logged in as the app role (the service)."""
    yield from _engine(settings, APP_ROLE)


@pytest.fixture()
def owner_engine(settings: Settings) -> Iterator[Engine]:
    """An engine logged in as the owner role (migrations)."""
    yield from _engine(settings, OWNER_ROLE)


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    """A test client of the service on the session's database."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


# A small world of organisations, grants, keys and incidents that the access tests share.
WEEK = datetime(2026, 10, 5, 8, tzinfo=UTC)  # Monday of ISO week 41, 10:00 in Stockholm
ESLOV = (393_760.0, 6_189_485.0)  # SWEREF 99 TM, Stora torget in Eslöv (kommun 1285)
SVALOV = (378_000.0, 6_199_000.0)  # in Svalöv (kommun 1214)


@dataclass
class World:
    """Tokens by (organisation, role) and the ids of the incidents each organisation owns."""

    tokens: dict[tuple[str, str], str]
    incident_ids: dict[str, list[int]]

    def headers(self, organisation: str, role: str) -> dict[str, str]:
        """Return the Authorization header of a key of that organisation and role."""
        return {"Authorization": f"Bearer {self.tokens[(organisation, role)]}"}


def _cluster(n: int, x: float, y: float, code: str, prefix: str, **kw: Any) -> list[IncidentRecord]:
    return [
        IncidentRecord(
            source="world",
            external_id=f"{prefix}-{i}",
            category_code=code,
            occurred_from=WEEK + timedelta(hours=i),
            occurred_to=None,
            x=x + i,
            y=y,
            location_precision=kw.get("precision", "address"),
            description=kw.get("description", f"{prefix} {i}"),
        )
        for i in range(n)
    ]


# Eslöv's incidents: cells of 250 m hold 12, 7 and 3 incidents, 6 sensitive ones and 6 placed
# at an area centroid; the viewer layer may show only the first two cells (rounded to 10, 5).
ESLOV_INCIDENTS = [
    *_cluster(12, ESLOV[0] + 10, ESLOV[1] + 10, "skadegorelse.klotter", "a"),
    *_cluster(7, ESLOV[0] + 510, ESLOV[1] + 10, "tillgrepp.cykelstold", "b"),
    *_cluster(3, ESLOV[0] + 1010, ESLOV[1] + 10, "skadegorelse.klotter", "c"),
    *_cluster(6, ESLOV[0] + 1510, ESLOV[1] + 10, "vald.nara_relation", "d"),
    *_cluster(6, ESLOV[0] + 2010, ESLOV[1] + 10, "trafik.olycka", "e", precision="area_centroid"),
    *_cluster(1, ESLOV[0] + 2510, ESLOV[1] + 10, "ovrigt", "f", description='=HYPERLINK("x")'),
]
SVALOV_INCIDENTS = _cluster(10, SVALOV[0], SVALOV[1], "skadegorelse.klotter", "s")

ORGS = {
    "drift": ("operator", ["admin"]),
    "kommun-1285": ("kommun", ["admin", "analyst", "reporter", "viewer", "ingest"]),
    "kommun-1214": ("kommun", ["admin", "analyst", "viewer"]),
    "lpo-test": ("lpo", ["analyst", "viewer"]),
    "utan-grant": ("business", ["admin", "analyst", "reporter", "viewer", "ingest"]),
    # writes its own incidents in Älmhult, where nobody else holds a raw grant
    "ingest-test": ("kommun", ["admin", "analyst", "reporter", "viewer", "ingest"]),
}
GRANTS = [
    ("kommun-1285", "1285", GrantLevel.raw),
    ("kommun-1214", "1214", GrantLevel.raw),
    ("kommun-1214", "1285", GrantLevel.aggregate),
    ("lpo-test", "1214", GrantLevel.raw),
]


@pytest.fixture(scope="session")
def world(settings: Settings) -> World:
    """Organisations with keys of every role they need, grants, and incidents."""
    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    tokens: dict[tuple[str, str], str] = {}
    ids: dict[str, list[int]] = {}
    with engine.begin() as conn:
        for code, (kind, roles) in ORGS.items():
            admin.create_organisation(conn, code, code, kind)
            for role in roles:
                tokens[(code, role)] = admin.new_key(conn, code, Role(role), "test", None).token
        for org, area, level in GRANTS:
            admin.grant_area(conn, org, area, level, "test")
        for org, records in (("kommun-1285", ESLOV_INCIDENTS), ("kommun-1214", SVALOV_INCIDENTS)):
            org_id = admin.organisation_id(conn, org)
            upsert_incidents(conn, org_id, 3006, records)
            ids[org] = list(
                conn.scalars(
                    text("SELECT id FROM est.incident WHERE organisation_id = :o ORDER BY id"),
                    {"o": org_id},
                )
            )
    engine.dispose()
    return World(tokens=tokens, incident_ids=ids)

"""Fixtures: a real PostGIS for every test that needs one.

Without EST_DATABASE_URL the suite starts a throwaway PostgreSQL cluster of its own and removes
it at the end; with it, the suite creates (and drops) databases of its own on that server, so the
login must be a superuser.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from app.taxonomy import load_taxonomy
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import make_url

from app import devdb
from app.db.bootstrap import init_database
from app.db.reference import sync_taxonomy
from app.ingest.areas import load_areas, read_kommun_file
from app.main import create_app
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
        _env_file=None,  # type: ignore[call-arg]
    )


def drop_database(server_url: str, database: str) -> None:
    """Drop a test database, closing whatever still connects to it."""
    url = make_url(server_url).set(database="postgres", drivername="postgresql+psycopg")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    engine.dispose()


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

"""Liveness, readiness and problem+json errors."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, pool

from app.db import migrate
from app.db.bootstrap import init_database
from app.main import create_app
from app.ops import devdb
from app.settings import OWNER_ROLE, Settings
from tests.conftest import World, settings_for


def test_healthz_answers_while_the_process_runs(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_the_migration_head(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["database_revision"] == migrate.head_revision()


def test_unknown_route_is_a_problem_json_404(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404 and r.json()["title"] == "Not found"


def test_invalid_query_parameter_names_the_field(client: TestClient, world: World) -> None:
    r = client.get(
        "/api/v1/areas", params={"limit": "many"}, headers=world.headers("kommun-1285", "viewer")
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "limit" in r.json()["detail"]


def test_readyz_is_503_behind_the_head_and_200_at_it(fresh_database: Settings) -> None:
    init_database(fresh_database, 3006)
    owner = create_engine(fresh_database.role_url(OWNER_ROLE), poolclass=pool.NullPool)
    migrate.downgrade(owner, "base")
    with TestClient(create_app(fresh_database), raise_server_exceptions=False) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert "est db upgrade" in r.json()["detail"]
        migrate.upgrade(owner, srid=3006)
        assert c.get("/readyz").status_code == 200
    owner.dispose()


def test_readyz_is_503_while_the_database_is_stopped_and_200_after_it_starts() -> None:
    """The app keeps running across a database restart and notices both ways by itself."""
    base = Path(tempfile.mkdtemp(prefix="est-test-restart-"))
    port = devdb.free_port()
    try:
        url = devdb.start(base / "pg", port)
        settings = settings_for(url, "est_restart")
        init_database(settings, 3006)
        with TestClient(create_app(settings), raise_server_exceptions=False) as c:
            assert c.get("/readyz").status_code == 200
            devdb.stop(base / "pg")
            down = c.get("/readyz")
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in down.text
            assert c.get("/healthz").status_code == 200
            devdb.start(base / "pg", port)
            assert c.get("/readyz").status_code == 200
    finally:
        devdb.destroy(base / "pg")
        base.rmdir()


def test_readyz_reads_the_revision_without_a_migration_context(
    client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="alembic"):
        for _ in range(3):
            assert client.get("/readyz").status_code == 200
    assert [r for r in caplog.records if r.name.startswith("alembic")] == []
    # what it replaced logs on every call: the check above would see it
    engine = create_engine(settings.role_url(OWNER_ROLE), poolclass=pool.NullPool)
    with caplog.at_level(logging.INFO, logger="alembic"), engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.stored_revision(conn)
    engine.dispose()
    assert any(r.name.startswith("alembic") for r in caplog.records)

"""/metrics: the runs' health as Prometheus reads it, for the operator only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.runs.profiles import ensure_default_profiles
from app.settings import Settings
from tests.conftest import World


def test_the_operator_reads_run_health_that_prometheus_parses(
    client: TestClient, world: World, settings: Settings
) -> None:
    from sqlalchemy import create_engine, pool

    from app.settings import SYSTEM_ROLE

    engine = create_engine(settings.role_url(SYSTEM_ROLE), poolclass=pool.NullPool)
    with engine.begin() as conn:
        ensure_default_profiles(conn)
    engine.dispose()
    started = client.post(
        "/api/v1/runs",
        json={"area": "1285", "week": "2026-W41", "force": True},
        headers=world.headers("kommun-1285", "analyst"),
    )
    assert started.status_code == 202, started.text
    r = client.get("/metrics", headers=world.headers("drift", "admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "text/plain; version=0.0.4"
    )
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert {"est_run_published_age_seconds", "est_run_last_status"} <= set(families)
    status = {
        s.labels["status"]: s.value
        for s in families["est_run_last_status"].samples
        if s.labels["area"] == "1285" and s.labels["profile"] == "standard"
    }
    assert status == {"running": 0.0, "succeeded": 1.0, "failed": 0.0}
    ages = [
        s.value
        for s in families["est_run_published_age_seconds"].samples
        if s.labels["area"] == "1285"
    ]
    assert ages and all(0 <= a < 3600 for a in ages)


def test_metrics_are_the_operators_unless_public(
    client: TestClient, world: World, settings: Settings
) -> None:
    assert client.get("/metrics").status_code == 401
    for org, role in (("kommun-1285", "admin"), ("kommun-1285", "analyst")):
        assert client.get("/metrics", headers=world.headers(org, role)).status_code == 403
    public = settings.model_copy(update={"metrics_public": True})
    with TestClient(create_app(public), raise_server_exceptions=False) as c:
        assert c.get("/metrics").status_code == 200

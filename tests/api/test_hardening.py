"""Limits every deployment needs: body size, rate per key, CORS allow-list, docs in production."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import World


def _client(settings: Settings, **changes: object) -> TestClient:
    return TestClient(
        create_app(settings.model_copy(update=changes)), raise_server_exceptions=False
    )


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    settings: Settings, world: World
) -> None:
    with _client(settings, max_body_bytes=2048) as c:
        h = world.headers("kommun-1285", "admin")
        big = {"role": "viewer", "name": "x" * 4000}
        declared = c.post("/api/v1/keys", json=big, headers=h)
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"

        def chunks():  # no Content-Length: the server must count
            yield b'{"role": "viewer", "name": "'
            for _ in range(10):
                yield b"x" * 400
            yield b'"}'

        streamed = c.post(
            "/api/v1/keys", content=chunks(), headers={**h, "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert c.post("/api/v1/keys", json={"role": "viewer"}, headers=h).status_code == 201


def test_each_key_has_its_own_rate_limit(settings: Settings, world: World) -> None:
    with _client(settings, rate_limit_per_minute=5) as c:
        a, b = world.headers("kommun-1285", "viewer"), world.headers("kommun-1214", "viewer")
        statuses = [c.get("/api/v1/me", headers=a).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        limited = c.get("/api/v1/me", headers=a)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        assert c.get("/api/v1/me", headers=b).status_code == 200


def test_cors_allows_only_the_listed_origins(settings: Settings) -> None:
    with _client(settings, cors_origins=["https://karta.eslov.se"]) as c:
        ok = c.options(
            "/api/v1/me",
            headers={"Origin": "https://karta.eslov.se", "Access-Control-Request-Method": "GET"},
        )
        bad = c.options(
            "/api/v1/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert ok.headers.get("access-control-allow-origin") == "https://karta.eslov.se"
    assert "access-control-allow-origin" not in bad.headers


def test_production_turns_the_docs_ui_off_but_keeps_the_openapi_document(
    settings: Settings,
) -> None:
    with _client(settings, environment="production") as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 200
    with _client(settings) as c:
        assert c.get("/docs").status_code == 200


def test_a_query_longer_than_the_statement_timeout_ends_with_503_and_stops_running(
    settings: Settings, world: World, app_engine: Any
) -> None:
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from app.access.auth import authenticate
    from app.api.deps import get_session
    from app.core.errors import Unavailable

    quick = settings.model_copy(update={"statement_timeout_s": 0.2})
    with app_engine.begin() as conn:
        principal = authenticate(
            conn, quick, world.headers("kommun-1285", "analyst")["Authorization"]
        )
    sessions = get_session(principal, app_engine, quick)
    session = next(sessions)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="ran longer than the service allows"):
        try:
            session.execute(text("SELECT pg_sleep(5)"))
        except OperationalError as exc:
            sessions.throw(exc)
    assert time.monotonic() - started < 2
    with app_engine.connect() as conn:
        running = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' "
                "AND state = 'active'"
            )
        )
    assert running == 0


def test_failed_authentication_is_limited_per_client_address(
    settings: Settings, world: World
) -> None:
    with _client(settings, auth_failures_per_minute=5, trusted_proxies=["testclient"]) as c:
        wrong = {"Authorization": "Bearer est_000000000000_guess"}
        answers = [c.get("/api/v1/me", headers=wrong).status_code for _ in range(7)]
        assert answers == [401] * 5 + [429] * 2
        # the right key from the same address waits too: its credentials are not even tried
        blocked = c.get("/api/v1/me", headers=world.headers("kommun-1285", "viewer"))
        assert blocked.status_code == 429 and "address" in blocked.json()["detail"]
        assert int(blocked.headers["retry-after"]) >= 1
        # another client behind the trusted proxy is another address
        other = {**world.headers("kommun-1285", "viewer"), "X-Forwarded-For": "198.51.100.7"}
        assert c.get("/api/v1/me", headers=other).status_code == 200
    with _client(settings, auth_failures_per_minute=5) as c:
        # without a trusted proxy, X-Forwarded-For is the client's word and changes nothing
        for n in range(7):
            spoofed = {
                "Authorization": "Bearer est_000000000000_guess",
                "X-Forwarded-For": f"203.0.113.{n}",
            }
            last = c.get("/api/v1/me", headers=spoofed).status_code
        assert last == 429

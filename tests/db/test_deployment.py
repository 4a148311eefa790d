"""The deployment is read once per process and read again when any process changed it."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.db import deployment
from app.db.deployment import DeploymentCache, set_timezone


def test_the_cache_reads_once_and_again_after_another_process_changed_the_deployment(
    app_engine: Engine, system_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = []
    real = deployment.read_deployment
    monkeypatch.setattr(deployment, "read_deployment", lambda c: reads.append(1) or real(c))
    cache = DeploymentCache()
    with app_engine.connect() as conn:
        first = cache.get(conn)
        assert cache.get(conn) is first and len(reads) == 1  # one cheap version check, no reread
    try:
        with system_engine.begin() as other:  # another process or replica
            assert set_timezone(other, "America/Chicago")
        with app_engine.connect() as conn:
            fresh = cache.get(conn)
        assert len(reads) == 2 and fresh.timezone == "America/Chicago"
        assert fresh.version > first.version
    finally:
        with system_engine.begin() as other:
            set_timezone(other, first.timezone)

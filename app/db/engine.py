"""Engines and sessions for the deployment's three database roles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from app.settings import APP_ROLE, SYSTEM_ROLE, Settings


def make_engine(url: URL, pool_size: int = 5) -> Engine:
    """Return an engine whose pool checks connections, so a restarted database is picked up."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "est-lagesbild"},
    )


def app_engine(settings: Settings) -> Engine:
    """Return the engine the service uses: role est_app, which owns nothing and obeys RLS."""
    return make_engine(settings.role_url(APP_ROLE), settings.db_pool_size)


def system_engine(settings: Settings) -> Engine:
    """Return the engine nightly jobs use: role est_system."""
    return make_engine(settings.role_url(SYSTEM_ROLE), pool_size=2)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session in one transaction: committed on success, rolled back on error."""
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        yield session

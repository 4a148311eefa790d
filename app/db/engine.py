"""Engines and sessions for the deployment's three database roles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text
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


QUERY_CANCELED = "57014"  # statement_timeout (or a cancel) ended the query


def set_statement_timeout(session: Session | Connection, seconds: float) -> None:
    """Let no statement of this transaction run longer than `seconds` (SET LOCAL)."""
    session.execute(
        text("SELECT set_config('statement_timeout', :ms, true)"),
        {"ms": str(max(1, int(seconds * 1000)))},
    )


def was_canceled(exc: BaseException) -> bool:
    """Whether a database error is a query ended by its statement timeout."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == QUERY_CANCELED

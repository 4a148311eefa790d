"""Dependencies shared by the routes: settings and the database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.errors import ServiceUnavailable
from app.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """Return the app role's engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """Yield a session in one transaction; a database that is down answers 503."""
    try:
        with session_scope(engine) as session:
            yield session
    except OperationalError as exc:
        raise ServiceUnavailable("the database is not reachable; try again shortly") from exc


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]

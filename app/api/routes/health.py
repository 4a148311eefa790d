"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.exc import DBAPIError

from app.api.deps import EngineDep
from app.core.errors import Unavailable
from app.db.migrate import head_revision, stored_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Answer 200 while the process runs, whatever the database does."""
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and migrated to head")
def readyz(engine: EngineDep) -> dict[str, Any]:
    """Answer 200 when the database answers and is at the code's migration head, else 503."""
    head = head_revision()
    try:
        with engine.connect() as conn:
            current = stored_revision(conn)
    except DBAPIError as exc:
        raise Unavailable("the database is not reachable") from exc
    if current != head:
        raise Unavailable(
            f"the database is at migration {current or 'none'}, the code needs {head}: "
            "run `est db upgrade`",
            database_revision=current,
            code_revision=head,
        )
    return {"status": "ready", "database_revision": current}

"""The audit trail: every read of raw incidents, every export and every admin change."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app.access.auth import Principal


def record(
    db: Session | Connection,
    principal: Principal | None,
    action: str,
    *,
    endpoint: str | None = None,
    request_id: str | None = None,
    filters: dict[str, Any] | None = None,
    row_count: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> None:
    """Append one entry to the audit log, in the caller's transaction."""
    db.execute(
        text("""
            INSERT INTO est.audit_log (request_id, actor, organisation_id, role, action, endpoint,
                                       filters, row_count, reason)
            VALUES (:rid, :actor, :org, :role, :action, :endpoint, CAST(:filters AS jsonb),
                    :rows, :reason)
        """),
        {
            "rid": request_id,
            "actor": actor or (principal.subject if principal else None),
            "org": principal.organisation_id if principal else None,
            "role": principal.role.value if principal else None,
            "action": action,
            "endpoint": endpoint,
            "filters": _json(filters),
            "rows": row_count,
            "reason": reason,
        },
    )


class Author(Protocol):
    """Who changes something, as the audit log names them (app.alerts.subscriptions.Who)."""

    @property
    def principal(self) -> Principal | None:
        """The caller over the API; None on the command line."""

    @property
    def actor(self) -> str:
        """The key's subject, or the command line's user."""

    @property
    def endpoint(self) -> str | None:
        """The route, over the API."""

    @property
    def request_id(self) -> str | None:
        """The request's id, over the API."""


def record_change(db: Session | Connection, who: Author, action: str, what: dict[str, Any]) -> None:
    """Append a change made by `who` to the audit log, in the caller's transaction."""
    record(
        db,
        who.principal,
        action,
        endpoint=who.endpoint,
        request_id=who.request_id,
        filters=what,
        actor=who.actor,
    )


def _json(value: dict[str, Any] | None) -> str | None:
    return orjson.dumps(value, default=str).decode() if value is not None else None


INT_MAX = 2**31 - 1


def read_entries(
    conn: Connection,
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    action: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """Return the audit entries of the session's organisation (est.audit_entries), newest first."""
    if offset > INT_MAX:  # est.audit_entries pages in integers: there is nothing that far
        return []
    rows = conn.execute(
        text(
            "SELECT * FROM est.audit_entries(:since, :until, :actor, :action, "
            "CAST(:lim AS integer), CAST(:off AS integer))"
        ),
        {
            "since": since,
            "until": until,
            "actor": actor,
            "action": action,
            "lim": limit,
            "off": offset,
        },
    )
    return [dict(r._mapping) for r in rows]

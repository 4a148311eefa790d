"""Reading raw incidents, scoped to what the caller may see (RLS stands behind this as well)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from app.access.auth import Principal
from app.core.vocabulary import Role

# An incident is visible to its reporting organisation (analysts and reporters) and to the
# analysts of organisations with a live raw grant on an area it lies in. The areas are on the
# incident's own row (area_ids), and the granted ones are computed once per query (an InitPlan),
# so the test per row is one array overlap: a page read in index order stops when it is full.
# Row-level security (migration 0007) applies the same rule behind this one.
VISIBLE_SQL = """(
    (i.organisation_id = :org AND :role IN ('analyst', 'reporter'))
    OR (:role = 'analyst' AND i.area_ids && (SELECT est.raw_granted_area_ids()))
)"""
COUNT_AT_MOST = 10_000  # numberMatched is exact up to here and left out beyond


@dataclass(frozen=True)
class IncidentFilter:
    """What to read: a box in lon/lat, a time span, categories (with their children), an area."""

    bbox: tuple[float, float, float, float] | None = None
    since: datetime | None = None
    until: datetime | None = None
    categories: list[str] = field(default_factory=list)
    area: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the filter for the audit log."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


def _where(f: IncidentFilter) -> tuple[str, dict[str, Any]]:
    clauses = ["i.deleted_at IS NULL", VISIBLE_SQL]
    params: dict[str, Any] = {}
    if f.bbox is not None:
        # && alone is what the GiST index answers (it is LEAKPROOF, see README); ST_Intersects
        # then trims to the box, which is not a rectangle once transformed.
        clauses.append(
            "i.geom && ST_Transform(ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326), "
            "(SELECT srid FROM est.deployment))"
        )
        clauses.append(
            "ST_Intersects(i.geom, ST_Transform(ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, "
            "4326), (SELECT srid FROM est.deployment)))"
        )
        params.update(zip(("minx", "miny", "maxx", "maxy"), f.bbox, strict=True))
    if f.since is not None:
        clauses.append("coalesce(i.occurred_to, i.occurred_from) >= :since")
        params["since"] = f.since
    if f.until is not None:
        clauses.append("i.occurred_from < :until")
        params["until"] = f.until
    if f.categories:
        clauses.append(
            "EXISTS (SELECT 1 FROM unnest(CAST(:cats AS text[])) c "
            "WHERE i.category_code = c OR i.category_code LIKE c || '.%')"
        )
        params["cats"] = f.categories
    if f.area is not None:
        clauses.append(
            "i.area_ids && (SELECT array_agg(a.id) FROM est.area a WHERE a.code = :area)"
        )
        params["area"] = f.area
    return " AND ".join(clauses), params


SELECT_COLUMNS = """
    i.id, o.code AS organisation, i.source, i.external_id, i.category_code, c.label_sv,
    i.occurred_from, i.occurred_to, i.reported_at, i.location_precision, i.description,
    ST_X(ST_Transform(i.geom, 4326)) AS lon, ST_Y(ST_Transform(i.geom, 4326)) AS lat
"""


def _scope(principal: Principal) -> dict[str, Any]:
    return {"org": principal.organisation_id, "role": principal.role.value}


def count_visible(
    conn: Connection, principal: Principal, f: IncidentFilter, at_most: int = COUNT_AT_MOST
) -> int | None:
    """Return how many incidents the caller may see under the filter, or None beyond at_most."""
    where, params = _where(f)
    sql = f"SELECT count(*) FROM (SELECT 1 FROM est.incident i WHERE {where} LIMIT :cap) AS s"
    n = int(conn.scalar(text(sql), {**params, **_scope(principal), "cap": at_most + 1}) or 0)
    return n if n <= at_most else None


def page_query(
    principal: Principal, f: IncidentFilter, limit: int | None, after: tuple[datetime, int] | None
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a page of visible incidents (see `visible_incidents`)."""
    where, params = _where(f)
    if after is not None:
        where += " AND (i.occurred_from, i.id) > (:after_t, :after_id)"
        params.update(after_t=after[0], after_id=after[1])
    # the page first, from the index; then its names (a join before the limit would sort all)
    sql = f"""
        SELECT {SELECT_COLUMNS}
        FROM (SELECT i.* FROM est.incident i WHERE {where}
              ORDER BY i.occurred_from, i.id LIMIT :limit) AS i
        JOIN est.organisation o ON o.id = i.organisation_id
        JOIN est.category c ON c.code = i.category_code
        ORDER BY i.occurred_from, i.id
    """
    return sql, {**params, **_scope(principal), "limit": limit}


def visible_incidents(
    conn: Connection,
    principal: Principal,
    f: IncidentFilter,
    limit: int | None,
    after: tuple[datetime, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the incidents the caller may see under the filter, oldest first.

    `after` is the (occurred_from, id) of the last incident of the page before: pages are read
    from the (occurred_from, id) index from there on (keyset paging, no offset).
    """
    if principal.role not in (Role.analyst, Role.reporter):
        return
    sql, params = page_query(principal, f, limit, after)
    for row in conn.execute(text(sql), params):
        yield dict(row._mapping)


def visible_incident(
    conn: Connection, principal: Principal, incident_id: int
) -> dict[str, Any] | None:
    """Return one incident if the caller may see it."""
    if principal.role not in (Role.analyst, Role.reporter):
        return None
    sql = f"""
        SELECT {SELECT_COLUMNS}
        FROM est.incident i
        JOIN est.organisation o ON o.id = i.organisation_id
        JOIN est.category c ON c.code = i.category_code
        WHERE i.id = :id AND i.deleted_at IS NULL AND {VISIBLE_SQL}
    """
    row = conn.execute(text(sql), {"id": incident_id, **_scope(principal)}).one_or_none()
    return dict(row._mapping) if row is not None else None

"""Which areas' published layers a caller may see, and in which version.

A run is of one area; its layers come in two versions (app.runs.viewer): the analyst version
(hotspot hulls, exact counts, p values) and the viewer version (built from shown counts only).
An organisation's grants decide which one a caller gets:

- an area is *covered* when the organisation holds a live grant on it, on a union it is part
  of (a police area's grant reaches each of its kommuner), or on every part of it (grants on
  all the kommuner of a police area reach the police area);
- a covered area is covered *raw* when those grants are raw ones, and the caller is an
  analyst: a raw grant on one kommun of a police area does not make the police area's hulls
  visible, since they are drawn from the incidents of the other kommuner as well.

Callers get the analyst version of raw-covered areas and the viewer version of the others.
The query runs in the request's session, which carries the organisation and role (SET LOCAL).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# (area_id, raw) of every area the session's organisation covers; raw only for analysts.
COVERED_AREAS_SQL = """
    WITH granted AS (
        SELECT g.area_id, bool_or(g.level = 'raw') AS raw
        FROM est.area_grant g
        WHERE g.organisation_id = est.current_org()
          AND (g.expires_at IS NULL OR g.expires_at > now())
        GROUP BY g.area_id
    ), reach AS (
        SELECT area_id, raw FROM granted
        UNION ALL
        SELECT c.component_id, g.raw
        FROM est.area_component c JOIN granted g ON g.area_id = c.area_id
        UNION ALL
        SELECT c.area_id, bool_and(coalesce(g.raw, false))
        FROM est.area_component c LEFT JOIN granted g ON g.area_id = c.component_id
        GROUP BY c.area_id HAVING bool_and(g.area_id IS NOT NULL)
    )
    SELECT area_id, bool_or(raw) AND est.current_api_role() = 'analyst' AS raw
    FROM reach GROUP BY area_id
"""


def covers(conn: Connection, area_code: str) -> bool:
    """Whether the session's organisation covers the area (in either version)."""
    found = conn.scalar(
        text(
            f"WITH covered AS ({COVERED_AREAS_SQL}) "
            "SELECT 1 FROM covered cv JOIN est.area a ON a.id = cv.area_id WHERE a.code = :area"
        ),
        {"area": area_code},
    )
    return found is not None

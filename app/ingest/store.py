"""The one way incidents reach the database: COPY into staging, then one set-based upsert.

Records are keyed by (organisation, source, external_id): sending a record again updates it
when something changed and leaves it alone otherwise, so imports can be repeated safely.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

STAGING_COLUMNS = (
    "row_no",
    "source",
    "external_id",
    "category_code",
    "occurred_from",
    "occurred_to",
    "x",
    "y",
    "location_precision",
    "description",
    "created_by",
)


@dataclass(frozen=True)
class IncidentRecord:
    """A validated incident in the storage CRS, ready to be stored."""

    source: str
    external_id: str
    category_code: str
    occurred_from: datetime
    occurred_to: datetime | None
    x: float
    y: float
    location_precision: str
    description: str | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class UpsertResult:
    """How many records were created, updated or already stored as they are, and which."""

    created: int
    updated: int
    unchanged: int
    created_keys: frozenset[tuple[str, str]] = frozenset()
    updated_keys: frozenset[tuple[str, str]] = frozenset()

    def status(self, source: str, external_id: str) -> str:
        """Return created, updated or unchanged for one record's key."""
        key = (source, external_id)
        if key in self.created_keys:
            return "created"
        return "updated" if key in self.updated_keys else "unchanged"


# One staged row: row_no, source, external_id, category_code, occurred_from, occurred_to, x, y,
# location_precision, description, created_by (times as datetimes or ISO 8601 text).
StagedRow = tuple[Any, ...]


def upsert_incidents(
    conn: Connection, organisation_id: int, srid: int, records: Iterable[IncidentRecord]
) -> UpsertResult:
    """Store records for an organisation and place them in their areas (incident_area)."""
    rows = (
        (
            n,
            r.source,
            r.external_id,
            r.category_code,
            r.occurred_from,
            r.occurred_to,
            r.x,
            r.y,
            r.location_precision,
            r.description,
            r.created_by,
        )
        for n, r in enumerate(records, start=1)
    )
    return upsert_rows(conn, organisation_id, srid, rows)


def upsert_rows(
    conn: Connection, organisation_id: int, srid: int, rows: Iterable[StagedRow]
) -> UpsertResult:
    """COPY rows into a staging table and upsert them in one statement.

    Within one call a later row with the same (source, external_id) wins over an earlier one.
    """
    staging = Staging(conn)
    staging.copy_rows(rows)
    return staging.apply(organisation_id, srid)


class Staging:
    """A temporary table that takes any number of COPYs and is applied with one upsert."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        conn.exec_driver_sql(
            "CREATE TEMP TABLE incident_staging (row_no bigint, source text, external_id text, "
            "category_code text, occurred_from timestamptz, occurred_to timestamptz, "
            "x double precision, y double precision, "
            "location_precision est.location_precision, description text, created_by text) "
            "ON COMMIT DROP"
        )

    def _cursor(self) -> Any:
        raw = self.conn.connection.driver_connection
        assert raw is not None
        return raw.cursor()

    def copy_rows(self, rows: Iterable[StagedRow]) -> None:
        """COPY rows given as tuples (the few-records path)."""
        columns = ", ".join(STAGING_COLUMNS)
        with self._cursor() as cur, cur.copy(f"COPY incident_staging ({columns}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)

    def copy_frame(self, frame: pd.DataFrame) -> None:
        """COPY a frame with the staging columns as CSV text, formatted in C by pandas.

        Empty fields are NULL in COPY's CSV format; validation has already refused empty text,
        so no value is lost that way.
        """
        buffer = io.StringIO()
        frame.loc[:, list(STAGING_COLUMNS)].to_csv(buffer, header=False, index=False)
        columns = ", ".join(STAGING_COLUMNS)
        with (
            self._cursor() as cur,
            cur.copy(f"COPY incident_staging ({columns}) FROM STDIN (FORMAT csv)") as cp,
        ):
            cp.write(buffer.getvalue())

    def shared_points(self, srid: int, at_least: int) -> list[tuple[float, float, int]]:
        """Return (lon, lat, count) of points that at least `at_least` staged records share,
        leaving out area centroids (sharing those is expected)."""
        rows = self.conn.execute(
            text("""
                SELECT ST_X(p) AS lon, ST_Y(p) AS lat, n FROM (
                    SELECT ST_Transform(ST_SetSRID(ST_MakePoint(x, y), :srid), 4326) AS p,
                           count(*) AS n
                    FROM incident_staging WHERE location_precision <> 'area_centroid'
                    GROUP BY x, y HAVING count(*) >= :n) s
                ORDER BY n DESC, lon, lat
            """),
            {"srid": srid, "n": at_least},
        ).all()
        return [(r.lon, r.lat, int(r.n)) for r in rows]

    def apply(self, organisation_id: int, srid: int) -> UpsertResult:
        """Upsert everything staged for the organisation and place changed incidents in areas."""
        conn = self.conn
        distinct = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT DISTINCT source, external_id FROM incident_staging) d"
        ).scalar_one()
        changed = conn.execute(text(UPSERT_SQL), {"org": organisation_id, "srid": srid}).all()
        conn.exec_driver_sql("DROP TABLE incident_staging")
        if changed:
            place_in_areas(conn, [r.id for r in changed])
        created = frozenset((r.source, r.external_id) for r in changed if r.inserted)
        updated = frozenset((r.source, r.external_id) for r in changed if not r.inserted)
        return UpsertResult(
            created=len(created),
            updated=len(updated),
            unchanged=distinct - len(changed),
            created_keys=created,
            updated_keys=updated,
        )


UPSERT_SQL = """
WITH latest AS (
    SELECT DISTINCT ON (source, external_id) *
    FROM incident_staging
    ORDER BY source, external_id, row_no DESC
)
INSERT INTO est.incident AS i (
    organisation_id, source, external_id, category_code, occurred_from, occurred_to, geom,
    location_precision, description, created_by
)
SELECT :org, source, external_id, category_code, occurred_from, occurred_to,
       ST_SetSRID(ST_MakePoint(x, y), :srid), location_precision, description, created_by
FROM latest
ON CONFLICT (organisation_id, source, external_id) DO UPDATE SET
    category_code = EXCLUDED.category_code,
    occurred_from = EXCLUDED.occurred_from,
    occurred_to = EXCLUDED.occurred_to,
    geom = EXCLUDED.geom,
    location_precision = EXCLUDED.location_precision,
    description = EXCLUDED.description,
    updated_at = now(),
    deleted_at = NULL
WHERE (i.category_code, i.occurred_from, i.occurred_to, i.location_precision, i.description)
      IS DISTINCT FROM (EXCLUDED.category_code, EXCLUDED.occurred_from, EXCLUDED.occurred_to,
                        EXCLUDED.location_precision, EXCLUDED.description)
   OR NOT ST_Equals(i.geom, EXCLUDED.geom)
   OR i.deleted_at IS NOT NULL
RETURNING i.id, i.source, i.external_id, (xmax = 0) AS inserted
"""


def place_in_areas(conn: Connection, incident_ids: Sequence[int]) -> None:
    """(Re)compute which areas the given incidents lie in.

    The ids go through a temporary table: with a large id array in the query the planner
    compares every area against the whole array.
    """
    conn.exec_driver_sql("CREATE TEMP TABLE placed (id bigint PRIMARY KEY) ON COMMIT DROP")
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy("COPY placed (id) FROM STDIN") as copy:
        for incident_id in incident_ids:
            copy.write_row((incident_id,))
    conn.exec_driver_sql("ANALYZE placed")
    conn.exec_driver_sql(
        "DELETE FROM est.incident_area ia USING placed p WHERE ia.incident_id = p.id"
    )
    conn.exec_driver_sql("""
        INSERT INTO est.incident_area (incident_id, area_id, organisation_id)
        SELECT i.id, a.id, i.organisation_id
        FROM placed p
        JOIN est.incident i ON i.id = p.id
        JOIN est.area a ON ST_Intersects(a.geom, i.geom)
        ORDER BY a.id
    """)
    conn.exec_driver_sql("DROP TABLE placed")

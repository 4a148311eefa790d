"""The one way incidents reach the database: COPY into staging, then set-based statements.

Records are keyed by (organisation, source, external_id): sending a record again updates it
when something changed and leaves it alone otherwise, so imports can be repeated safely.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from app.db.areas import sync_area_ids

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
    """How many records created, updated or found already stored as they are, and which rows.

    Records count in the order given, as if stored one after another: a second record with a
    key that an earlier record of the same call created or changed counts as updated (or
    unchanged, when it says the same). The row sets are filled when asked for (`row_statuses`).
    """

    created: int
    updated: int
    unchanged: int
    created_rows: frozenset[int] = frozenset()
    updated_rows: frozenset[int] = frozenset()

    def status(self, row: int) -> str:
        """Return created, updated or unchanged for one stored row number."""
        if row in self.created_rows:
            return "created"
        return "updated" if row in self.updated_rows else "unchanged"

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.created_rows | other.created_rows,
            self.updated_rows | other.updated_rows,
        )


NOTHING_STORED = UpsertResult(0, 0, 0)

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
    """Store rows given as tuples in the staging layout (the few-records path)."""
    frame = pd.DataFrame(list(rows), columns=list(STAGING_COLUMNS))
    return Staging(conn, organisation_id, srid).store(prepare(frame))


@dataclass(frozen=True)
class PreparedBatch:
    """Rows as COPY text, split into rounds with at most one row per key in each.

    Round k holds the k-th occurrence of every key, so storing the rounds in turn stores the
    records in their order. Preparing needs no connection: it can run on another thread.
    """

    rounds: tuple[str, ...]


def prepare(frame: pd.DataFrame) -> PreparedBatch:
    """Format a frame in the staging layout (`STAGING_COLUMNS`) as CSV text for COPY.

    Empty fields are NULL in COPY's CSV format; validation has already refused empty text,
    so no value is lost that way.
    """
    frame = frame.loc[:, list(STAGING_COLUMNS)]
    if frame.duplicated(["source", "external_id"]).any():
        occurrence = frame.groupby(["source", "external_id"], sort=False).cumcount()
        parts = [frame[occurrence.to_numpy() == k] for k in range(int(occurrence.max()) + 1)]
    else:
        parts = [frame]
    return PreparedBatch(tuple(part.to_csv(header=False, index=False) for part in parts))


class Staging:
    """Stores prepared batches of one organisation's records through a temporary table.

    Each round of a batch is COPYed into the table, applied with one UPDATE of the changed
    incidents and one INSERT of the new ones (the new ones placed in their areas in the same
    statement), and the table is emptied for the next. Writers of one organisation and source
    take a transaction-level advisory lock first, so a key cannot be inserted by two
    transactions at once. Every point staged is tallied for `shared_points`.
    """

    def __init__(
        self, conn: Connection, organisation_id: int, srid: int, row_statuses: bool = True
    ) -> None:
        self.conn = conn
        self.organisation_id = organisation_id
        self.srid = srid
        self.row_statuses = row_statuses
        self._locked: set[str] = set()
        # One pair of tables per transaction, emptied for each Staging made in it.
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS incident_staging (row_no bigint, source text, "
            "external_id text, category_code text, occurred_from timestamptz, "
            "occurred_to timestamptz, x double precision, y double precision, "
            "location_precision est.location_precision, description text, created_by text) "
            "ON COMMIT DROP"
        )
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS staged_point (x double precision, "
            "y double precision, n bigint) ON COMMIT DROP"
        )
        conn.exec_driver_sql("TRUNCATE incident_staging, staged_point")

    def store(self, batch: PreparedBatch) -> UpsertResult:
        """Store a prepared batch, round by round; return what happened to its rows."""
        result = NOTHING_STORED
        for csv_text in batch.rounds:
            result = result + self._store_round(csv_text)
        return result

    def _store_round(self, csv_text: str) -> UpsertResult:
        conn = self.conn
        raw = conn.connection.driver_connection
        assert raw is not None
        columns = ", ".join(STAGING_COLUMNS)
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY incident_staging ({columns}) FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(csv_text)
        staged = conn.exec_driver_sql(
            "WITH tally AS (INSERT INTO staged_point SELECT x, y, count(*) FROM incident_staging"
            " WHERE location_precision <> 'area_centroid' GROUP BY x, y)"
            " SELECT count(*), array_agg(DISTINCT source) FROM incident_staging"
        ).one()
        total, sources = int(staged[0]), staged[1] or []
        self._lock_sources(sources)
        params = {"org": self.organisation_id, "srid": self.srid}
        existing = conn.execute(text(_EXISTING_SQL), params).scalar_one()
        changed = conn.execute(text(_apply_sql(existing > 0, self.row_statuses)), params).all()
        conn.exec_driver_sql("TRUNCATE incident_staging")
        updated_ids = [r.id for r in changed if r.status == "updated"]
        if updated_ids:
            place_in_areas(conn, updated_ids)
        if self.row_statuses:
            created_rows = frozenset(int(r.row_no) for r in changed if r.status == "created")
            updated_rows = frozenset(int(r.row_no) for r in changed if r.status == "updated")
            created, updated = len(created_rows), len(updated_rows)
        else:
            created_rows = updated_rows = frozenset()
            # Without row statuses the one 'created' row holds how many, in row_no.
            created = sum(int(r.row_no) for r in changed if r.status == "created")
            updated = len(updated_ids)
        return UpsertResult(created, updated, total - created - updated, created_rows, updated_rows)

    def _lock_sources(self, sources: Iterable[str]) -> None:
        """Take the advisory lock of (organisation, source) for every source not yet locked."""
        new = sorted(set(sources) - self._locked)
        if new:
            self.conn.execute(
                text(
                    "SELECT pg_advisory_xact_lock(:org, h) FROM "
                    "(SELECT DISTINCT hashtext(s) AS h FROM unnest(CAST(:sources AS text[])) s "
                    "ORDER BY 1) locks"
                ),
                {"org": self.organisation_id, "sources": new},
            ).all()
            self._locked.update(new)

    def shared_points(self, at_least: int) -> list[tuple[float, float, int]]:
        """Return (lon, lat, count) of points that at least `at_least` staged records share,
        leaving out area centroids (sharing those is expected)."""
        rows = self.conn.execute(
            text("""
                SELECT ST_X(p) AS lon, ST_Y(p) AS lat, n FROM (
                    SELECT ST_Transform(ST_SetSRID(ST_MakePoint(x, y), :srid), 4326) AS p,
                           sum(n) AS n
                    FROM staged_point GROUP BY x, y HAVING sum(n) >= :n) s
                ORDER BY n DESC, lon, lat
            """),
            {"srid": self.srid, "n": at_least},
        ).all()
        return [(r.lon, r.lat, int(r.n)) for r in rows]


# A key's incident, looked up through the unique index row by row: a scalar subquery is not
# turned into a join, which would read all of the organisation's incidents for every round.
_EXISTING = """(SELECT e.id FROM est.incident AS e
     WHERE e.organisation_id = :org AND e.source = s.source AND e.external_id = s.external_id)"""
_EXISTING_SQL = f"SELECT count(*) FROM incident_staging AS s WHERE {_EXISTING} IS NOT NULL"

_UPDATE_CHANGED = """
    UPDATE est.incident AS i SET
        category_code = s.category_code,
        occurred_from = s.occurred_from,
        occurred_to = s.occurred_to,
        geom = ST_SetSRID(ST_MakePoint(s.x, s.y), :srid),
        location_precision = s.location_precision,
        description = s.description,
        updated_at = now(),
        deleted_at = NULL
    FROM incident_staging AS s
    WHERE i.organisation_id = :org AND i.source = s.source AND i.external_id = s.external_id
      AND ((i.category_code, i.occurred_from, i.occurred_to, i.location_precision, i.description)
           IS DISTINCT FROM (s.category_code, s.occurred_from, s.occurred_to,
                             s.location_precision, s.description)
           OR NOT ST_Equals(i.geom, ST_SetSRID(ST_MakePoint(s.x, s.y), :srid))
           OR i.deleted_at IS NOT NULL)
    RETURNING i.id, s.row_no"""

_APPLY_SQL = """
WITH updated AS ({update}
), inserted AS (
    INSERT INTO est.incident (
        organisation_id, source, external_id, category_code, occurred_from, occurred_to, geom,
        location_precision, description, created_by, area_ids
    )
    SELECT :org, s.source, s.external_id, s.category_code, s.occurred_from, s.occurred_to,
           p.geom, s.location_precision, s.description, s.created_by,
           ARRAY(SELECT a.id FROM est.area AS a WHERE ST_Intersects(a.geom, p.geom) ORDER BY a.id)
    FROM incident_staging AS s
    CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(s.x, s.y), :srid) AS geom) AS p
    {only_new}
    RETURNING id, source, external_id, area_ids
), placed AS (
    INSERT INTO est.incident_area (incident_id, area_id, organisation_id)
    SELECT n.id, unnest(n.area_ids), :org FROM inserted AS n
)
SELECT 'updated' AS status, id, row_no FROM updated
UNION ALL
{created}
"""


@functools.cache
def _apply_sql(some_exist: bool, row_statuses: bool) -> str:
    """The statement that stores one round (at most one row per key).

    Its parts see the incidents as they were before it, so a key is either updated or
    inserted. When no staged key exists yet (a new import), the lookups and the UPDATE are
    left out. With row_statuses the created rows' numbers are returned, else only how many.
    """
    return _APPLY_SQL.format(
        update=_UPDATE_CHANGED
        if some_exist
        else "SELECT NULL::bigint AS id, NULL::bigint AS row_no WHERE false",
        only_new=f"WHERE {_EXISTING} IS NULL" if some_exist else "",
        created=(
            "SELECT 'created', NULL, s.row_no FROM inserted AS n JOIN incident_staging AS s "
            "ON s.source = n.source AND s.external_id = n.external_id"
            if row_statuses
            else "SELECT 'created', NULL, count(*) FROM inserted"
        ),
    )


def place_in_areas(conn: Connection, incident_ids: Sequence[int]) -> None:
    """(Re)compute which areas the given incidents lie in (incident_area and area_ids).

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
    conn.exec_driver_sql(sync_area_ids("SELECT id FROM placed"))
    conn.exec_driver_sql("DROP TABLE placed")

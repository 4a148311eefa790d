"""Jobs that show they are alive, and a deployment that says when it changed and whose weeks count.

- est.import_job gets heartbeat_at (a running import writes it every few seconds from its own
  connection, so a record whose process died is recognised by a stale heartbeat) and error
  (why a failed import failed). hotspot_run has had both from the start.
- est.deployment gets version, raised whenever what ingestion checks against changes (areas,
  the accepted extent, the categories): a process keeps the deployment in memory and compares
  this one number instead of reading areas and centroids on every request; and timezone, the
  IANA zone whose Monday 00:00 starts the weeks of everything the database aggregates (set from
  EST_TIMEZONE by `est db init`).
- est.grid_counts takes its week boundaries in that zone instead of a constant Stockholm.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GRID_COUNTS = """
CREATE OR REPLACE FUNCTION est.grid_counts(
    area_code text, cell_size_m integer, since timestamptz, until timestamptz,
    category_codes text[], k integer, base integer
) RETURNS TABLE (ix integer, iy integer, incident_count integer)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    DECLARE
        tz constant text := {timezone};
        week_from timestamptz := date_trunc('week', since AT TIME ZONE tz) AT TIME ZONE tz;
        week_to timestamptz := date_trunc('week', until AT TIME ZONE tz) AT TIME ZONE tz;
    BEGIN
        IF cell_size_m < 100 OR cell_size_m > 5000 THEN
            RAISE EXCEPTION 'cell_size_m must lie between 100 and 5000' USING ERRCODE = '22023';
        END IF;
        IF k < 1 OR base < 1 THEN
            RAISE EXCEPTION 'k and base must be positive' USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        WITH granted AS (
            SELECT a.id FROM est.area a
            WHERE a.code = area_code
              AND est.current_api_role() IN ('viewer', 'analyst', 'admin', 'reporter')
              AND EXISTS (
                  SELECT 1 FROM est.area_grant g
                  WHERE g.area_id = a.id AND g.organisation_id = est.current_org()
                    AND (g.expires_at IS NULL OR g.expires_at > now()))
        ), counted AS (
            SELECT floor(ST_X(i.geom) / cell_size_m)::integer AS cx,
                   floor(ST_Y(i.geom) / cell_size_m)::integer AS cy,
                   count(*) AS n
            FROM est.incident i
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN granted ON granted.id = ia.area_id
            JOIN est.category c ON c.code = i.category_code
            WHERE i.deleted_at IS NULL
              AND NOT c.sensitive
              AND i.location_precision IN ('exact', 'address', 'street')
              AND i.occurred_from >= week_from AND i.occurred_from < week_to
              AND (category_codes IS NULL OR i.category_code = ANY(category_codes))
            GROUP BY 1, 2
        )
        SELECT cx, cy, (round(n::numeric / base) * base)::integer
        FROM counted WHERE n >= k
        ORDER BY cy, cx;
    END
    $$;
"""

UPGRADE_SQL = """
ALTER TABLE est.import_job ADD COLUMN heartbeat_at timestamptz, ADD COLUMN error text;
ALTER TABLE est.deployment
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN timezone text NOT NULL DEFAULT 'Europe/Stockholm';
"""

DOWNGRADE_SQL = """
ALTER TABLE est.deployment DROP COLUMN timezone, DROP COLUMN version;
ALTER TABLE est.import_job DROP COLUMN error, DROP COLUMN heartbeat_at;
"""


def upgrade() -> None:
    """Add the heartbeat and error of imports, the deployment's version and time zone."""
    op.execute(UPGRADE_SQL)
    op.execute(GRID_COUNTS.format(timezone="(SELECT d.timezone FROM est.deployment d)"))


def downgrade() -> None:
    """Take them out again; the viewer grid counts Stockholm weeks as before."""
    op.execute(GRID_COUNTS.format(timezone="'Europe/Stockholm'"))
    op.execute(DOWNGRADE_SQL)

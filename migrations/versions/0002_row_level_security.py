"""Row-level security on the tables that hold raw incidents, and the audit log reader.

The service sets `est.org_id` and `est.role` with SET LOCAL at the start of every transaction
(app/api/deps.py). The policies below are the backstop behind the application's own filters:
an incident is visible to its reporting organisation (analysts, reporters; ingest clients may
read back what they wrote only as far as the database is concerned: the API gives them no
read route), and to analysts of organisations holding a `raw` grant on an area it lies in.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WRITERS = "('reporter', 'analyst', 'ingest')"

UPGRADE_SQL = f"""
CREATE FUNCTION est.current_org() RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('est.org_id', true), '')::integer $$;
CREATE FUNCTION est.current_api_role() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('est.role', true), '') $$;
COMMENT ON FUNCTION est.current_org() IS 'The organisation of the request, set with SET LOCAL.';
COMMENT ON FUNCTION est.current_api_role() IS 'The API role of the request, set with SET LOCAL.';

-- Areas an organisation's analysts may see raw incidents in.
CREATE FUNCTION est.raw_granted_areas() RETURNS SETOF integer
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT area_id FROM est.area_grant
        WHERE organisation_id = est.current_org() AND level = 'raw'
          AND (expires_at IS NULL OR expires_at > now())
          AND est.current_api_role() = 'analyst'
    $$;

ALTER TABLE est.incident ENABLE ROW LEVEL SECURITY;
ALTER TABLE est.incident FORCE ROW LEVEL SECURITY;
CREATE POLICY incident_read ON est.incident FOR SELECT TO est_app USING (
    (organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS})
    OR EXISTS (
        SELECT 1 FROM est.incident_area ia
        WHERE ia.incident_id = incident.id AND ia.area_id IN (SELECT est.raw_granted_areas())
    )
);
CREATE POLICY incident_insert ON est.incident FOR INSERT TO est_app WITH CHECK (
    organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS}
);
CREATE POLICY incident_update ON est.incident FOR UPDATE TO est_app
    USING (organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS})
    WITH CHECK (organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS});

ALTER TABLE est.incident_area ENABLE ROW LEVEL SECURITY;
ALTER TABLE est.incident_area FORCE ROW LEVEL SECURITY;
CREATE POLICY incident_area_read ON est.incident_area FOR SELECT TO est_app USING (
    (organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS})
    OR area_id IN (SELECT est.raw_granted_areas())
);
CREATE POLICY incident_area_insert ON est.incident_area FOR INSERT TO est_app WITH CHECK (
    organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS}
);
CREATE POLICY incident_area_delete ON est.incident_area FOR DELETE TO est_app USING (
    organisation_id = est.current_org() AND est.current_api_role() IN {WRITERS}
);

-- The owner and the system role see everything: the owner for migrations, the system role for
-- nightly jobs (it also has BYPASSRLS; the policy makes that explicit).
CREATE POLICY incident_system ON est.incident TO est_owner, est_system USING (true)
    WITH CHECK (true);
CREATE POLICY incident_area_system ON est.incident_area TO est_owner, est_system USING (true)
    WITH CHECK (true);

REVOKE DELETE ON est.incident FROM est_app;

-- Admins read their own organisation's audit trail through this function; the app role has
-- no SELECT on the table itself.
CREATE FUNCTION est.audit_entries(
    since timestamptz, until timestamptz, actor_filter text, action_filter text,
    max_rows integer, skip_rows integer
) RETURNS SETOF est.audit_log
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = est, pg_temp
    AS $$
        SELECT * FROM est.audit_log
        WHERE organisation_id = est.current_org() AND est.current_api_role() = 'admin'
          AND (since IS NULL OR at >= since) AND (until IS NULL OR at < until)
          AND (actor_filter IS NULL OR actor = actor_filter)
          AND (action_filter IS NULL OR action = action_filter)
        ORDER BY at DESC, id DESC
        LIMIT max_rows OFFSET skip_rows
    $$;
REVOKE ALL ON FUNCTION est.audit_entries FROM PUBLIC;
GRANT EXECUTE ON FUNCTION est.audit_entries TO est_app;

-- What viewers see of incidents: counts per grid cell of an area the caller's organisation
-- holds a grant on (either level), never coordinates. The rules are enforced here, inside the
-- database, so no caller of the app role can get around them:
--   * whole ISO weeks (Monday 00:00 Europe/Stockholm), whatever times are asked for;
--   * cells of 100 m to 5 km;
--   * categories flagged sensitive (and their children) never count;
--   * points that stand for an area (area_centroid, unknown) never count;
--   * counts below k are left out and the rest rounded to a multiple of base.
CREATE FUNCTION est.grid_counts(
    area_code text, cell_size_m integer, since timestamptz, until timestamptz,
    category_codes text[], k integer, base integer
) RETURNS TABLE (ix integer, iy integer, incident_count integer)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    DECLARE
        tz constant text := 'Europe/Stockholm';
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
REVOKE ALL ON FUNCTION est.grid_counts FROM PUBLIC;
GRANT EXECUTE ON FUNCTION est.grid_counts TO est_app;
"""

DOWNGRADE_SQL = """
DROP FUNCTION est.grid_counts;
DROP FUNCTION est.audit_entries;
GRANT DELETE ON est.incident TO est_app;
DROP POLICY incident_system ON est.incident;
DROP POLICY incident_area_system ON est.incident_area;
DROP POLICY incident_area_delete ON est.incident_area;
DROP POLICY incident_area_insert ON est.incident_area;
DROP POLICY incident_area_read ON est.incident_area;
ALTER TABLE est.incident_area NO FORCE ROW LEVEL SECURITY;
ALTER TABLE est.incident_area DISABLE ROW LEVEL SECURITY;
DROP POLICY incident_update ON est.incident;
DROP POLICY incident_insert ON est.incident;
DROP POLICY incident_read ON est.incident;
ALTER TABLE est.incident NO FORCE ROW LEVEL SECURITY;
ALTER TABLE est.incident DISABLE ROW LEVEL SECURITY;
DROP FUNCTION est.raw_granted_areas();
DROP FUNCTION est.current_api_role();
DROP FUNCTION est.current_org();
"""


def upgrade() -> None:
    """Turn row-level security on for raw incidents and add the audit reader."""
    op.execute(UPGRADE_SQL)


def downgrade() -> None:
    """Turn it off again."""
    op.execute(DOWNGRADE_SQL)

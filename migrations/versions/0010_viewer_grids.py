"""Quicker nightly runs: many viewer answers in one call (est.viewer_grids), record keys
without a subquery, cells written without a per-row key check.

A run's viewer layers and figures need est.viewer_grid's answer for a dozen weeks and for every
category group over half a dozen periods: over a hundred calls, each reading the period's
incidents and hashing their record keys again. est.viewer_grids gives the answers of a list of
periods crossed with a list of category groups in one call: it reads each incident of the
periods once, hashes its record key once, and then forms every answer exactly as
est.viewer_grid forms it (the same suppression, cell-key noise and rounding, per answer). It
tells nothing the single answers do not: each of its answers is one of them, and it is
granted to the system role only (the nightly run), under the same checks of the caller.

The five cell tables of a run (density, Gi*, emerging, forecast and viewer cells) lose their
foreign key to est.hotspot_run: a run writes hundreds of thousands of cells in one COPY, and the
key's check, one lookup per row, took two thirds of that time. Cells are only ever written by
the run itself, inside the transaction that made its row; deleting runs still deletes their
cells, through a statement trigger on est.hotspot_run.

est.record_key gives the same keys as before, as one expression PostgreSQL can inline into the
query that calls it, instead of a subquery it runs per incident: three times quicker.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

RECORD_KEY_SQL = """
CREATE OR REPLACE FUNCTION est.record_key(secret bytea, incident_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT ('x' || encode(substring(sha256(secret || int8send(incident_id)) FROM 1 FOR 2),
                              'hex'))::bit(16)::integer
    $$;
"""

RECORD_KEY_0006 = """
CREATE OR REPLACE FUNCTION est.record_key(secret bytea, incident_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT (get_byte(h, 0) << 8) | get_byte(h, 1)
        FROM (SELECT sha256(secret || int8send(incident_id)) AS h) AS hashed
    $$;
"""

CELL_TABLES = ("density_cell", "gistar_cell", "emerging_cell", "forecast_cell", "viewer_cell")

CELLS_SQL = """
CREATE FUNCTION est.delete_run_cells() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    BEGIN
        DELETE FROM est.density_cell c USING gone WHERE c.run_id = gone.id;
        DELETE FROM est.gistar_cell c USING gone WHERE c.run_id = gone.id;
        DELETE FROM est.emerging_cell c USING gone WHERE c.run_id = gone.id;
        DELETE FROM est.forecast_cell c USING gone WHERE c.run_id = gone.id;
        DELETE FROM est.viewer_cell c USING gone WHERE c.run_id = gone.id;
        RETURN NULL;
    END
    $$;
CREATE TRIGGER hotspot_run_cells_go_with_it AFTER DELETE ON est.hotspot_run
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION est.delete_run_cells();
"""

UPGRADE_SQL = """
CREATE FUNCTION est.viewer_grids(
    area_code text, cell_size_m integer, period_kinds text[], period_dates date[],
    group_codes text[]
) RETURNS TABLE (period_no integer, group_no integer, ix integer, iy integer, shown integer,
    period_start timestamptz, period_end timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    DECLARE
        p est.privacy;
        secret bytea := (SELECT s.secret FROM est.privacy_secret s WHERE s.id = 1);
        tz text := (SELECT d.timezone FROM est.deployment d WHERE d.id = 1);
        base_size integer;
        factor integer;
        missing text;
    BEGIN
        SELECT * INTO STRICT p FROM est.privacy WHERE id = 1;
        IF cell_size_m IS NULL OR NOT cell_size_m = ANY(p.cell_sizes) THEN
            RAISE EXCEPTION 'cell_size_m must be one of %', array_to_string(p.cell_sizes, ', ')
                USING ERRCODE = '22023';
        END IF;
        IF coalesce(cardinality(period_kinds), 0) = 0
           OR cardinality(period_kinds) IS DISTINCT FROM cardinality(period_dates) THEN
            RAISE EXCEPTION 'give as many period kinds as period dates, at least one'
                USING ERRCODE = '22023';
        END IF;
        IF coalesce(cardinality(group_codes), 0) = 0 THEN
            RAISE EXCEPTION 'give at least one category group (NULL: all categories)'
                USING ERRCODE = '22023';
        END IF;
        SELECT g INTO missing FROM unnest(group_codes) AS g
        WHERE g IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM est.category_group_member m WHERE m.group_code = g)
        LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'no category group %', missing USING ERRCODE = '22023';
        END IF;
        base_size := p.cell_sizes[1];
        factor := cell_size_m / base_size;
        RETURN QUERY
        WITH granted AS (
            SELECT a.id FROM est.area a
            WHERE a.code = area_code
              AND ((est.current_api_role() IN ('viewer', 'analyst', 'admin', 'reporter')
                    AND EXISTS (
                        SELECT 1 FROM est.area_grant g
                        WHERE g.area_id = a.id AND g.organisation_id = est.current_org()
                          AND (g.expires_at IS NULL OR g.expires_at > now())))
                   OR (est.current_api_role() = 'system'
                       AND pg_has_role(session_user, 'est_system', 'MEMBER')))
        ), periods AS MATERIALIZED (
            SELECT r.n::integer AS pn,
                   d.first_day::timestamp AT TIME ZONE tz AS t_from,
                   d.end_day::timestamp AT TIME ZONE tz AS t_to
            FROM unnest(period_kinds, period_dates) WITH ORDINALITY AS r(kind, day, n)
            CROSS JOIN LATERAL est.period_days(r.kind, r.day) AS d
        ), members AS MATERIALIZED (
            SELECT g.n::integer AS gn, m.category_code
            FROM unnest(group_codes) WITH ORDINALITY AS g(code, n)
            JOIN est.category_group_member m ON m.group_code = g.code
            UNION ALL
            SELECT g.n::integer, c.code
            FROM unnest(group_codes) WITH ORDINALITY AS g(code, n)
            CROSS JOIN est.category c
            WHERE g.code IS NULL
        ), points AS MATERIALIZED (
            SELECT pr.pn, i.category_code,
                   floor(ST_X(i.geom) / base_size)::integer AS bx,
                   floor(ST_Y(i.geom) / base_size)::integer AS b_y,
                   est.record_key(secret, i.id) AS k
            FROM est.incident i
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN granted ON granted.id = ia.area_id
            JOIN est.category c ON c.code = i.category_code
            JOIN periods pr ON i.occurred_from >= pr.t_from AND i.occurred_from < pr.t_to
            WHERE i.deleted_at IS NULL
              AND NOT c.sensitive
              AND i.location_precision IN ('exact', 'address', 'street')
        ), base AS (
            SELECT pt.pn, m.gn, pt.bx, pt.b_y, count(*)::integer AS n,
                   (sum(pt.k) % 65536)::integer AS cell_key
            FROM points pt JOIN members m ON m.category_code = pt.category_code
            GROUP BY 1, 2, 3, 4
        ), perturbed AS (
            SELECT b.pn, b.gn, b.bx, b.b_y,
                   b.n + est.cell_noise(b.cell_key, b.n, p.noise, p.noise_weights) AS v
            FROM base b WHERE b.n >= p.suppression_k
        ), cells AS (
            SELECT q.pn, q.gn,
                   floor(q.bx::numeric / factor)::integer AS cx,
                   floor(q.b_y::numeric / factor)::integer AS cy,
                   round(sum(q.v)::numeric / p.rounding_base)::integer * p.rounding_base AS s
            FROM perturbed q GROUP BY 1, 2, 3, 4
        )
        SELECT cells.pn, cells.gn, cells.cx, cells.cy, cells.s, pr.t_from, pr.t_to
        FROM cells JOIN periods pr ON pr.pn = cells.pn
        WHERE cells.s > 0
        ORDER BY cells.pn, cells.gn, cells.cy, cells.cx;
    END
    $$;

REVOKE ALL ON FUNCTION est.viewer_grids FROM PUBLIC;
GRANT EXECUTE ON FUNCTION est.viewer_grids TO est_system;
"""


def upgrade() -> None:
    """est.viewer_grids: the answers of several periods and groups in one call."""
    op.execute(RECORD_KEY_SQL)
    op.execute(UPGRADE_SQL)
    for table in CELL_TABLES:
        op.execute(f"ALTER TABLE est.{table} DROP CONSTRAINT fk_{table}_run_id_hotspot_run")
    op.execute(CELLS_SQL)


def downgrade() -> None:
    """Back to 0009: one answer per call."""
    op.execute("DROP TRIGGER hotspot_run_cells_go_with_it ON est.hotspot_run")
    op.execute("DROP FUNCTION est.delete_run_cells")
    for table in CELL_TABLES:
        op.execute(
            f"DELETE FROM est.{table} c WHERE NOT EXISTS "
            f"(SELECT 1 FROM est.hotspot_run r WHERE r.id = c.run_id)"
        )
        op.execute(
            f"ALTER TABLE est.{table} ADD CONSTRAINT fk_{table}_run_id_hotspot_run "
            "FOREIGN KEY (run_id) REFERENCES est.hotspot_run (id) ON DELETE CASCADE"
        )
    op.execute("DROP FUNCTION est.viewer_grids")
    op.execute(RECORD_KEY_0006)

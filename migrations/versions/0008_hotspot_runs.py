"""Hotspot runs inside the service: profiles with versions, the week's run, viewer layers.

- est.analysis_profile gains its owner (an organisation holding a grant on the area; NULL for
  the deployment's default profile of the area), a version, the viewer cell size and whether
  area_centroid incidents are left out; est.analysis_profile_version keeps every version as the
  document `est profiles import` reads, with who changed it and when.
- est.hotspot_run gains the period it computes (kind and label: 2026-W48, 2026-T3), whether it
  is provisional (the week was still open), the profile version, a digest of its input (so an
  unchanged week is not computed twice), when it was published, the figures and the notes of
  methods that could not run.
- est.hotspot gains its viewer version: the union of the viewer cells it covers and their
  shown count.
- New result tables: est.forecast_cell (ranked risk for the coming week), est.viewer_cell (every
  viewer layer, built from shown counts only), est.area_figure (counts per category group with
  their change tests, for analysts and, from shown counts, for viewers).
- est.viewer_grid also answers the nightly run (API role 'system', only for a session of the
  est_system role), which builds the viewer layers of areas no organisation has asked about.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE_SQL = """
ALTER TABLE est.analysis_profile
    ADD COLUMN organisation_id integer
        CONSTRAINT fk_analysis_profile_organisation_id_organisation
        REFERENCES est.organisation (id) ON DELETE CASCADE,
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD COLUMN cell_size_m integer NOT NULL DEFAULT 250,
    ADD COLUMN exclude_area_centroids boolean NOT NULL DEFAULT true,
    DROP CONSTRAINT uq_analysis_profile_area_id_name;
CREATE UNIQUE INDEX uq_analysis_profile_area_owner_name
    ON est.analysis_profile (area_id, coalesce(organisation_id, 0), name);
COMMENT ON COLUMN est.analysis_profile.organisation_id IS
    'The organisation that keeps the profile; NULL for the area''s default profile.';

CREATE TABLE est.analysis_profile_version (
    profile_id integer NOT NULL
        CONSTRAINT fk_analysis_profile_version_profile_id_analysis_profile
        REFERENCES est.analysis_profile (id) ON DELETE CASCADE,
    version integer NOT NULL,
    document jsonb NOT NULL,
    changed_by varchar(128) NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_analysis_profile_version PRIMARY KEY (profile_id, version)
);

ALTER TABLE est.hotspot_run
    ADD COLUMN period_kind varchar(16) NOT NULL DEFAULT 'week',
    ADD COLUMN period_label varchar(32) NOT NULL DEFAULT '',
    ADD COLUMN provisional boolean NOT NULL DEFAULT false,
    ADD COLUMN profile_version integer,
    ADD COLUMN input_digest varchar(64),
    ADD COLUMN published_at timestamptz,
    ADD COLUMN figures jsonb,
    ADD COLUMN notes jsonb;
CREATE INDEX ix_hotspot_run_area_profile_period
    ON est.hotspot_run (area_id, profile_id, period_kind, period_label);

ALTER TABLE est.hotspot
    ADD COLUMN viewer_geom geometry(MultiPolygon, {srid}),
    ADD COLUMN viewer_count integer;

CREATE TABLE est.forecast_cell (
    run_id bigint NOT NULL CONSTRAINT fk_forecast_cell_run_id_hotspot_run
        REFERENCES est.hotspot_run (id) ON DELETE CASCADE,
    cell_size_m integer NOT NULL,
    ix integer NOT NULL,
    iy integer NOT NULL,
    risk double precision NOT NULL,
    rank integer NOT NULL,
    flagged boolean NOT NULL,
    CONSTRAINT pk_forecast_cell PRIMARY KEY (run_id, cell_size_m, ix, iy)
);

CREATE TABLE est.viewer_cell (
    run_id bigint NOT NULL CONSTRAINT fk_viewer_cell_run_id_hotspot_run
        REFERENCES est.hotspot_run (id) ON DELETE CASCADE,
    layer varchar(16) NOT NULL,
    cell_size_m integer NOT NULL,
    ix integer NOT NULL,
    iy integer NOT NULL,
    shown integer,
    value double precision,
    bin smallint,
    pattern varchar(32),
    CONSTRAINT pk_viewer_cell PRIMARY KEY (run_id, layer, cell_size_m, ix, iy)
);
COMMENT ON TABLE est.viewer_cell IS
    'Viewer layers of a run (counts, density, gistar, emerging, forecast), from shown counts.';

CREATE TABLE est.area_figure (
    run_id bigint NOT NULL CONSTRAINT fk_area_figure_run_id_hotspot_run
        REFERENCES est.hotspot_run (id) ON DELETE CASCADE,
    audience varchar(8) NOT NULL CHECK (audience IN ('analyst', 'viewer')),
    group_code varchar(64) NOT NULL,
    this_week integer NOT NULL,
    last_week integer NOT NULL,
    same_week_last_year integer NOT NULL,
    mean_12_weeks double precision NOT NULL,
    tests jsonb NOT NULL,
    CONSTRAINT pk_area_figure PRIMARY KEY (run_id, audience, group_code)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON est.analysis_profile_version TO est_app, est_system;
GRANT SELECT ON est.forecast_cell, est.viewer_cell, est.area_figure TO est_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON est.forecast_cell, est.viewer_cell, est.area_figure
    TO est_system;
"""

DOWNGRADE_SQL = """
DROP TABLE est.area_figure, est.viewer_cell, est.forecast_cell, est.analysis_profile_version;
ALTER TABLE est.hotspot DROP COLUMN viewer_geom, DROP COLUMN viewer_count;
DROP INDEX est.ix_hotspot_run_area_profile_period;
ALTER TABLE est.hotspot_run
    DROP COLUMN period_kind, DROP COLUMN period_label, DROP COLUMN provisional,
    DROP COLUMN profile_version, DROP COLUMN input_digest, DROP COLUMN published_at,
    DROP COLUMN figures, DROP COLUMN notes;
DROP INDEX est.uq_analysis_profile_area_owner_name;
DELETE FROM est.analysis_profile a USING est.analysis_profile b
    WHERE a.area_id = b.area_id AND a.name = b.name AND a.id > b.id;
ALTER TABLE est.analysis_profile
    DROP COLUMN organisation_id, DROP COLUMN version, DROP COLUMN cell_size_m,
    DROP COLUMN exclude_area_centroids,
    ADD CONSTRAINT uq_analysis_profile_area_id_name UNIQUE (area_id, name);
"""

VIEWER_GRID_SQL = """
CREATE OR REPLACE FUNCTION est.viewer_grid(
    area_code text, cell_size_m integer, period_kind text, period_date date, group_code text
) RETURNS TABLE (ix integer, iy integer, shown integer, period_start timestamptz,
    period_end timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    DECLARE
        p est.privacy;
        secret bytea := (SELECT s.secret FROM est.privacy_secret s WHERE s.id = 1);
        tz text := (SELECT d.timezone FROM est.deployment d WHERE d.id = 1);
        days record;
        t_from timestamptz;
        t_to timestamptz;
        base_size integer;
        factor integer;
        codes text[];
    BEGIN
        SELECT * INTO STRICT p FROM est.privacy WHERE id = 1;
        IF cell_size_m IS NULL OR NOT cell_size_m = ANY(p.cell_sizes) THEN
            RAISE EXCEPTION 'cell_size_m must be one of %', array_to_string(p.cell_sizes, ', ')
                USING ERRCODE = '22023';
        END IF;
        base_size := p.cell_sizes[1];
        factor := cell_size_m / base_size;
        SELECT * INTO days FROM est.period_days(period_kind, period_date);
        t_from := days.first_day::timestamp AT TIME ZONE tz;
        t_to := days.end_day::timestamp AT TIME ZONE tz;
        IF group_code IS NOT NULL THEN
            codes := ARRAY(SELECT m.category_code FROM est.category_group_member m
                           WHERE m.group_code = viewer_grid.group_code);
            IF cardinality(codes) = 0 THEN
                RAISE EXCEPTION 'no category group %', group_code USING ERRCODE = '22023';
            END IF;
        END IF;
        RETURN QUERY
        WITH granted AS (
            SELECT a.id FROM est.area a
            WHERE a.code = area_code
              AND ((est.current_api_role() IN ('viewer', 'analyst', 'admin', 'reporter')
                    AND EXISTS (
                        SELECT 1 FROM est.area_grant g
                        WHERE g.area_id = a.id AND g.organisation_id = est.current_org()
                          AND (g.expires_at IS NULL OR g.expires_at > now())))
                   -- the nightly run builds the viewer layers of every area
                   OR (est.current_api_role() = 'system'
                       AND pg_has_role(session_user, 'est_system', 'MEMBER')))
        ), base AS MATERIALIZED (
            SELECT floor(ST_X(i.geom) / base_size)::integer AS bx,
                   floor(ST_Y(i.geom) / base_size)::integer AS b_y,
                   count(*)::integer AS n,
                   (sum(est.record_key(secret, i.id)) % 65536)::integer AS cell_key
            FROM est.incident i
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN granted ON granted.id = ia.area_id
            JOIN est.category c ON c.code = i.category_code
            WHERE i.deleted_at IS NULL
              AND NOT c.sensitive
              AND i.location_precision IN ('exact', 'address', 'street')
              AND i.occurred_from >= t_from AND i.occurred_from < t_to
              AND (codes IS NULL OR i.category_code = ANY(codes))
            GROUP BY 1, 2
        ), perturbed AS (
            SELECT b.bx, b.b_y, b.n + est.cell_noise(b.cell_key, b.n, p.noise, p.noise_weights) AS v
            FROM base b WHERE b.n >= p.suppression_k
        ), cells AS (
            SELECT floor(q.bx::numeric / factor)::integer AS cx,
                   floor(q.b_y::numeric / factor)::integer AS cy,
                   round(sum(q.v)::numeric / p.rounding_base)::integer * p.rounding_base AS s
            FROM perturbed q GROUP BY 1, 2
        )
        SELECT cells.cx, cells.cy, cells.s, t_from, t_to
        FROM cells WHERE cells.s > 0
        ORDER BY cells.cy, cells.cx;
    END
    $$;
"""

# What 0006 left, so that a downgrade gives the same database back.
VIEWER_GRID_0006 = """
CREATE OR REPLACE FUNCTION est.viewer_grid(
    area_code text, cell_size_m integer, period_kind text, period_date date, group_code text
) RETURNS TABLE (ix integer, iy integer, shown integer, period_start timestamptz,
    period_end timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    DECLARE
        p est.privacy;
        secret bytea := (SELECT s.secret FROM est.privacy_secret s WHERE s.id = 1);
        tz text := (SELECT d.timezone FROM est.deployment d WHERE d.id = 1);
        days record;
        t_from timestamptz;
        t_to timestamptz;
        base_size integer;
        factor integer;
        codes text[];
    BEGIN
        SELECT * INTO STRICT p FROM est.privacy WHERE id = 1;
        IF cell_size_m IS NULL OR NOT cell_size_m = ANY(p.cell_sizes) THEN
            RAISE EXCEPTION 'cell_size_m must be one of %', array_to_string(p.cell_sizes, ', ')
                USING ERRCODE = '22023';
        END IF;
        base_size := p.cell_sizes[1];
        factor := cell_size_m / base_size;
        SELECT * INTO days FROM est.period_days(period_kind, period_date);
        t_from := days.first_day::timestamp AT TIME ZONE tz;
        t_to := days.end_day::timestamp AT TIME ZONE tz;
        IF group_code IS NOT NULL THEN
            codes := ARRAY(SELECT m.category_code FROM est.category_group_member m
                           WHERE m.group_code = viewer_grid.group_code);
            IF cardinality(codes) = 0 THEN
                RAISE EXCEPTION 'no category group %', group_code USING ERRCODE = '22023';
            END IF;
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
        ), base AS MATERIALIZED (
            SELECT floor(ST_X(i.geom) / base_size)::integer AS bx,
                   floor(ST_Y(i.geom) / base_size)::integer AS b_y,
                   count(*)::integer AS n,
                   (sum(est.record_key(secret, i.id)) % 65536)::integer AS cell_key
            FROM est.incident i
            JOIN est.incident_area ia ON ia.incident_id = i.id
            JOIN granted ON granted.id = ia.area_id
            JOIN est.category c ON c.code = i.category_code
            WHERE i.deleted_at IS NULL
              AND NOT c.sensitive
              AND i.location_precision IN ('exact', 'address', 'street')
              AND i.occurred_from >= t_from AND i.occurred_from < t_to
              AND (codes IS NULL OR i.category_code = ANY(codes))
            GROUP BY 1, 2
        ), perturbed AS (
            SELECT b.bx, b.b_y, b.n + est.cell_noise(b.cell_key, b.n, p.noise, p.noise_weights) AS v
            FROM base b WHERE b.n >= p.suppression_k
        ), cells AS (
            SELECT floor(q.bx::numeric / factor)::integer AS cx,
                   floor(q.b_y::numeric / factor)::integer AS cy,
                   round(sum(q.v)::numeric / p.rounding_base)::integer * p.rounding_base AS s
            FROM perturbed q GROUP BY 1, 2
        )
        SELECT cells.cx, cells.cy, cells.s, t_from, t_to
        FROM cells WHERE cells.s > 0
        ORDER BY cells.cy, cells.cx;
    END
    $$;
"""


def _srid() -> int:
    srid = op.get_bind().scalar(text("SELECT Find_SRID('est', 'hotspot', 'geom')"))
    return int(srid)


def upgrade() -> None:
    """Profiles with owners and versions, run periods and digests, viewer and forecast layers."""
    op.execute(UPGRADE_SQL.format(srid=_srid()))
    op.execute(VIEWER_GRID_SQL)


def downgrade() -> None:
    """Back to 0007: the new tables and columns go, viewer_grid answers callers with grants."""
    op.execute(VIEWER_GRID_0006)
    op.execute(DOWNGRADE_SQL)

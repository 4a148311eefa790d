"""Viewer privacy that survives many questions, enforced inside the database.

What a viewer sees comes only through est.viewer_grid, a SECURITY DEFINER function whose rules
live in tables the app role cannot write:

- est.privacy (one row, written by the owner role only): the nested cell sizes viewers may ask
  for (each a multiple of the one before, on the storage CRS's origin), k, the rounding base,
  and the noise table of the cell-key perturbation.
- est.privacy_secret (one row, readable by the owner role only): the secret that derives every
  incident's record key, sha256(secret || id). A cell's key is the sum of its records' keys
  modulo 65536; its noise is looked up from the key and the count. The same records always get
  the same noise, and a cell whose records change gets new noise.

Counts are formed on the smallest cell size for one of a fixed set of periods (ISO week, aligned
4- and 12-week blocks, tertial, year, all in the deployment's time zone) and one named category
group or all categories; a cell below k is left out, the rest get their noise; larger cells are
the sums of the smaller cells inside them, then everything is rounded. An incident in a cell
that is suppressed therefore counts in no answer at all, whatever the size asked for.

est.grid_counts (which took k and the base from its caller) is dropped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE_SQL = """
CREATE FUNCTION est.sizes_are_nested(sizes integer[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT cardinality(sizes) >= 1 AND sizes[1] > 0 AND coalesce(bool_and(
            sizes[i] > sizes[i - 1] AND sizes[i] % sizes[i - 1] = 0), true)
        FROM generate_subscripts(sizes, 1) AS i WHERE i > 1
    $$;
CREATE FUNCTION est.max_abs(vals integer[]) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT max(abs(v)) FROM unnest(vals) AS v $$;

CREATE TABLE est.privacy (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    cell_sizes integer[] NOT NULL DEFAULT '{125,250,500,1000,2000}'
        CHECK (est.sizes_are_nested(cell_sizes)),
    suppression_k integer NOT NULL DEFAULT 5,
    rounding_base integer NOT NULL DEFAULT 5 CHECK (rounding_base >= 1),
    noise integer[] NOT NULL DEFAULT '{-2,-1,0,1,2}',
    noise_weights integer[] NOT NULL DEFAULT '{1,2,4,2,1}',
    CHECK (cardinality(noise) = cardinality(noise_weights) AND cardinality(noise) >= 1),
    CHECK (suppression_k > est.max_abs(noise))
);
COMMENT ON TABLE est.privacy IS
    'What viewers may ask and how their counts are protected; only the owner role writes it.';
INSERT INTO est.privacy DEFAULT VALUES;

CREATE TABLE est.privacy_secret (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    secret bytea NOT NULL CHECK (length(secret) >= 16)
);
COMMENT ON TABLE est.privacy_secret IS
    'Seeds the record keys of the cell-key perturbation; readable by the owner role only.';
INSERT INTO est.privacy_secret (secret)
    VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

REVOKE ALL ON est.privacy, est.privacy_secret FROM PUBLIC, est_app, est_system;
GRANT SELECT ON est.privacy TO est_app, est_system;

-- An incident's record key: 16 bits of sha256(secret || id), fixed for the incident's life.
CREATE FUNCTION est.record_key(secret bytea, incident_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT (get_byte(h, 0) << 8) | get_byte(h, 1)
        FROM (SELECT sha256(secret || int8send(incident_id)) AS h) AS hashed
    $$;

-- The noise of a cell: its key (sum of record keys mod 65536), mixed with its count, picks a
-- value from the noise table in proportion to the weights.
CREATE FUNCTION est.cell_noise(cell_key integer, n integer, noise integer[], weights integer[])
    RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT noise[i] FROM (
            SELECT i, sum(weights[i]) OVER (ORDER BY i) AS upto, sum(weights[i]) OVER () AS total
            FROM generate_subscripts(weights, 1) AS i
        ) AS w
        WHERE ((cell_key::bigint + n::bigint * 40503) % 65536) * w.total < w.upto * 65536
        ORDER BY i LIMIT 1
    $$;

-- The first and last day (exclusive) of an allowed period holding a date, or an error.
CREATE FUNCTION est.period_days(period_kind text, period_date date, OUT first_day date,
    OUT end_day date)
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
    DECLARE
        monday date := date_trunc('week', period_date)::date;
        weeks integer;
    BEGIN
        IF period_date IS NULL THEN
            RAISE EXCEPTION 'a period needs a date' USING ERRCODE = '22023';
        END IF;
        CASE period_kind
            WHEN 'week' THEN
                first_day := monday;
                end_day := monday + 7;
            WHEN '4weeks', '12weeks' THEN
                -- blocks of whole ISO weeks counted from Monday 5 January 1970
                weeks := CASE period_kind WHEN '4weeks' THEN 4 ELSE 12 END;
                first_day := date '1970-01-05'
                    + 7 * weeks * floor((monday - date '1970-01-05') / (7.0 * weeks))::integer;
                end_day := first_day + 7 * weeks;
            WHEN 'tertial' THEN
                first_day := make_date(extract(year FROM period_date)::integer,
                    4 * ((extract(month FROM period_date)::integer - 1) / 4) + 1, 1);
                end_day := (first_day + interval '4 months')::date;
            WHEN 'year' THEN
                first_day := date_trunc('year', period_date)::date;
                end_day := (first_day + interval '1 year')::date;
            ELSE
                RAISE EXCEPTION 'period must be one of week, 4weeks, 12weeks, tertial, year'
                    USING ERRCODE = '22023';
        END CASE;
    END
    $$;

-- What viewers see of incidents: shown counts per cell of an allowed size, for an allowed
-- period and a named category group (NULL: all categories), in an area the caller's
-- organisation holds a grant on. Sensitive categories and points that stand for an area never
-- count. Every parameter of the protection comes from est.privacy and est.privacy_secret.
CREATE FUNCTION est.viewer_grid(
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

REVOKE ALL ON FUNCTION est.viewer_grid, est.record_key, est.cell_noise FROM PUBLIC;
GRANT EXECUTE ON FUNCTION est.viewer_grid TO est_app, est_system;
DROP FUNCTION est.grid_counts;
"""

# What 0005 left, so that a downgrade gives the same database back.
GRID_COUNTS_0005 = """
CREATE FUNCTION est.grid_counts(
    area_code text, cell_size_m integer, since timestamptz, until timestamptz,
    category_codes text[], k integer, base integer
) RETURNS TABLE (ix integer, iy integer, incident_count integer)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = est, public, pg_temp
    AS $$
    DECLARE
        tz constant text := (SELECT d.timezone FROM est.deployment d);
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
DROP FUNCTION est.viewer_grid;
DROP FUNCTION est.period_days;
DROP FUNCTION est.cell_noise;
DROP FUNCTION est.record_key;
DROP TABLE est.privacy_secret;
DROP TABLE est.privacy;
DROP FUNCTION est.max_abs;
DROP FUNCTION est.sizes_are_nested;
"""


def upgrade() -> None:
    """The privacy tables, the perturbation and the one function viewers' counts come through."""
    op.execute(UPGRADE_SQL)


def downgrade() -> None:
    """Back to est.grid_counts with k and base from the caller."""
    op.execute(DOWNGRADE_SQL)
    op.execute(GRID_COUNTS_0005)

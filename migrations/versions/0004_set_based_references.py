"""Incident references checked once per statement instead of once per row.

A foreign key runs one lookup per inserted row: on a bulk import of 265,000 incidents the two
keys of est.incident (organisation, category) cost about 2 of 6 seconds, and the two keys of
est.incident_area (about two rows per Swedish incident: kommun and län) cost 1.3 of 1.75 seconds
for 118,000 rows. They are replaced by triggers with the same meaning, done set-wise:

- after each INSERT or UPDATE statement on est.incident or est.incident_area, the distinct
  parent rows referred to (organisations and categories; incidents and areas) are locked
  FOR KEY SHARE, as a foreign key locks its parent row, and any that does not exist raises
  foreign_key_violation (23503);
- deleting an organisation or a category, or changing its key, while an incident refers to it
  raises foreign_key_violation, as ON DELETE NO ACTION did; deleting (or truncating)
  incidents or areas deletes their incident_area rows, as ON DELETE CASCADE did, once per
  statement; changing the key of an incident or area that incident_area refers to is refused.

Together these keep the guarantee of the foreign keys, also under concurrency: a parent row
locked by an inserting transaction cannot be deleted before that transaction ends, and the
deleting trigger's query, run after the lock is granted, sees the committed rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE_SQL = """
ALTER TABLE est.incident
    DROP CONSTRAINT fk_incident_organisation_id_organisation,
    DROP CONSTRAINT fk_incident_category_code_category;

-- SECURITY DEFINER: FOR KEY SHARE needs UPDATE rights on the parent tables, which the
-- application roles do not have; the function only reads and locks.
CREATE FUNCTION est.incident_references_exist() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = est, pg_temp
    AS $$
    DECLARE
        missing text;
    BEGIN
        PERFORM 1 FROM est.organisation o
        WHERE o.id IN (SELECT DISTINCT organisation_id FROM new_rows)
        ORDER BY o.id FOR KEY SHARE;
        PERFORM 1 FROM est.category c
        WHERE c.code IN (SELECT DISTINCT category_code FROM new_rows)
        ORDER BY c.code FOR KEY SHARE;
        SELECT n.organisation_id::text INTO missing
        FROM (SELECT DISTINCT organisation_id FROM new_rows) n
        WHERE NOT EXISTS (SELECT 1 FROM est.organisation o WHERE o.id = n.organisation_id)
        LIMIT 1;
        IF FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('incident refers to organisation %s, which does not exist',
                                 missing);
        END IF;
        SELECT n.category_code INTO missing
        FROM (SELECT DISTINCT category_code FROM new_rows) n
        WHERE NOT EXISTS (SELECT 1 FROM est.category c WHERE c.code = n.category_code)
        LIMIT 1;
        IF FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('incident refers to category %L, which does not exist', missing);
        END IF;
        RETURN NULL;
    END
    $$;
REVOKE ALL ON FUNCTION est.incident_references_exist FROM PUBLIC;

CREATE TRIGGER incident_references_on_insert AFTER INSERT ON est.incident
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_references_exist();
CREATE TRIGGER incident_references_on_update AFTER UPDATE ON est.incident
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_references_exist();

CREATE FUNCTION est.incident_parent_unreferenced() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = est, pg_temp
    AS $$
    BEGIN
        IF TG_TABLE_NAME = 'organisation' THEN
            IF EXISTS (SELECT 1 FROM est.incident WHERE organisation_id = OLD.id) THEN
                RAISE foreign_key_violation USING MESSAGE = format(
                    'organisation %s still has incidents', OLD.id);
            END IF;
        ELSIF EXISTS (SELECT 1 FROM est.incident WHERE category_code = OLD.code) THEN
            RAISE foreign_key_violation USING MESSAGE = format(
                'category %L is still used by incidents', OLD.code);
        END IF;
        RETURN OLD;
    END
    $$;
REVOKE ALL ON FUNCTION est.incident_parent_unreferenced FROM PUBLIC;

CREATE TRIGGER organisation_unreferenced_on_delete BEFORE DELETE ON est.organisation
    FOR EACH ROW EXECUTE FUNCTION est.incident_parent_unreferenced();
CREATE TRIGGER organisation_unreferenced_on_rekey BEFORE UPDATE OF id ON est.organisation
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION est.incident_parent_unreferenced();
CREATE TRIGGER category_unreferenced_on_delete BEFORE DELETE ON est.category
    FOR EACH ROW EXECUTE FUNCTION est.incident_parent_unreferenced();
CREATE TRIGGER category_unreferenced_on_rekey BEFORE UPDATE OF code ON est.category
    FOR EACH ROW WHEN (OLD.code IS DISTINCT FROM NEW.code)
    EXECUTE FUNCTION est.incident_parent_unreferenced();

ALTER TABLE est.incident_area
    DROP CONSTRAINT fk_incident_area_incident_id_incident,
    DROP CONSTRAINT fk_incident_area_area_id_area;

CREATE FUNCTION est.incident_area_references_exist() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = est, pg_temp
    AS $$
    DECLARE
        wanted bigint;
        found bigint;
    BEGIN
        SELECT count(DISTINCT incident_id) INTO wanted FROM new_rows;
        SELECT count(*) INTO found FROM (
            SELECT 1 FROM est.incident i
            WHERE i.id IN (SELECT incident_id FROM new_rows)
            ORDER BY i.id FOR KEY SHARE) locked;
        IF found < wanted THEN
            RAISE foreign_key_violation USING MESSAGE = format(
                'incident_area refers to %s incidents that do not exist', wanted - found);
        END IF;
        SELECT count(DISTINCT area_id) INTO wanted FROM new_rows;
        SELECT count(*) INTO found FROM (
            SELECT 1 FROM est.area a
            WHERE a.id IN (SELECT area_id FROM new_rows)
            ORDER BY a.id FOR KEY SHARE) locked;
        IF found < wanted THEN
            RAISE foreign_key_violation USING MESSAGE = format(
                'incident_area refers to %s areas that do not exist', wanted - found);
        END IF;
        RETURN NULL;
    END
    $$;
REVOKE ALL ON FUNCTION est.incident_area_references_exist FROM PUBLIC;

CREATE TRIGGER incident_area_references_on_insert AFTER INSERT ON est.incident_area
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_area_references_exist();
CREATE TRIGGER incident_area_references_on_update AFTER UPDATE ON est.incident_area
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_area_references_exist();

-- ON DELETE CASCADE, per statement; TRUNCATE of a parent empties incident_area as well.
CREATE FUNCTION est.incident_area_cascade() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = est, pg_temp
    AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            TRUNCATE est.incident_area;
        ELSIF TG_TABLE_NAME = 'incident' THEN
            DELETE FROM est.incident_area WHERE incident_id IN (SELECT id FROM old_rows);
        ELSE
            DELETE FROM est.incident_area WHERE area_id IN (SELECT id FROM old_rows);
        END IF;
        RETURN NULL;
    END
    $$;
REVOKE ALL ON FUNCTION est.incident_area_cascade FROM PUBLIC;

CREATE TRIGGER incident_area_cascade_on_delete AFTER DELETE ON est.incident
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_area_cascade();
CREATE TRIGGER incident_area_cascade_on_truncate AFTER TRUNCATE ON est.incident
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_area_cascade();
CREATE TRIGGER incident_area_cascade_on_delete AFTER DELETE ON est.area
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION est.incident_area_cascade();

CREATE FUNCTION est.incident_area_parent_unchanged() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = est, pg_temp
    AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM est.incident_area
                   WHERE CASE TG_TABLE_NAME WHEN 'incident' THEN incident_id ELSE area_id END
                         = OLD.id) THEN
            RAISE foreign_key_violation USING MESSAGE = format(
                '%s %s is referred to by incident_area: its id cannot change', TG_TABLE_NAME,
                OLD.id);
        END IF;
        RETURN NEW;
    END
    $$;
REVOKE ALL ON FUNCTION est.incident_area_parent_unchanged FROM PUBLIC;

CREATE TRIGGER incident_area_parent_on_rekey BEFORE UPDATE OF id ON est.incident
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION est.incident_area_parent_unchanged();
CREATE TRIGGER incident_area_parent_on_rekey BEFORE UPDATE OF id ON est.area
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION est.incident_area_parent_unchanged();
"""

DOWNGRADE_SQL = """
DROP TRIGGER incident_area_parent_on_rekey ON est.area;
DROP TRIGGER incident_area_parent_on_rekey ON est.incident;
DROP FUNCTION est.incident_area_parent_unchanged();
DROP TRIGGER incident_area_cascade_on_delete ON est.area;
DROP TRIGGER incident_area_cascade_on_truncate ON est.incident;
DROP TRIGGER incident_area_cascade_on_delete ON est.incident;
DROP FUNCTION est.incident_area_cascade();
DROP TRIGGER incident_area_references_on_update ON est.incident_area;
DROP TRIGGER incident_area_references_on_insert ON est.incident_area;
DROP FUNCTION est.incident_area_references_exist();
ALTER TABLE est.incident_area
    ADD CONSTRAINT fk_incident_area_incident_id_incident
        FOREIGN KEY (incident_id) REFERENCES est.incident (id) ON DELETE CASCADE,
    ADD CONSTRAINT fk_incident_area_area_id_area
        FOREIGN KEY (area_id) REFERENCES est.area (id) ON DELETE CASCADE;
DROP TRIGGER category_unreferenced_on_rekey ON est.category;
DROP TRIGGER category_unreferenced_on_delete ON est.category;
DROP TRIGGER organisation_unreferenced_on_rekey ON est.organisation;
DROP TRIGGER organisation_unreferenced_on_delete ON est.organisation;
DROP FUNCTION est.incident_parent_unreferenced();
DROP TRIGGER incident_references_on_update ON est.incident;
DROP TRIGGER incident_references_on_insert ON est.incident;
DROP FUNCTION est.incident_references_exist();
ALTER TABLE est.incident
    ADD CONSTRAINT fk_incident_organisation_id_organisation
        FOREIGN KEY (organisation_id) REFERENCES est.organisation (id),
    ADD CONSTRAINT fk_incident_category_code_category
        FOREIGN KEY (category_code) REFERENCES est.category (code);
"""


def upgrade() -> None:
    """Replace the incident foreign keys by set-based checks."""
    op.execute(UPGRADE_SQL)


def downgrade() -> None:
    """Restore the foreign keys."""
    op.execute(DOWNGRADE_SQL)

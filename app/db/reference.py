"""Reference data every deployment shares: the category taxonomy and its groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from app.core.taxonomy import Taxonomy
from app.db.deployment import mark_changed


def sync_taxonomy(conn: Connection, taxonomy: Taxonomy) -> int:
    """Upsert the shipped categories and groups; return how many categories there are.

    Categories are never deleted here (incidents refer to them); a category that left the
    shipped file stays in the database until an admin removes it.
    """
    conn.execute(
        text("""
            INSERT INTO est.category AS c
                (code, parent_code, label_sv, label_en, sensitive, description, sort_order)
            VALUES (:code, :parent_code, :sv, :en, :sensitive, :description, :sort_order)
            ON CONFLICT (code) DO UPDATE SET
                parent_code = EXCLUDED.parent_code, label_sv = EXCLUDED.label_sv,
                label_en = EXCLUDED.label_en, sensitive = EXCLUDED.sensitive,
                description = EXCLUDED.description, sort_order = EXCLUDED.sort_order
        """),
        [
            {
                "code": c.code,
                "parent_code": c.parent_code,
                "sv": c.sv,
                "en": c.en,
                "sensitive": taxonomy.is_sensitive(c.code),
                "description": c.description,
                "sort_order": i,
            }
            for i, c in enumerate(taxonomy.categories)
        ],
    )
    conn.execute(
        text("""
            INSERT INTO est.category_group AS g (code, label_sv, label_en)
            VALUES (:code, :sv, :en)
            ON CONFLICT (code) DO UPDATE SET label_sv = EXCLUDED.label_sv,
                                             label_en = EXCLUDED.label_en
        """),
        [{"code": g.code, "sv": g.sv, "en": g.en} for g in taxonomy.groups],
    )
    conn.execute(
        text("DELETE FROM est.category_group_member WHERE group_code = ANY(:codes)"),
        {"codes": [g.code for g in taxonomy.groups]},
    )
    conn.execute(
        text("INSERT INTO est.category_group_member (group_code, category_code) VALUES (:g, :c)"),
        [{"g": g.code, "c": code} for g in taxonomy.groups for code in g.codes],
    )
    mark_changed(conn)
    return len(taxonomy.categories)


def group_categories(conn: Connection, group: str) -> list[str]:
    """The category codes of a category group (empty when there is no such group)."""
    return list(
        conn.scalars(
            text("SELECT category_code FROM est.category_group_member WHERE group_code = :g"),
            {"g": group},
        )
    )


def list_categories(conn: Connection) -> list[dict[str, Any]]:
    """Every category of the database by code, with its labels, flag and groups (codes)."""
    rows = conn.execute(
        text("""
            SELECT c.code, c.parent_code, c.label_sv, c.label_en, c.sensitive, c.description,
                   ARRAY(SELECT m.group_code FROM est.category_group_member m
                         WHERE m.category_code = c.code ORDER BY m.group_code) AS groups
            FROM est.category c
            ORDER BY c.code COLLATE "C"
        """)
    )
    return [dict(r._mapping) for r in rows]

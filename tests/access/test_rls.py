"""Row-level security: the database itself keeps organisations apart, and bbox queries stay fast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError

from app.access.admin import organisation_id
from tests.conftest import World

RAW_TABLES = ("incident", "incident_area")


@contextmanager
def as_caller(engine: Engine, organisation: str, role: str) -> Iterator[Connection]:
    """A transaction of the app role scoped as the service scopes a request."""
    with engine.connect() as conn:
        org = organisation_id(conn, organisation)
        conn.execute(
            text("SELECT set_config('est.org_id', :o, true), set_config('est.role', :r, true)"),
            {"o": str(org), "r": role},
        )
        yield conn
        conn.rollback()


def test_every_table_with_raw_incidents_forces_row_level_security(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE relnamespace = 'est'::regnamespace AND relname = ANY(:t)"
            ),
            {"t": list(RAW_TABLES)},
        ).all()
        policies = conn.execute(
            text(
                "SELECT tablename, cmd FROM pg_policies WHERE schemaname = 'est' "
                "AND 'est_app' = ANY(roles)"
            )
        ).all()
    assert {(r.relname, r.relrowsecurity, r.relforcerowsecurity) for r in rows} == {
        (t, True, True) for t in RAW_TABLES
    }
    assert {(p.tablename, p.cmd) for p in policies} >= {
        ("incident", "SELECT"),
        ("incident", "INSERT"),
        ("incident", "UPDATE"),
        ("incident_area", "SELECT"),
        ("incident_area", "INSERT"),
        ("incident_area", "DELETE"),
    }


def test_without_a_scope_the_app_role_sees_no_incident(app_engine: Engine, world: World) -> None:
    with app_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM est.incident")) == 0
        assert conn.scalar(text("SELECT count(*) FROM est.incident_area")) == 0


def _visible_ids(conn: Connection) -> set[int]:
    return set(conn.scalars(text("SELECT id FROM est.incident")))


@pytest.mark.parametrize(
    ("organisation", "role", "sees"),
    [
        ("kommun-1285", "analyst", {"kommun-1285"}),
        ("kommun-1285", "reporter", {"kommun-1285"}),
        ("kommun-1285", "viewer", set()),
        ("kommun-1285", "admin", set()),
        ("kommun-1214", "analyst", {"kommun-1214"}),  # only an aggregate grant on 1285
        ("lpo-test", "analyst", {"kommun-1214"}),  # a raw grant on 1214
        ("lpo-test", "viewer", set()),
        ("utan-grant", "analyst", set()),
    ],
)
def test_the_database_shows_each_caller_only_what_it_may_see(
    app_engine: Engine, world: World, organisation: str, role: str, sees: set[str]
) -> None:
    expected = set().union(*(set(world.incident_ids[o]) for o in sees)) if sees else set()
    with as_caller(app_engine, organisation, role) as conn:
        assert _visible_ids(conn) & set().union(*map(set, world.incident_ids.values())) == expected


def test_the_app_role_cannot_write_for_another_organisation(
    app_engine: Engine, world: World
) -> None:
    with as_caller(app_engine, "utan-grant", "reporter") as conn:
        other = conn.scalar(text("SELECT id FROM est.organisation WHERE code = 'kommun-1285'"))
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(
                text("""
                INSERT INTO est.incident (organisation_id, source, external_id, category_code,
                    occurred_from, geom, location_precision)
                VALUES (:o, 'x', 'x', 'ovrigt', now(), ST_SetSRID(ST_MakePoint(393760, 6189485),
                    3006), 'exact')
            """),
                {"o": other},
            )
    with as_caller(app_engine, "utan-grant", "reporter") as conn:
        changed = conn.execute(
            text("UPDATE est.incident SET description = 'x' WHERE id = ANY(:ids)"),
            {"ids": world.incident_ids["kommun-1285"]},
        ).rowcount
    assert changed == 0


def test_the_app_role_cannot_delete_incidents_at_all(app_engine: Engine, world: World) -> None:
    with (
        as_caller(app_engine, "kommun-1285", "analyst") as conn,
        pytest.raises(ProgrammingError, match="permission denied"),
    ):
        conn.execute(text("DELETE FROM est.incident"))


def test_bbox_queries_use_the_spatial_index_under_row_level_security(
    app_engine: Engine, world: World
) -> None:
    with as_caller(app_engine, "kommun-1285", "analyst") as conn:
        # Few rows in the test database: forbid the sequential scan so the plan shows whether
        # the index may be used at all (it may not when && is not LEAKPROOF).
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            conn.scalars(
                text("""
            EXPLAIN SELECT id FROM est.incident i
            WHERE i.geom && ST_MakeEnvelope(393000, 6189000, 394500, 6190000, 3006)
        """)
            )
        )
    assert "ix_incident_geom" in plan
    assert "Index Cond: (geom && " in plan


def test_a_page_reads_the_time_index_and_never_every_granted_incident(
    app_engine: Engine, world: World
) -> None:
    from app.access.auth import Principal
    from app.access.visibility import IncidentFilter, page_query
    from app.core.vocabulary import Role

    with as_caller(app_engine, "kommun-1285", "analyst") as conn:
        org = organisation_id(conn, "kommun-1285")
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_sort = off"))
        # the page query itself, as the API sends it, under EXPLAIN
        principal = Principal("t", org, "kommun-1285", Role.analyst)
        sql, params = page_query(principal, IncidentFilter(), 1000, None)
        captured = list(conn.scalars(text(f"EXPLAIN {sql}"), params))
    plan = "\n".join(captured)
    assert "ix_incident_occurred_from_id" in plan
    # neither rule hashes all incident_area rows of the granted areas before the first row
    assert "incident_area" not in plan


def test_area_ids_agree_with_incident_area_also_for_a_union_made_later(
    system_engine: Engine, world: World
) -> None:
    from app.db.areas import create_union_area

    disagree = """
        SELECT count(*) FROM est.incident i WHERE i.area_ids <> coalesce(
            (SELECT array_agg(ia.area_id ORDER BY ia.area_id)
             FROM est.incident_area ia WHERE ia.incident_id = i.id), '{}')
    """
    with system_engine.begin() as conn:
        create_union_area(conn, "lpo-later", "Made after the incidents", ["1285", "1214"])
        union_id = conn.scalar(text("SELECT id FROM est.area WHERE code = 'lpo-later'"))
        members = conn.scalar(
            text("SELECT count(*) FROM est.incident WHERE :u = ANY(area_ids)"), {"u": union_id}
        )
        in_parts = conn.scalar(
            text(
                "SELECT count(DISTINCT incident_id) FROM est.incident_area ia "
                "JOIN est.area a ON a.id = ia.area_id WHERE a.code IN ('1285', '1214')"
            )
        )
        assert members == in_parts > 0
        assert conn.scalar(text(disagree)) == 0
        conn.rollback()

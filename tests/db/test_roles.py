"""The three database roles exist with exactly the rights DESIGN.md gives them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from app.settings import APP_ROLE, OWNER_ROLE, SYSTEM_ROLE


def _role(engine: Engine, name: str) -> dict[str, bool]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin "
                "FROM pg_roles WHERE rolname = :n"
            ),
            {"n": name},
        ).one()
    return dict(row._mapping)


def test_roles_exist_and_only_the_system_role_bypasses_row_level_security(
    app_engine: Engine,
) -> None:
    owner, app, system = (_role(app_engine, r) for r in (OWNER_ROLE, APP_ROLE, SYSTEM_ROLE))
    for attrs in (owner, app, system):
        assert attrs["rolcanlogin"] and not attrs["rolsuper"] and not attrs["rolcreaterole"]
    assert not owner["rolbypassrls"]
    assert not app["rolbypassrls"]
    assert system["rolbypassrls"]


def test_app_role_owns_nothing(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        owned = conn.scalar(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = :r"
            ),
            {"r": APP_ROLE},
        )
        tables_of_owner = conn.scalar(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = 'est' AND tableowner = :r"),
            {"r": OWNER_ROLE},
        )
    assert owned == 0
    assert tables_of_owner >= 22


def test_app_role_may_append_to_the_audit_log_but_not_read_it(app_engine: Engine) -> None:
    with app_engine.begin() as conn:
        conn.execute(text("INSERT INTO est.audit_log (action) VALUES ('test')"))
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.connect() as conn:
        conn.execute(text("SELECT * FROM est.audit_log"))
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
        conn.execute(text("DELETE FROM est.audit_log"))


def test_system_role_reads_the_audit_log(system_engine: Engine) -> None:
    with system_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM est.audit_log")) is not None


def test_app_role_cannot_change_the_deployment_or_the_schema(app_engine: Engine) -> None:
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
        conn.execute(text("UPDATE est.deployment SET srid = 4326"))
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
        conn.execute(text("CREATE TABLE est.intruder (id int)"))
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
        conn.execute(text("CREATE TABLE public.intruder (id int)"))
    with pytest.raises(ProgrammingError, match="permission denied"), app_engine.begin() as conn:
        conn.execute(text("UPDATE est.alembic_version SET version_num = 'x'"))


def test_app_role_reads_and_writes_incidents(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        privileges = {
            p: conn.scalar(
                text("SELECT has_table_privilege(:r, 'est.incident', :p)"), {"r": APP_ROLE, "p": p}
            )
            for p in ("SELECT", "INSERT", "UPDATE")
        }
    assert all(privileges.values())

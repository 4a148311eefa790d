"""The migrations build the whole data model, in the chosen CRS, and take it down again."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import Geometry
from sqlalchemy import create_engine, inspect, pool, text

from app.db import migrate
from app.db.bootstrap import InitError, init_database
from app.db.models import SCHEMA, Base
from app.settings import OWNER_ROLE, Settings

DESIGN_TABLES = {
    "deployment",
    "organisation",
    "area",
    "area_version",
    "area_component",
    "area_grant",
    "category",
    "category_group",
    "category_group_member",
    "incident",
    "incident_area",
    "analysis_profile",
    "hotspot_run",
    "hotspot",
    "density_cell",
    "gistar_cell",
    "emerging_cell",
    "layer_current",
    "action",
    "area_indicator",
    "api_key",
    "audit_log",
}
ALL_TABLES = DESIGN_TABLES | {
    "import_job",
    "idempotency_key",
    "privacy",
    "privacy_secret",
    "analysis_profile_version",
    "forecast_cell",
    "viewer_cell",
    "area_figure",
    "nightly_claim",
    "alert_subscription",
    "alert_event",
    "alert_delivery",
    "alert_attempt",
    "report_text",
    "hotspot_name",
    "report_mailing",
    "report_dispatch",
    "web_session",
    "web_login",
}


def _tables(settings: Settings) -> set[str]:
    engine = create_engine(settings.role_url(OWNER_ROLE), poolclass=pool.NullPool)
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names(schema=SCHEMA))
    engine.dispose()
    return names - {"alembic_version"}


def test_upgrade_to_head_creates_every_table_of_the_design(fresh_database: Settings) -> None:
    init_database(fresh_database, 3006)
    assert _tables(fresh_database) == ALL_TABLES


def test_downgrade_to_base_removes_everything_and_upgrade_works_again(
    fresh_database: Settings,
) -> None:
    init_database(fresh_database, 3006)
    owner = create_engine(fresh_database.role_url(OWNER_ROLE), poolclass=pool.NullPool)
    migrate.downgrade(owner, "base")
    assert _tables(fresh_database) == set()
    with owner.connect() as conn:
        assert migrate.current_revision(conn) is None
        types = conn.scalar(
            text(
                "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'est' AND t.typtype = 'e'"
            )
        )
    assert types == 0
    migrate.upgrade(owner, srid=3006)
    assert _tables(fresh_database) == ALL_TABLES
    owner.dispose()


@pytest.mark.parametrize("srid", [3006, 26916])
def test_every_geometry_column_uses_the_srid_chosen_at_init(
    fresh_database: Settings, srid: int
) -> None:
    init_database(fresh_database, srid)
    engine = create_engine(fresh_database.role_url(OWNER_ROLE), poolclass=pool.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT f_table_name, srid FROM geometry_columns WHERE f_table_schema = 'est'")
        ).all()
        stored = conn.scalar(text("SELECT srid FROM est.deployment"))
    engine.dispose()
    assert stored == srid
    assert {r.f_table_name for r in rows} >= {"incident", "area", "hotspot", "action"}
    assert {r.srid for r in rows} == {srid}


def test_init_refuses_to_change_the_srid_of_an_initialised_database(
    fresh_database: Settings,
) -> None:
    init_database(fresh_database, 3006)
    with pytest.raises(InitError, match="EPSG:3006"):
        init_database(fresh_database, 26916)


def test_init_refuses_a_crs_that_is_not_projected_in_metres(fresh_database: Settings) -> None:
    with pytest.raises(InitError, match="not a projected CRS in metres"):
        init_database(fresh_database, 4326)
    with pytest.raises(InitError, match="not a projected CRS in metres"):
        init_database(fresh_database, 3435)  # Illinois State Plane, US feet


def _geometry_noise(diff: Any) -> bool:
    """Differences alembic reports for geometry columns that are not real differences.

    The models leave the SRID open (the deployment fixes it) and the GiST indexes are created
    by the migration only.
    """
    if isinstance(diff, tuple) and diff[0] == "remove_index":
        return any(isinstance(c.type, Geometry) for c in diff[1].columns)
    if isinstance(diff, list) and diff and diff[0][0] == "modify_type":
        _, _, _, _, _, old, new = diff[0]
        return (
            isinstance(old, Geometry)
            and isinstance(new, Geometry)
            and old.geometry_type == new.geometry_type
        )
    return False


def test_models_agree_with_the_migrated_schema(settings: Settings) -> None:
    # The admin login has the default search path; with est first on it (as the roles have)
    # alembic would take "est" for the default schema and see every table as new.
    engine = create_engine(settings.admin_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "version_table_schema": SCHEMA,
                "compare_type": True,
                "include_name": lambda name, type_, parent: (
                    name == SCHEMA if type_ == "schema" else True
                ),
            },
        )
        diffs = [d for d in compare_metadata(context, Base.metadata) if not _geometry_noise(d)]
    engine.dispose()
    assert diffs == []

"""Alembic, driven from code: upgrade, downgrade and the revision a database is at."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from app.db import SCHEMA

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(connection: Connection | None = None, srid: int | None = None) -> Config:
    """Return an Alembic configuration for our migrations, bound to a connection if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["srid"] = srid
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """Return the newest revision of the migrations shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database is at, or None for an empty database."""
    context = MigrationContext.configure(connection, opts={"version_table_schema": SCHEMA})
    return context.get_current_revision()


def stored_revision(connection: Connection) -> str | None:
    """The revision in the version table, read with one cheap query (no migration context)."""
    table = f"{SCHEMA}.alembic_version"
    if connection.scalar(text("SELECT to_regclass(:t)"), {"t": table}) is None:
        return None
    return connection.scalar(text(f"SELECT version_num FROM {table}"))


def upgrade(owner_engine: Engine, revision: str = "head", srid: int | None = None) -> None:
    """Upgrade the database to revision, as the owner role (srid is needed on the first run)."""
    with owner_engine.begin() as connection:
        command.upgrade(alembic_config(connection, srid), revision)


def downgrade(owner_engine: Engine, revision: str) -> None:
    """Downgrade the database to revision ("base" empties it), as the owner role."""
    with owner_engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)

"""Alembic environment: migrations run as the owner role, in the `est` schema."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from app.db.models import SCHEMA, Base
from app.settings import OWNER_ROLE, get_settings

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run the migrations on the connection handed in by `est db`, or on the owner's URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(get_settings().role_url(OWNER_ROLE), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        version_table_schema=SCHEMA,
        include_schemas=False,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported: the SRID is read at run time")
run_migrations_online()

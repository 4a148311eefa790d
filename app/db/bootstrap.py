"""`est db init`: the database, PostGIS, the three roles, the schema, the storage CRS."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Connection, create_engine, pool, text

from app.core.errors import InvalidInput
from app.db import SCHEMA, migrate
from app.db.deployment import refresh_accepted_area, set_disclosure_control, set_timezone
from app.settings import APP_ROLE, OWNER_ROLE, SYSTEM_ROLE, Settings
from geo.crs import CrsError, check_epsg_metric

# Role attributes: nobody but the system role may bypass row-level security, and the app role
# does not even inherit privileges from roles it might be granted by mistake.
ROLE_ATTRIBUTES = {
    OWNER_ROLE: "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
    APP_ROLE: "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT",
    SYSTEM_ROLE: "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS",
}


class InitError(InvalidInput):
    """The database cannot be initialised as asked."""


@dataclass(frozen=True)
class Extent:
    """A box in the storage CRS: incidents outside it are refused."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def parse(cls, value: str) -> Extent:
        """Parse "minx,miny,maxx,maxy"."""
        try:
            minx, miny, maxx, maxy = (float(v) for v in value.split(","))
        except ValueError:
            raise InitError(
                f"extent must be minx,miny,maxx,maxy in metres, got {value!r}"
            ) from None
        if not (minx < maxx and miny < maxy):
            raise InitError(f"extent must have minx < maxx and miny < maxy, got {value!r}")
        return cls(minx, miny, maxx, maxy)


def check_srid(srid: int) -> None:
    """Refuse a storage SRID that is unknown or not projected in metres."""
    try:
        check_epsg_metric(srid)
    except CrsError as exc:
        raise InitError(str(exc)) from None


def init_database(settings: Settings, srid: int = 3006, extent: Extent | None = None) -> str:
    """Create what the deployment needs and migrate it to head; return what was done.

    Safe to run again: existing pieces are kept, and a second run with another SRID is refused.
    """
    check_srid(srid)
    admin_url = settings.admin_url()
    database = admin_url.database
    if not database:
        raise InitError("EST_DATABASE_URL names no database")
    server = create_engine(admin_url.set(database="postgres"), poolclass=pool.NullPool)
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database})
        if not exists:
            conn.exec_driver_sql(f"CREATE DATABASE {_ident(database)}")
    server.dispose()

    admin = create_engine(admin_url, poolclass=pool.NullPool)
    with admin.begin() as conn:
        _create_roles_and_schema(conn, settings, database)
    owner = create_engine(settings.role_url(OWNER_ROLE), poolclass=pool.NullPool)
    with owner.connect() as conn:
        stored = _stored_srid(conn)
    if stored is not None and stored != srid:
        raise InitError(
            f"database {database} was initialised with EPSG:{stored}; "
            f"it cannot change to EPSG:{srid}"
        )
    migrate.upgrade(owner, srid=srid)
    with admin.begin() as conn:
        set_timezone(conn, settings.timezone)
        set_disclosure_control(conn, settings.suppression_k, settings.rounding_base)
        if extent is not None:
            conn.execute(
                text(
                    "UPDATE est.deployment SET extent = "
                    "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, :srid)"
                ),
                {**extent.__dict__, "srid": srid},
            )
            refresh_accepted_area(conn)
    admin.dispose()
    owner.dispose()
    return (
        f"database {database} ready: EPSG:{srid}, weeks in {settings.timezone}, "
        f"migrations at {migrate.head_revision()}"
    )


def _create_roles_and_schema(conn: Connection, settings: Settings, database: str) -> None:
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    for role, attributes in ROLE_ATTRIBUTES.items():
        exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        verb = "ALTER" if exists else "CREATE"
        conn.execute(text(f"{verb} ROLE {role} {attributes}"))
        password = settings.role_password(role)
        if password:
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
            conn.exec_driver_sql(statement.as_string(None))
        db = _ident(database)
        conn.execute(text(f"GRANT CONNECT ON DATABASE {db} TO {role}"))
        conn.execute(text(f"ALTER ROLE {role} IN DATABASE {db} SET search_path = {SCHEMA}, public"))
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION {OWNER_ROLE}"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}, {SYSTEM_ROLE}"))
    # The app may not create objects anywhere: PostgreSQL 15 already denies CREATE on public.
    conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    # Under row-level security PostgreSQL only lets LEAKPROOF operators into an index scan, so
    # a bbox query (geom && box) on incidents would read the whole table. The bounding-box
    # overlap test reads nothing but the two boxes and raises no error that depends on the
    # data, which is what LEAKPROOF promises; only a superuser may say so.
    conn.execute(text("ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF"))


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def _stored_srid(conn: Connection) -> int | None:
    present = conn.scalar(text("SELECT to_regclass('est.deployment') IS NOT NULL"))
    return conn.scalar(text("SELECT srid FROM est.deployment WHERE id = 1")) if present else None

"""The `est` command line: database, areas, demo data and the server."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, pool, text

from app import access, audit
from app.db import migrate
from app.db.bootstrap import Extent, InitError, init_database
from app.db.models import GrantLevel, Role
from app.db.reference import sync_taxonomy
from app.errors import Problem
from app.ingest.areas import DEFAULT_AREAS_FILE, create_union_area, load_areas, read_kommun_file
from app.settings import OWNER_ROLE, SYSTEM_ROLE, get_settings
from app.taxonomy import load_taxonomy

app = typer.Typer(
    help="EST Lägesbild: situational picture of crimes and incidents.", no_args_is_help=True
)
db_app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)
areas_app = typer.Typer(
    help="Load and combine areas (kommuner, län, LPO unions).", no_args_is_help=True
)
orgs_app = typer.Typer(help="Organisations (kommun, LPO, business…).", no_args_is_help=True)
grants_app = typer.Typer(help="Which organisation may see which area.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: shown once, stored hashed.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
app.add_typer(orgs_app, name="orgs")
app.add_typer(grants_app, name="grants")
app.add_typer(keys_app, name="keys")
console = Console()
err = Console(stderr=True)


def _engine(role: str) -> Engine:
    return create_engine(get_settings().role_url(role), poolclass=pool.NullPool)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@db_app.command("init")
def db_init(
    srid: Annotated[
        int, typer.Option(help="EPSG code of the storage CRS (projected, metres).")
    ] = 3006,
    extent: Annotated[
        str | None,
        typer.Option(
            help="Accepted extent minx,miny,maxx,maxy in the storage CRS; default: the "
            "loaded areas buffered by a few km."
        ),
    ] = None,
) -> None:
    """Create the database, PostGIS, roles and schema, migrate to head and load the categories."""
    try:
        box = Extent.parse(extent) if extent else None
        console.print(init_database(get_settings(), srid, box))
    except InitError as exc:
        raise _fail(str(exc)) from None
    engine = _engine(SYSTEM_ROLE)
    with engine.begin() as conn:
        n = sync_taxonomy(conn, load_taxonomy())
    console.print(f"{n} categories loaded")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations up to a revision (default: head)."""
    migrate.upgrade(_engine(OWNER_ROLE), revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help='e.g. "-1" or "base"')]) -> None:
    """Revert the migrations down to a revision."""
    migrate.downgrade(_engine(OWNER_ROLE), revision)
    console.print(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at and the code's head."""
    with _engine(OWNER_ROLE).connect() as conn:
        current = migrate.current_revision(conn)
    console.print(f"database: {current or 'empty'}; code head: {migrate.head_revision()}")


@areas_app.command("load")
def areas_load(
    path: Annotated[
        Path, typer.Argument(help="GeoPackage with layers 'kommuner' and/or 'lan'.")
    ] = (DEFAULT_AREAS_FILE),
) -> None:
    """Load kommun and län boundaries (SCB layout); a changed boundary becomes a new version."""
    if not path.exists():
        raise _fail(f"{path} does not exist")
    frame = read_kommun_file(path)
    with _engine(SYSTEM_ROLE).begin() as conn:
        result = load_areas(conn, frame)
    console.print(
        f"{len(frame)} areas from {path.name}: {result.created} created, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )


@areas_app.command("union")
def areas_union(
    code: Annotated[str, typer.Argument(help="Code of the new area, e.g. lpo-klippan.")],
    name: Annotated[str, typer.Option(help="Its name.")],
    of: Annotated[str, typer.Option(help="Comma-separated area codes, e.g. 1276,1214.")],
) -> None:
    """Create (or replace) an area that is the union of other areas, such as an LPO."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        try:
            create_union_area(conn, code, name, [c.strip() for c in of.split(",") if c.strip()])
        except ValueError as exc:
            raise _fail(str(exc)) from None
    console.print(f"area {code} = union of {of}")


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a Problem (unknown code, duplicate, …) into a clear message and exit status 1."""
    try:
        yield
    except Problem as exc:
        raise _fail(exc.detail) from None


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@orgs_app.command("create")
def orgs_create(
    code: Annotated[str, typer.Argument(help="Stable code, e.g. kommun-1214 or lpo-klippan.")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'Svalövs kommun'.")],
    kind: Annotated[str, typer.Option(help=", ".join(access.ORGANISATION_KINDS))] = "kommun",
) -> None:
    """Register an organisation."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            access.create_organisation(conn, code, name, kind)
        audit.record(
            conn,
            None,
            "organisation.create",
            actor=_cli_actor(),
            filters={"code": code, "name": name, "kind": kind},
        )
    console.print(f"organisation {code} created")


@orgs_app.command("list")
def orgs_list() -> None:
    """List organisations."""
    with _engine(SYSTEM_ROLE).connect() as conn:
        rows = access.list_organisations(conn)
    table = Table("code", "name", "kind", title="Organisations")
    for r in rows:
        table.add_row(r["code"], r["name"], r["kind"])
    console.print(table)


@grants_app.command("add")
def grants_add(
    organisation: Annotated[str, typer.Argument(help="Organisation code.")],
    area: Annotated[str, typer.Argument(help="Area code, e.g. 1214 or lpo-klippan.")],
    level: Annotated[GrantLevel, typer.Option(help="raw: incidents; aggregate: layers only.")],
    expires: Annotated[str | None, typer.Option(help="Expiry date, YYYY-MM-DD.")] = None,
) -> None:
    """Give an organisation access to an area (replacing an earlier grant)."""
    try:
        expires_at = datetime.fromisoformat(expires).replace(tzinfo=UTC) if expires else None
    except ValueError:
        raise _fail(f"--expires must be a date YYYY-MM-DD, got {expires!r}") from None
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            access.grant_area(conn, organisation, area, level, _cli_actor(), expires_at)
        audit.record(
            conn,
            None,
            "grant.put",
            actor=_cli_actor(),
            filters={"organisation": organisation, "area": area, "level": level.value},
        )
    console.print(f"{organisation} may now see area {area} at level {level.value}")


@grants_app.command("list")
def grants_list(
    organisation: Annotated[str | None, typer.Option("--org", help="Only this one.")] = None,
) -> None:
    """List grants."""
    with _engine(SYSTEM_ROLE).connect() as conn:
        with _reported():
            org_id = access.organisation_id(conn, organisation) if organisation else None
        grants = access.list_grants(conn, org_id)
    table = Table("organisation", "area", "name", "level", "expires", title="Grants")
    for g in grants:
        table.add_row(
            g.organisation,
            g.area,
            g.area_name,
            g.level.value,
            g.expires_at.date().isoformat() if g.expires_at else "",
        )
    console.print(table)


@grants_app.command("revoke")
def grants_revoke(
    organisation: Annotated[str, typer.Argument()], area: Annotated[str, typer.Argument()]
) -> None:
    """Remove an organisation's grant on an area."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            access.revoke_grant(conn, organisation, area)
        audit.record(
            conn,
            None,
            "grant.delete",
            actor=_cli_actor(),
            filters={"organisation": organisation, "area": area},
        )
    console.print(f"grant of {organisation} on {area} revoked")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organisation code.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    expires: Annotated[int | None, typer.Option(help="Days until it expires.", min=1)] = None,
    name: Annotated[str | None, typer.Option(help="What it is for, e.g. 'QGIS Anna'.")] = None,
    create_org: Annotated[
        bool, typer.Option("--create-org", help="Register the organisation when missing.")
    ] = False,
) -> None:
    """Create an API key and print it once."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            if (
                create_org
                and conn.scalar(text("SELECT 1 FROM est.organisation WHERE code = :c"), {"c": org})
                is None
            ):
                access.create_organisation(conn, org, org, "other")
            key = access.new_key(conn, org, role, name, expires)
        audit.record(
            conn,
            None,
            "key.create",
            actor=_cli_actor(),
            filters={"organisation": org, "key": key.key_id, "role": role.value},
        )
    err.print(f"API key {key.key_id} for {org} ({role.value}); it is shown only now:")
    console.print(key.token, soft_wrap=True)


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation.")] = None,
) -> None:
    """List keys (never their secrets)."""
    with _engine(SYSTEM_ROLE).connect() as conn:
        with _reported():
            org_id = access.organisation_id(conn, org) if org else None
        keys = access.list_keys(conn, org_id)
    table = Table("id", "organisation", "role", "name", "expires", "revoked", "last used")
    for k in keys:
        table.add_row(
            *(
                str(k[c]) if k[c] is not None else ""
                for c in (
                    "id",
                    "organisation",
                    "role",
                    "name",
                    "expires_at",
                    "revoked_at",
                    "last_used_at",
                )
            )
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (est_<id>_…).")]) -> None:
    """Revoke a key at once."""
    with _engine(SYSTEM_ROLE).begin() as conn:
        with _reported():
            access.revoke_key(conn, key_id)
        audit.record(conn, None, "key.revoke", actor=_cli_actor(), filters={"key": key_id})
    console.print(f"key {key_id} revoked")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    archive_dir: Annotated[Path | None, typer.Option(help="Default: EST_ARCHIVE_DIR.")] = None,
) -> None:
    """Archive (GeoPackage + CSV) and delete incidents older than EST_RETENTION_MONTHS."""
    from app.purge import purge as run_purge

    settings = get_settings()
    target = archive_dir or Path(settings.archive_dir)
    with _engine(SYSTEM_ROLE).begin() as conn:
        result = run_purge(conn, settings.retention_months, target, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} {result.incidents} incidents that ended before "
        f"{result.cutoff:%Y-%m-%d} ({settings.retention_months} months)"
    )
    for f in result.files:
        console.print(f"archive: {f}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic incidents.")] = 0,
    weeks: Annotated[int, typer.Option(min=1, max=260, help="Complete ISO weeks of data.")] = 26,
    polisen: Annotated[
        Path | None, typer.Option(help="Also load the polisen.se events archive (CSV, .gz ok).")
    ] = None,
    keys: Annotated[bool, typer.Option(help="Print fresh demo API keys.")] = True,
) -> None:
    """Load demo incidents for Svalöv, Eslöv, Klippan, Sölvesborg and Älmhult."""
    from app.demo import demo_keys, load_demo, load_polisen

    taxonomy = load_taxonomy()
    with _engine(SYSTEM_ROLE).begin() as conn:
        try:
            results = load_demo(conn, taxonomy, date.today(), seed=seed, weeks=weeks)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    table = Table("kommun", "created", "updated", "unchanged", title="Demo incidents")
    for name, r in results.items():
        table.add_row(name, str(r.created), str(r.updated), str(r.unchanged))
    console.print(table)
    if polisen is not None:
        if not polisen.exists():
            raise _fail(f"{polisen} does not exist")
        with _engine(SYSTEM_ROLE).begin() as conn:
            p = load_polisen(conn, taxonomy, polisen)
        skipped = sum(p.not_incidents.values())
        console.print(
            f"polisen.se: {p.stored.created} created, {p.stored.updated} updated, "
            f"{p.stored.unchanged} unchanged, all marked area_centroid; {skipped} events of "
            f"{len(p.not_incidents)} types that are not incidents were left out"
        )
    if keys:
        with _engine(SYSTEM_ROLE).begin() as conn:
            created = demo_keys(conn)
        console.print("Demo API keys (earlier demo keys are revoked):")
        for org, role, token in created:
            console.print(f"  {role.value:<8} {org:<12} {token}", soft_wrap=True)
        console.print("Try: curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8000/api/v1/me")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: EST_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: EST_PORT.")] = None,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
    )


def main() -> None:
    """Entry point of the `est` script."""
    app()

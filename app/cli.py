"""The `est` command line: database, areas, demo data and the server."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, pool

from app.db import migrate
from app.db.bootstrap import Extent, InitError, init_database
from app.db.reference import sync_taxonomy
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
app.add_typer(db_app, name="db")
app.add_typer(areas_app, name="areas")
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


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic incidents.")] = 0,
    weeks: Annotated[int, typer.Option(min=1, max=260, help="Complete ISO weeks of data.")] = 26,
    polisen: Annotated[
        Path | None, typer.Option(help="Also load the polisen.se events archive (CSV, .gz ok).")
    ] = None,
) -> None:
    """Load demo incidents for Svalöv, Eslöv, Klippan, Sölvesborg and Älmhult."""
    from app.demo import load_demo, load_polisen

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

"""`est db`: create, migrate and inspect the database."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import console, owner_engine, reported, system_engine

app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)


@app.command("init")
def init(
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
    """Create the database, PostGIS, roles and schema, migrate to head and load the categories.

    Weeks are counted in EST_TIMEZONE (default Europe/Stockholm), written to the database here.
    """
    from app.core.taxonomy import load_taxonomy
    from app.db.bootstrap import Extent, init_database
    from app.db.reference import sync_taxonomy
    from app.settings import get_settings

    with reported():
        box = Extent.parse(extent) if extent else None
        console.print(init_database(get_settings(), srid, box))
    with system_engine().begin() as conn:
        n = sync_taxonomy(conn, load_taxonomy())
    console.print(f"{n} categories loaded")


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the migrations up to a revision (default: head)."""
    from app.db import migrate

    migrate.upgrade(owner_engine(), revision)
    console.print(f"database at {revision}")


@app.command("downgrade")
def downgrade(revision: Annotated[str, typer.Argument(help='e.g. "-1" or "base"')]) -> None:
    """Revert the migrations down to a revision."""
    from app.db import migrate

    migrate.downgrade(owner_engine(), revision)
    console.print(f"database at {revision}")


@app.command("current")
def current() -> None:
    """Print the revision the database is at and the code's head."""
    from app.db import migrate

    with owner_engine().connect() as conn:
        at = migrate.current_revision(conn)
    console.print(f"database: {at or 'empty'}; code head: {migrate.head_revision()}")

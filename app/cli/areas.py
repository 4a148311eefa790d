"""`est areas`: load kommun and län boundaries, and combine them into unions such as an LPO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import cli_actor, console, fail, reported, system_engine
from app.core import AREAS_FILE

app = typer.Typer(help="Load and combine areas (kommuner, län, LPO unions).", no_args_is_help=True)


@app.command("load")
def load(
    path: Annotated[
        Path, typer.Argument(help="GeoPackage with layers 'kommuner' and/or 'lan'.")
    ] = AREAS_FILE,
    tatorter: Annotated[
        Path | None,
        typer.Option(
            help="Also load tätort boundaries from this file (e.g. SCB's tätorter GeoPackage): "
            "drawn on the map page and in the reports."
        ),
    ] = None,
    tatort_layer: Annotated[
        str | None, typer.Option(help="The file's layer of tätorter (default: the first).")
    ] = None,
    tatort_year: Annotated[
        int | None, typer.Option(help="The year of a file that holds several (default: latest).")
    ] = None,
) -> None:
    """Load kommun and län boundaries (SCB layout), and tätorter when given; a changed boundary
    becomes a new version."""
    import geopandas as gpd

    from app.db.areas import load_areas
    from app.ingest.areas import read_kommun_file, read_tatort_file
    from app.runs.profiles import ensure_default_profiles

    for given in (path, tatorter):
        if given is not None and not given.exists():
            fail(f"{given} does not exist")
    with reported():
        frame = read_kommun_file(path)
        if tatorter is not None:
            places = read_tatort_file(tatorter, tatort_layer, tatort_year).to_crs(frame.crs)
            both = gpd.pd.concat([frame, places], ignore_index=True)
            frame = gpd.GeoDataFrame(both, geometry="geometry", crs=frame.crs)
    with reported(), system_engine().begin() as conn:
        result = load_areas(conn, frame)
        profiled = ensure_default_profiles(conn, cli_actor())
    named = f"{path.name} and {tatorter.name}" if tatorter is not None else path.name
    console.print(
        f"{len(frame)} areas from {named}: {result.created} created, "
        f"{result.updated} updated, {result.unchanged} unchanged"
    )
    _print_profiled(profiled)


@app.command("union")
def union(
    code: Annotated[str, typer.Argument(help="Code of the new area, e.g. lpo-klippan.")],
    name: Annotated[str, typer.Option(help="Its name.")],
    of: Annotated[str, typer.Option(help="Comma-separated area codes, e.g. 1276,1214.")],
) -> None:
    """Create (or replace) an area that is the union of other areas, such as an LPO."""
    from app.db.areas import create_union_area
    from app.runs.profiles import ensure_default_profiles

    with system_engine().begin() as conn, reported():
        create_union_area(conn, code, name, [c.strip() for c in of.split(",") if c.strip()])
        profiled = ensure_default_profiles(conn, cli_actor())
    console.print(f"area {code} = union of {of}")
    _print_profiled(profiled)


def _print_profiled(count: int) -> None:
    from app.runs.profiles import DEFAULT_NAME

    console.print(f"{count} areas got the default profile {DEFAULT_NAME!r}")

"""`est analyze` (on files, no database) and `est purge` (on the database).

Commands on files count hours and weeks in the file's time zone: --timezone, else the
mapping's, else EST_TIMEZONE. (`est evaluate` has a module of its own, app.cli.evaluate.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import (
    area_polygon,
    console,
    fail,
    read_file_points,
    reported,
    system_engine,
)


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count.")] = False,
    archive_dir: Annotated[Path | None, typer.Option(help="Default: EST_ARCHIVE_DIR.")] = None,
) -> None:
    """Archive (GeoPackage + CSV) and delete incidents older than EST_RETENTION_MONTHS."""
    from app.runs.purge import purge as run_purge
    from app.settings import get_settings

    settings = get_settings()
    target = archive_dir or Path(settings.archive_dir)
    with system_engine().begin() as conn:
        result = run_purge(conn, settings.retention_months, target, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} {result.incidents} incidents and {result.runs} hotspot runs that ended before "
        f"{result.cutoff:%Y-%m-%d} ({settings.retention_months} months)"
    )
    for f in result.files:
        console.print(f"archive: {f}")


def analyze(
    path: Annotated[Path, typer.Argument(help="Incidents: CSV, GeoJSON or GeoPackage.")],
    method: Annotated[str, typer.Option(help="dbscan, kde or gistar.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="GeoJSON to write.")],
    mapping: Annotated[str, typer.Option(help="A mapping file or a preset.")] = "est",
    crs: Annotated[str | None, typer.Option(help="CRS of the file's coordinates.")] = None,
    metric_crs: Annotated[
        str | None, typer.Option(help="CRS to compute in (metres); default: the UTM zone.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="Time zone of the file; default: the mapping's, else EST_TIMEZONE."),
    ] = None,
    eps_m: Annotated[float, typer.Option(help="DBSCAN: neighbourhood radius, metres.")] = 150.0,
    min_samples: Annotated[int, typer.Option(help="DBSCAN: points to make a core.")] = 10,
    cell_size_m: Annotated[float, typer.Option(help="KDE and Gi*: grid cell, metres.")] = 100.0,
    bandwidth_m: Annotated[
        float | None, typer.Option(help="KDE: bandwidth in metres; default: ArcGIS's rule.")
    ] = None,
    distance_band_m: Annotated[float, typer.Option(help="Gi*: neighbours within, metres.")] = 300.0,
    since: Annotated[str | None, typer.Option("--from", help="Only from this date.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Only before this date.")] = None,
    area: Annotated[
        Path | None,
        typer.Option(
            help="Study area polygon file (GeoJSON, GeoPackage); default: the data's own extent."
        ),
    ] = None,
) -> None:
    """Run a hotspot method on a file and write the result as GeoJSON; no database needed."""
    from app.runs.analyze import METHODS, write_geojson
    from app.runs.analyze import analyze as run_method
    from clustering.gistar import TooFewIncidents

    if method not in METHODS:
        fail(f"--method must be dbscan, kde or gistar, not {method!r}")
    with reported():
        points = read_file_points(path, mapping, crs, timezone, metric_crs, since, until)
        polygon = area_polygon(area, points) if area is not None else None
        try:
            done = run_method(
                points,
                method,
                eps_m=eps_m,
                min_samples=min_samples,
                cell_size_m=cell_size_m,
                bandwidth_m=bandwidth_m,
                distance_band_m=distance_band_m,
                area=polygon,
            )
        except TooFewIncidents as exc:
            fail(f"{exc}: Gi* cannot conclude anything on so few")
        except ValueError as exc:  # a parameter the method refuses, in its own words
            fail(str(exc))
    write_geojson(done.result, output)
    console.print(
        f"{method}: {len(points.xy)} points of {points.read} read ({points.skipped} without a "
        f"location or time, or outside --from/--to), computed in {points.crs.name}, times in "
        f"{points.tz}, kept to {done.kept_to}; {len(done.result)} features written to {output}"
    )

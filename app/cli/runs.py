"""`est analyze`, `est evaluate` (on files, no database) and `est purge` (on the database).

Commands on files count hours and weeks in the file's time zone: --timezone, else the
mapping's, else EST_TIMEZONE.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from app.runs.analyze import Points

from app.cli.common import console, fail, parse_date, reported, system_engine


def _read(
    path: Path,
    mapping: str,
    crs: str | None,
    timezone: str | None,
    metric_crs: str | None,
    since: str | None,
    until: str | None,
) -> Points:
    """The file's points for a command on files (in a `reported()` block)."""
    from app.ingest.mapping import load_mapping
    from app.runs.analyze import read_points
    from app.settings import get_settings

    start, end = parse_date(since, "--from"), parse_date(until, "--to")
    return read_points(
        path,
        load_mapping(mapping),
        default_timezone=get_settings().timezone,
        crs=crs,
        timezone=timezone,
        metric_crs=metric_crs,
        since=start,
        until=end,
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
) -> None:
    """Run a hotspot method on a file and write the result as GeoJSON; no database needed."""
    from app.runs.analyze import METHODS, write_geojson
    from app.runs.analyze import analyze as run_method
    from clustering.gistar import TooFewIncidents

    if method not in METHODS:
        fail(f"--method must be dbscan, kde or gistar, not {method!r}")
    with reported():
        points = _read(path, mapping, crs, timezone, metric_crs, since, until)
        try:
            result = run_method(
                points,
                method,
                eps_m=eps_m,
                min_samples=min_samples,
                cell_size_m=cell_size_m,
                bandwidth_m=bandwidth_m,
                distance_band_m=distance_band_m,
            )
        except TooFewIncidents as exc:
            fail(f"{exc}: Gi* cannot conclude anything on so few")
        except ValueError as exc:  # a parameter the method refuses, in its own words
            fail(str(exc))
    write_geojson(result, output)
    console.print(
        f"{method}: {len(points.xy)} points of {points.read} read ({points.skipped} without a "
        f"location or time, or outside --from/--to), computed in {points.crs.name}, times in "
        f"{points.tz}; {len(result)} features written to {output}"
    )


def evaluate(
    path: Annotated[Path, typer.Argument(help="Incidents: CSV, GeoJSON or GeoPackage.")],
    mapping: Annotated[str, typer.Option(help="A mapping file or a preset.")] = "est",
    area: Annotated[
        Path | None, typer.Option(help="Study area polygon file; default: cells with incidents.")
    ] = None,
    train_weeks: Annotated[int, typer.Option(min=1, help="Weeks before each test week.")] = 12,
    test_weeks: Annotated[int, typer.Option(min=1, help="Weeks forecast each time.")] = 1,
    coverage: Annotated[float, typer.Option(min=0.001, max=1.0, help="Share of area.")] = 0.05,
    cell_size_m: Annotated[float, typer.Option(min=10, help="Grid cell, metres.")] = 150.0,
    since: Annotated[str | None, typer.Option("--from", help="Only from this date.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Only before this date.")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of the file's coordinates.")] = None,
    metric_crs: Annotated[str | None, typer.Option(help="CRS to compute in (metres).")] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            "--week-timezone",
            help="Time zone of the file, whose Mondays start the weeks; default: the "
            "mapping's, else EST_TIMEZONE.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for summary.csv, weeks.csv, pai.png.")] = Path(
        "evaluation"
    ),
) -> None:
    """Rolling backtest: which method's hotspots catch next week's incidents (PAI, hit rate)."""
    from app.runs.evaluate import evaluate as run_backtest

    with reported():
        points = _read(path, mapping, crs, timezone, metric_crs, since, until)
        try:
            done = run_backtest(
                points,
                out,
                train_weeks=train_weeks,
                test_weeks=test_weeks,
                coverage=coverage,
                cell_size_m=cell_size_m,
                area=area,
                title=path.name,
            )
        except ValueError as exc:  # a window or area the backtest refuses, in its own words
            fail(str(exc))
    summary = done.summary
    table = Table(
        "method",
        *(str(c) for c in summary.columns),
        title=f"Backtest: train {train_weeks} weeks, test {test_weeks}, "
        f"coverage {coverage:.0%}, cells {cell_size_m:g} m, weeks in {points.tz}",
    )
    for method, row in summary.iterrows():
        cells = [str(int(v)) if c == "weeks_evaluated" else f"{v:.3f}" for c, v in row.items()]
        table.add_row(str(method), *cells)
    console.print(table)
    console.print(
        f"{len(points.xy)} incidents in {points.crs.name}; wrote "
        + ", ".join(str(f) for f in done.files)
    )

"""`est import`: a file of incidents into the database, through the one import pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import cli_actor, console, err, fail, reported, system_engine
from app.core import preset_names

if TYPE_CHECKING:
    from app.ingest.pipeline import ImportSummary


def import_file(
    path: Annotated[Path, typer.Argument(help="CSV (, or ;), GeoJSON or GeoPackage; .gz ok.")],
    org: Annotated[str, typer.Option(help="Code of the reporting organisation.")],
    source: Annotated[
        str | None, typer.Option(help="Source name; records are keyed by (source, id).")
    ] = None,
    mapping: Annotated[
        str, typer.Option(help="A mapping file, or a preset: " + ", ".join(preset_names()))
    ] = "est",
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates, e.g. EPSG:3006.")] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="Time zone of times without offset; default: the mapping's, else EST_TIMEZONE."
        ),
    ] = None,
    accept_valid: Annotated[
        bool,
        typer.Option("--accept-valid", help="Store the valid rows; write the rejects to a CSV."),
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1000, help="Rows per batch.")] = 50_000,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where to write rejected rows (default: FILE.rejects.csv beside FILE)."),
    ] = None,
    notes: Annotated[
        Path | None,
        typer.Option(
            help="Where to write every note when the summary shows only the first ones "
            "(default: FILE.notes.txt beside FILE)."
        ),
    ] = None,
) -> None:
    """Import incidents from a file: all or nothing, unless --accept-valid."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from app.access import admin
    from app.ingest.mapping import load_mapping
    from app.ingest.pipeline import file_import, run_import, write_notes, write_rejects
    from app.ingest.readers import ReadBatch
    from app.settings import get_settings

    settings = get_settings()
    if not path.is_file():
        fail(f"{path} does not exist")
    rejects = rejects or path.with_name(path.name + ".rejects.csv")
    notes = notes or path.with_name(path.name + ".notes.txt")
    for target, what in ((rejects, "rejects"), (notes, "notes")):
        folder = target.parent.resolve()
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            # Checked before the import, so that nothing it reports is lost after the commit.
            fail(f"cannot write the {what} to {target}: choose a writable place with --{what}")
    db = system_engine()
    with reported():
        chosen = load_mapping(mapping)
        with db.connect() as conn:
            org_id = admin.organisation_id(conn, org)
    effective_source = source or chosen.source
    if not effective_source:
        fail("give --source (the mapping names none): records are keyed by source and id")
    spec, batches = file_import(
        path,
        chosen,
        settings,
        organisation_id=org_id,
        created_by=cli_actor(),
        source=effective_source,
        source_override=source,
        timezone=timezone,
        crs=crs,
        accept_valid=accept_valid,
        batch_size=batch_size,
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(path.name, total=None, rows=0)

        def on_batch(read: ReadBatch, s: ImportSummary) -> None:
            total = read.bytes_total or read.rows_total
            done = read.bytes_read if read.bytes_total else read.rows_read
            progress.update(task, total=total, completed=done, rows=s.rows)

        with reported(), db.begin() as conn:
            summary = run_import(db, conn, settings, spec, batches, on_batch=on_batch)
    _print_summary(summary, path)
    if summary.details:
        write_notes(summary, notes)
        err.print(f"every note, with what the summary leaves out: {notes}")
    if summary.rejected:
        write_rejects(summary.rejected, rejects)
        err.print(f"{len(summary.rejected)} rejected rows with their reasons: {rejects}")
    if not summary.stored:
        first = summary.rejected[0]
        fail(
            "nothing was imported because rows were rejected (the first: row "
            f"{first.row}, {first.field}: {first.reason}); fix them, or use --accept-valid"
        )


def _print_summary(summary: ImportSummary, path: Path) -> None:
    table = Table(
        "rows read",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "not incidents",
        "repeated ids",
        title=f"Import {summary.import_id}: {path.name}",
    )
    counts = (
        summary.rows,
        summary.created,
        summary.updated,
        summary.unchanged,
        len(summary.rejected),
        sum(summary.not_incident.values()),
        summary.repeated_ids,
    )
    table.add_row(*(str(v) for v in counts))
    console.print(table)
    for note in summary.notes:
        console.print(f"- {note}")

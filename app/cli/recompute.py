"""`est recompute` (the week's lägesbild, by hand) and `est runs list|show` (what ran, how)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.common import console, err, fail, reported, system_engine

runs_app = typer.Typer(help="Hotspot runs: what was computed, how and from what.")


def recompute(
    area: Annotated[
        list[str] | None, typer.Option("--area", help="Area code; repeat for several.")
    ] = None,
    all_areas: Annotated[
        bool, typer.Option("--all", help="Every area with an active profile.")
    ] = False,
    profile: Annotated[str | None, typer.Option(help="Only this profile (default: all).")] = None,
    week: Annotated[
        str,
        typer.Option(
            help="ISO week (2026-W48), current (the open week), last, or a tertial "
            "(2026-T3, tertial, last-tertial)."
        ),
    ] = "current",
    force: Annotated[bool, typer.Option(help="Compute even when nothing changed.")] = False,
    nightly: Annotated[
        bool,
        typer.Option(
            help="Do the due night's work (with --all: every area, then the purge) through the "
            "same claims as the service's scheduler: from cron, it never doubles a night."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Compute on a local Dask cluster of this many worker processes "
            "(default EST_RECOMPUTE_WORKERS; 0: in this process).",
        ),
    ] = -1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Compute on an existing Dask cluster, e.g. tls://10.0.0.5:8786 "
            "(default EST_DASK_SCHEDULER). Only this process talks to the database.",
        ),
    ] = None,
) -> None:
    """Compute and publish the week's runs of areas: one line per area and profile."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from app.db.deployment import read_deployment
    from app.runs import recompute as runs

    if not area and not all_areas:
        fail("name areas with --area CODE (repeatable) or give --all")
    from app.runs import scale
    from app.settings import get_settings

    settings = get_settings()
    workers = settings.recompute_workers if workers < 0 else workers
    scheduler = scheduler or (settings.dask_scheduler if workers == 0 else None)
    db = system_engine()
    with reported():
        if scheduler:
            scale.check_scheduler_address(scheduler)
        if nightly:
            with scale.runner(workers, scheduler) as where:
                _nightly(db, None if all_areas else area, where)
            return
        with db.connect() as conn:
            tz = read_deployment(conn).timezone
            chosen = runs.run_period(week, tz, datetime.now(ZoneInfo(tz)))
            pairs = runs.profiles_to_run(conn, None if all_areas else area, profile)
    if not pairs:
        fail("no active profile to run")
    with reported(), scale.runner(workers, scheduler) as where:
        if workers or scheduler:
            err.print(f"computing {where.describe()}")
        outcomes = run_pairs(db, pairs, chosen, force, where)
    _summary(outcomes)
    _deliver(db)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(code=4)


def _nightly(db: Any, areas: list[str] | None, where: Any) -> None:
    """The due night's work, as the scheduler does it."""
    from datetime import UTC, datetime

    from app.runs import schedule
    from app.settings import get_settings

    settings = get_settings()
    with reported():
        at = schedule.parse_clock(settings.recompute_schedule)
        night = schedule.due_night(datetime.now(UTC), at, settings.timezone)
        report = schedule.run_night(db, settings, night, area_codes=areas, runner=where)
    _summary(report.outcomes)
    console.print(
        f"night of {night} ({report.week}): {len(report.outcomes)} runs here, "
        f"{report.taken_elsewhere} claimed by another process"
        + (", purge done" if report.purged else "")
    )
    _deliver(db)
    if any(o.status == "failed" for o in report.outcomes):
        raise typer.Exit(code=4)


def _deliver(db: Any) -> None:
    """Send the alerts the runs made (and any others that are due)."""
    from app.alerts.deliver import deliver_due
    from app.settings import get_settings

    with reported():
        console.print(f"alerts: {deliver_due(db, get_settings()).describe()}")


def run_pairs(
    db: Any, pairs: list[Any], chosen: Any, force: bool = False, where: Any = None
) -> list[Any]:
    """Run each (area, profile) for the week with a spinner per area (several at once on
    Dask workers); failures are recorded (in the run's row and in the outcome) and the other
    areas go on."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from app.runs import recompute as runs
    from app.runs import scale

    where = where or scale.Local()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:

        def one(pair: tuple[str, Any]) -> runs.Outcome:
            code, p = pair
            task = progress.add_task(f"{code} {p.name} {chosen.label}", stage="")

            def on_stage(name: str) -> None:
                progress.update(task, stage=name)

            try:
                outcome = runs.recompute(
                    db, code, p, chosen, force=force, progress=on_stage, runner=where
                )
            except Exception as exc:  # one area's failure is recorded; the others go on
                outcome = runs.Outcome(code, p.name, chosen.label, "failed", None, str(exc))
            progress.remove_task(task)
            return outcome

        return scale.each(one, pairs, where.parallel)


def recompute_areas(codes: list[str], weeks: list[str], profile: str | None = None) -> None:
    """Run the profiles of some areas (all active ones, or the one named) for some weeks and
    print the summary."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from app.db.deployment import read_deployment
    from app.runs import recompute as runs

    db = system_engine()
    outcomes = []
    for week in weeks:
        with reported(), db.connect() as conn:
            tz = read_deployment(conn).timezone
            chosen = runs.run_period(week, tz, datetime.now(ZoneInfo(tz)))
            pairs = runs.profiles_to_run(conn, codes, profile)
        outcomes += run_pairs(db, pairs, chosen)
    _summary(outcomes)


def _summary(outcomes: list[Any]) -> None:
    table = Table(
        "area",
        "profile",
        "week",
        "status",
        "run",
        "incidents",
        "hotspots",
        "seconds",
        "note",
        title="Recompute",
    )
    for o in outcomes:
        seconds = sum(o.timings.values()) if o.timings else 0.0
        table.add_row(
            o.area,
            o.profile,
            o.week,
            {
                "succeeded": "[green]published[/green]" if o.published else "stored",
                "skipped": "skipped",
                "running": "running elsewhere",
                "failed": "[red]failed[/red]",
            }[o.status],
            str(o.run_id or "—"),
            str(o.counts.get("window", "")),
            str(o.counts.get("hotspots", "")),
            f"{seconds:.1f}" if o.timings else "",
            o.detail,
        )
    console.print(table)


@runs_app.command("list")
def list_runs(
    area: Annotated[list[str] | None, typer.Option("--area", help="Area code.")] = None,
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W48.")] = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 30,
) -> None:
    """Runs, newest first: status, week, counts and how long each stage took."""
    from app.runs.history import list_runs as read

    with reported(), system_engine().connect() as conn:
        rows, total = read(conn, area_codes=area, week=week, status=status, limit=limit)
    table = Table(
        "run",
        "area",
        "profile",
        "week",
        "status",
        "current",
        "incidents",
        "hotspots",
        "seconds",
        title=f"Runs ({len(rows)} of {total})",
    )
    for r in rows:
        counts, timings = r["counts"] or {}, r["timings"] or {}
        table.add_row(
            str(r["id"]),
            r["area"],
            r["profile"] + (f" ({r['profile_organisation']})" if r["profile_organisation"] else ""),
            r["period_label"] + (" (provisional)" if r["provisional"] else ""),
            r["status"],
            "yes" if r["current"] else "",
            str(counts.get("window", "")),
            str(counts.get("hotspots", "")),
            f"{sum(timings.values()):.1f}" if timings else "",
        )
    console.print(table)


@runs_app.command("show")
def show_run(run_id: Annotated[int, typer.Argument(help="The run's id.")]) -> None:
    """One run: status, window, timings, counts, parameters, provenance, notes and figures."""
    import yaml

    from app.runs.history import get_run

    with reported(), system_engine().connect() as conn:
        run = get_run(conn, run_id)
    figures = run.pop("area_figures")
    console.print(yaml.safe_dump(run, allow_unicode=True, sort_keys=False), highlight=False)
    table = Table(
        "audience",
        "group",
        "week",
        "last week",
        "last year",
        "12-week mean",
        "changes",
        title="Area figures",
    )
    for f in figures:
        changed = [f"{name} {t['direction']}" for name, t in f["tests"].items() if t["significant"]]
        table.add_row(
            f["audience"],
            f["group_code"],
            str(f["this_week"]),
            str(f["last_week"]),
            str(f["same_week_last_year"]),
            f"{f['mean_12_weeks']:.1f}",
            ", ".join(changed) or "—",
        )
    console.print(table)

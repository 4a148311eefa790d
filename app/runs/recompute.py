"""The week's run of an area and profile: read, compute, build viewer layers, publish.

A run is for one ISO week in the deployment's time zone: its window ends at the Monday 00:00
that closes the week, so "the lägesbild of week 48" is one well-defined run. A run while the
week is still open computes it so far and is marked provisional. A tertial's run (four months)
is the same computation over the tertial, published beside the weeks' runs. A run is skipped
when nothing it would read changed since the last published run of that period and profile
(the digest of app.runs.inputs), unless forced.

The run is a job (app.db.jobs): its row is committed as running at once and keeps a heartbeat;
everything it computes is written, and layer_current switched, in one transaction that also
records it succeeded. A failure rolls that back and records why; a killed process leaves the
row running until its heartbeat is stale, when the next run marks it failed. Either way the
previous published run stays served.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, Engine, text

from app.access.privacy import Period, period_of
from app.alerts import events as alerts
from app.core.errors import InvalidInput, NotFound
from app.db.deployment import read_deployment
from app.db.jobs import HOTSPOT_RUNS, STALE_AFTER_S, Job, sweep_stale
from app.runs import compute as computing
from app.runs import inputs, publish, viewer
from app.runs.figures import GroupCounts, figure_periods, tested
from app.runs.figures import previous as previous_period
from app.runs.profiles import DEFAULT_NAME as DEFAULT_PROFILE
from app.runs.profiles import Profile, find_profile, list_profiles
from clustering.evaluation import best_possible_hits, hit_rate, pai
from clustering.weeks import week_numbers
from geo.grid import cell_index, cells_in_area

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_TERTIAL = re.compile(r"^(\d{4})-T(\d)$")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunPeriod:
    """The period a run is for (an ISO week or a tertial), as local dates and instants.

    The hotspot methods of a week's run look at the profile's window of weeks ending with it;
    a tertial's run looks at the whole tertial. Trends and the forecast count whole weeks up to
    `last_monday`, the Monday of the period's last whole week.
    """

    kind: str  # week | tertial
    first_day: date
    end_day: date
    tz: str

    @classmethod
    def week(cls, monday: date, tz: str) -> RunPeriod:
        """The ISO week that starts on a Monday."""
        return cls("week", monday, monday + timedelta(7), tz)

    @classmethod
    def tertial(cls, day: date, tz: str) -> RunPeriod:
        """The tertial (January–April, May–August, September–December) that holds a day."""
        p = period_of("tertial", day)
        return cls("tertial", p.first_day, p.end_day, tz)

    @property
    def period(self) -> Period:
        """The period as the privacy module names it."""
        return Period(self.kind, self.first_day, self.end_day)

    @property
    def label(self) -> str:
        """E.g. 2026-W48 or 2026-T3."""
        return self.period.label

    def instant(self, day: date) -> datetime:
        """Local midnight of a day, as an aware datetime."""
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.tz))

    @property
    def start(self) -> datetime:
        """The period's first local midnight."""
        return self.instant(self.first_day)

    @property
    def end(self) -> datetime:
        """The local midnight that closes it."""
        return self.instant(self.end_day)

    @property
    def last_monday(self) -> date:
        """The Monday of the period's last whole period."""
        if self.kind == "week":
            return self.first_day
        return self.end_day - timedelta(days=self.end_day.weekday() + 7)

    @property
    def number(self) -> int:
        """The last whole week's number on clustering.weeks' clock."""
        middle = self.instant(self.last_monday) + timedelta(days=3)
        return int(week_numbers(pd.DatetimeIndex([middle]), self.tz)[0])

    @property
    def week_end(self) -> datetime:
        """The Monday 00:00 after the last whole period."""
        return self.instant(self.last_monday + timedelta(7))

    def previous(self) -> RunPeriod:
        """The period of the same kind before this one."""
        p = previous_period(self.period)
        return RunPeriod(self.kind, p.first_day, p.end_day, self.tz)


def run_period(spec: str | None, tz: str, now: datetime) -> RunPeriod:
    """The period a run is for: 'current' (default; the open week), 'last' (the last closed
    week), an ISO week such as 2026-W48, or a tertial: 2026-T3, 'tertial' (the current one),
    'last-tertial'. Periods that have not begun are refused."""
    today = now.astimezone(ZoneInfo(tz)).date()
    this_monday = today - timedelta(days=today.weekday())
    if spec in (None, "", "current"):
        return RunPeriod.week(this_monday, tz)
    if spec == "last":
        return RunPeriod.week(this_monday - timedelta(7), tz)
    if spec == "tertial":
        return RunPeriod.tertial(today, tz)
    if spec == "last-tertial":
        return RunPeriod.tertial(RunPeriod.tertial(today, tz).first_day - timedelta(1), tz)
    if (tertial := _TERTIAL.match(spec)) is not None:
        if not 1 <= int(tertial[2]) <= 3:
            raise InvalidInput(f"week: {spec} does not exist (tertials are T1-T3)", field="week")
        chosen = RunPeriod.tertial(date(int(tertial[1]), 4 * int(tertial[2]) - 3, 1), tz)
        if chosen.first_day > today:
            raise InvalidInput(f"week: {spec} has not begun", field="week")
        return chosen
    match = _WEEK.match(spec)
    if match is None:
        raise InvalidInput(
            f"week: {spec!r} is not an ISO week such as 2026-W48, a tertial such as 2026-T3, "
            "current, last, tertial or last-tertial",
            field="week",
        )
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise InvalidInput(f"week: {spec} does not exist", field="week") from None
    if monday > this_monday:
        raise InvalidInput(f"week: {spec} has not begun", field="week")
    return RunPeriod.week(monday, tz)


def code_version() -> str:
    """The installed package's version."""
    try:
        return f"est-lagesbild {metadata.version('est-lagesbild')}"
    except metadata.PackageNotFoundError:
        return "est-lagesbild (not installed)"


@dataclass
class Outcome:
    """What happened to one area and profile: computed, skipped or failed, and the run."""

    area: str
    profile: str
    week: str
    status: str  # succeeded | skipped | running (another run of it is) | failed
    run_id: int | None
    detail: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    published: bool = False


class _Stages:
    """Seconds per stage of a run."""

    def __init__(self, progress: Progress | None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress is not None:
            self.progress(name)
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - began, 4)


def history_weeks(profile: Profile) -> int:
    """How many weeks up to the run's week its methods read."""
    s = profile.settings
    return max(
        s.window_weeks,
        s.methods.emerging.window_weeks,
        s.methods.forecast.weeks,
        computing.SERIES_WEEKS,
    )


def digest_range(period: RunPeriod) -> tuple[datetime, datetime]:
    """Everything a run reads lies in these instants (the figures reach back a year)."""
    first = min(p.first_day for ps in figure_periods(period.period).values() for p in ps)
    return period.instant(min(first, period.first_day)), period.end


def history_start(period: RunPeriod, profile: Profile) -> datetime:
    """The first instant of the incidents a run reads: its period and the weeks before its
    last whole week that the methods need."""
    weeks_back = period.last_monday - timedelta(7 * (history_weeks(profile) - 1))
    return period.instant(min(period.first_day, weeks_back))


@dataclass(frozen=True)
class Started:
    """A run recorded as running, ready to compute."""

    job: Job
    area: inputs.AreaRow
    profile: Profile
    period: RunPeriod
    start: datetime


def start(
    engine: Engine,
    area_code: str,
    profile: Profile,
    period: RunPeriod,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> Started | Outcome:
    """Record the run as running (committed), or say why it is skipped."""
    now = now or datetime.now(ZoneInfo(period.tz))
    with engine.begin() as conn:
        sweep_stale(conn, HOTSPOT_RUNS)
        area = inputs.load_area(conn, area_code)
        since, until = digest_range(period)
        digest = inputs.input_digest(conn, area.id, since, until, profile.version)
        last = _last_published(conn, area.id, profile.id, period)
        running = _running(conn, area.id, profile.id, period)
    if running is not None:  # never two runs of one period and profile at once
        return Outcome(
            area_code,
            profile.name,
            period.label,
            "running",
            running,
            f"already running as run {running}",
        )
    if not force and last is not None and last["input_digest"] == digest:
        return Outcome(
            area_code,
            profile.name,
            period.label,
            "skipped",
            last["id"],
            f"nothing changed since run {last['id']}",
        )
    first = history_start(period, profile)
    job = Job.start(
        engine,
        HOTSPOT_RUNS,
        {
            "area_id": area.id,
            "profile_id": profile.id,
            "parameters": {},
            "window_start": first,
            "window_end": period.end,
            "code_version": code_version(),
            "period_kind": period.kind,
            "period_label": period.label,
            "provisional": now < period.end,
            "profile_version": profile.version,
            "input_digest": digest,
        },
    )
    return Started(job, area, profile, period, first)


class Runner(Protocol):
    """Where a run's computation happens (app.runs.scale: in this process or on Dask)."""

    def work(self, gathered: Gathered) -> Computed:
        """Compute a gathered run; return what it computed."""
        ...


def execute(
    engine: Engine,
    started: Started,
    progress: Progress | None = None,
    runner: Runner | None = None,
) -> Outcome:
    """Read what a started run needs, compute it (here or on the runner's workers), then
    write and publish it in one transaction; record a failure."""
    stages = _Stages(progress)
    job = started.job
    try:
        with job.beating():
            with engine.begin() as conn:
                gathered = gather(conn, started, stages)
            if runner is None:
                computed = work(gathered)
            else:
                if progress is not None:
                    progress("methods")
                computed = runner.work(gathered)
            stages.timings.update(computed.timings)
            with engine.begin() as conn:
                return store(conn, started, gathered, computed, stages)
    except Exception as exc:
        job.fail(f"{type(exc).__name__}: {exc}", timings=stages.timings)
        raise


def recompute(
    engine: Engine,
    area_code: str,
    profile: Profile,
    period: RunPeriod,
    *,
    force: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    runner: Runner | None = None,
) -> Outcome:
    """Compute, write and publish one area's run for one period and profile (see the module)."""
    started = start(engine, area_code, profile, period, force=force, now=now)
    if isinstance(started, Outcome):
        return started
    return execute(engine, started, progress, runner)


def _last_published(
    conn: Connection, area_id: int, profile_id: int, period: RunPeriod
) -> dict[str, Any] | None:
    row = conn.execute(
        text("""
        SELECT id, input_digest FROM est.hotspot_run
        WHERE area_id = :area AND profile_id = :profile AND period_kind = :kind
          AND period_label = :label AND status = 'succeeded' AND published_at IS NOT NULL
        ORDER BY id DESC LIMIT 1
    """),
        {"area": area_id, "profile": profile_id, "kind": period.kind, "label": period.label},
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def _running(conn: Connection, area_id: int, profile_id: int, period: RunPeriod) -> int | None:
    """A run of the same period and profile that is running now (its heartbeat is fresh)."""
    found = conn.scalar(
        text("""
        SELECT id FROM est.hotspot_run
        WHERE area_id = :area AND profile_id = :profile AND period_kind = :kind
          AND period_label = :label AND status = 'running'
          AND heartbeat_at >= clock_timestamp() - make_interval(secs => :stale)
        ORDER BY id DESC LIMIT 1
    """),
        {
            "area": area_id,
            "profile": profile_id,
            "kind": period.kind,
            "label": period.label,
            "stale": STALE_AFTER_S,
        },
    )
    return int(found) if found is not None else None


def _previous_run(conn: Connection, area_id: int, profile_id: int, period: RunPeriod) -> int | None:
    """The newest published run of the period before (hotspot ids and labels follow it)."""
    found = _last_published(conn, area_id, profile_id, period.previous())
    return int(found["id"]) if found else None


@dataclass
class Gathered:
    """What a run read from the database: all its computation needs, as arrays and values
    (a Dask worker gets this and nothing else; it needs no database)."""

    run_input: computing.RunInput
    viewer_request: viewer.ViewerRequest
    answers: viewer.Answers
    analyst_counts: list[GroupCounts]
    in_period: npt.NDArray[np.bool_]  # the incidents of the run's own week or tertial
    flagged: tuple[int, Any, Any] | None  # the previous run's flagged forecast cells
    previous_run: int | None
    left_out: dict[str, int]


@dataclass
class Computed:
    """What `work` computed from a gathered run."""

    result: computing.RunResult
    layers: viewer.ViewerLayers
    analyst_figures: list[dict[str, Any]]
    figures: dict[str, Any]
    timings: dict[str, float]


def gather(conn: Connection, started: Started, stages: _Stages) -> Gathered:
    """Read the run's incidents, the previous run, the figures' counts and the viewer answers."""
    area, profile, period = started.area, started.profile, started.period
    # Every read below starts from the area's few incidents (est.incident_area) and fetches
    # their rows by key. With the default cost of a random read (4, made for spinning disks)
    # PostgreSQL would rather scan every incident of every area instead: four times slower at
    # a million incidents over 20 areas. The run's own reads say what its disks cost.
    conn.execute(text("SET LOCAL random_page_cost = 1.1"))
    srid = read_deployment(conn).srid
    tz = period.tz
    with stages.stage("read"):
        incidents = inputs.load_incidents(
            conn, area.id, started.start, period.end, profile.settings, tz
        )
        previous_run = _previous_run(conn, area.id, profile.id, period)
        previous = inputs.previous_hotspots(conn, previous_run, srid)
        flagged = (
            inputs.flagged_forecast(conn, previous_run)
            if previous_run is not None and period.kind == "week"
            else None
        )
    since, until = (
        np.datetime64(t.astimezone(UTC).replace(tzinfo=None), "us")
        for t in (period.start, period.end)
    )
    in_period = (incidents.time >= since) & (incidents.time < until)
    if period.kind == "week":
        window = computing.in_weeks(incidents.week, period.number, profile.settings.window_weeks)
    else:
        window = in_period
    run_input = computing.RunInput(
        xy=incidents.xy,
        time=incidents.time,
        week=incidents.week,
        category=incidents.category,
        window=window,
        run_week=period.number,
        week_end=pd.Timestamp(period.week_end),
        area=area.geom,
        tz=tz,
        crs=srid,
        settings=profile.settings,
        previous=previous,
    )
    with stages.stage("figures"):
        analyst_counts = inputs.figure_counts(conn, area.id, period.period, profile.settings, tz)
    request = viewer.ViewerRequest(
        area.code,
        area.geom,
        period.period,
        period.last_monday,
        profile.settings,
        tz,
        inputs.all_group_codes(conn),
    )
    with stages.stage("viewer answers"):
        answers = viewer.ask(conn, request)
    return Gathered(
        run_input,
        request,
        answers,
        analyst_counts,
        in_period,
        flagged,
        previous_run,
        incidents.left_out,
    )


def work(gathered: Gathered) -> Computed:
    """A run's computation, from what was gathered alone: the methods, the viewer layers
    and the figures. Pure: the same input always gives the same output, wherever it runs."""
    stages = _Stages(None)
    run = gathered.run_input
    with stages.stage("methods"):
        result = computing.compute(run)
    with stages.stage("viewer"):
        layers = viewer.make(
            gathered.viewer_request, gathered.answers, list(result.hotspots.geometry)
        )
    this_period = run.xy[gathered.in_period]
    figures: dict[str, Any] = {
        "concentration": computing.concentration(
            this_period, run.area, run.settings.methods.gistar.cell_size_m
        ),
        "forecast_score": forecast_score(
            gathered.previous_run, gathered.flagged, this_period, run.area
        ),
    }
    return Computed(result, layers, tested(gathered.analyst_counts), figures, stages.timings)


def store(
    conn: Connection,
    started: Started,
    gathered: Gathered,
    computed: Computed,
    stages: _Stages,
) -> Outcome:
    """Write everything the run computed, switch layer_current and record it succeeded."""
    job, area, profile = started.job, started.area, started.profile
    result, layers = computed.result, computed.layers
    srid = int(gathered.run_input.crs)  # the storage CRS, read when the run was gathered
    with stages.stage("write"):
        publish.write_results(conn, job.id, srid, result, layers)
        publish.write_figures(conn, job.id, "analyst", computed.analyst_figures)
        publish.write_figures(conn, job.id, "viewer", layers.figures)
        published = publish.publish(conn, job.id)
        if published:
            alerts.record_events(conn, job.id)
    counts = {
        **result.counts,
        "this_period": int(gathered.in_period.sum()),
        "hotspots": len(result.hotspots),
        "gone": len(result.gone),
        "density_cells": len(result.density),
        "gistar_cells": len(result.gistar),
        "emerging_cells": len(result.emerging),
        "forecast_cells": len(result.forecast),
        "viewer_cells": len(layers.cells),
    }
    provenance = {
        "incidents_used": result.counts["window"],
        "incidents_read": len(gathered.run_input.xy),
        "left_out": gathered.left_out,
        "previous_run": gathered.previous_run,
        "viewer_protection": layers.protection,
        "viewer_values": "est.viewer_grid shown counts of allowed periods",
    }
    job.finish(
        conn,
        parameters={"profile": profile.settings.model_dump(mode="json"), **result.parameters},
        timings=stages.timings,
        counts=counts,
        provenance=provenance,
        figures=computed.figures,
        notes={"analyst": result.notes, "viewer": layers.notes},
    )
    return Outcome(
        area.code,
        profile.name,
        started.period.label,
        "succeeded",
        job.id,
        "; ".join(f"{k}: {v}" for k, v in result.notes.items()),
        counts,
        stages.timings,
        published,
    )


def forecast_score(
    previous_run: int | None,
    flagged: tuple[int, Any, Any] | None,
    this_week: Any,
    area: Any,
) -> dict[str, Any] | None:
    """Last week's forecast against this week's incidents: hit rate, PAI and PEI*."""
    if previous_run is None or flagged is None:
        return None
    size, fx, fy = flagged
    if size == 0 or len(this_week) == 0:
        return {"run_id": previous_run, "incidents": len(this_week), "flagged_cells": len(fx)}
    ix, iy = cell_index(this_week[:, 0], this_week[:, 1], size)
    flagged_cells = set(zip(fx.tolist(), fy.tolist(), strict=True))
    hits = sum((a, b) in flagged_cells for a, b in zip(ix.tolist(), iy.tolist(), strict=True))
    ax, ay = cells_in_area(area, size)
    study = set(zip(ax.tolist(), ay.tolist(), strict=True))
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([ix, iy])).groupby(level=[0, 1]).sum()
    in_study = np.array([v for k, v in counts.items() if k in study], dtype=np.float64)
    n_events = float(in_study.sum())
    best = best_possible_hits(in_study, len(fx)) if len(in_study) else 0.0
    return {
        "run_id": previous_run,
        "incidents": int(n_events),
        "flagged_cells": len(fx),
        "hits": int(hits),
        "hit_rate": hit_rate(hits, n_events) if n_events else None,
        "pai": pai(hits, n_events, len(fx) * size**2, len(study) * size**2) if n_events else None,
        "pei_star": hits / best if best else None,
    }


def profiles_to_run(
    conn: Connection, area_codes: list[str] | None, profile_name: str | None
) -> list[tuple[str, Profile]]:
    """The (area, profile) pairs of a recompute: the areas given (or all), their active
    profiles (or the one named, default or kept by an organisation)."""
    chosen = list_profiles(conn) if area_codes is None else []
    for code in area_codes or []:
        found = list_profiles(conn, code)
        if not found:
            inputs.load_area(conn, code)  # NotFound for an unknown area
            raise NotFound(f"area {code} has no profile: load it with `est areas load`")
        chosen.extend(found)
    pairs = [
        (p.area_code, p)
        for p in chosen
        if p.active and (profile_name is None or p.name == profile_name)
    ]
    if profile_name == DEFAULT_PROFILE:  # the areas' own defaults, not organisations' namesakes
        pairs = [(code, p) for code, p in pairs if p.organisation_id is None]
    if profile_name is not None and area_codes and not pairs:
        raise NotFound(f"no active profile {profile_name!r} for {', '.join(area_codes)}")
    return pairs


def default_profile(conn: Connection, area_code: str) -> Profile:
    """The area's default profile."""
    found = find_profile(conn, area_code, DEFAULT_PROFILE, None)
    if found is None:
        raise NotFound(f"area {area_code} has no default profile")
    return found

"""What a report shows, read from an area's published run for one audience.

A report is of one run: the newest published run of the area, profile and period (an ISO week
or a tertial). A period without one is "not found", naming what is missing. Its audience
decides every value:

- viewer: only viewer values (app.access.privacy). Hotspots are their viewer versions (the
  shown cells they touch and their shown total, never a hull), figures the viewer figures, the
  trend, forecast and concentration come from the run's viewer cells, and weekly series are
  sums of est.viewer_grid's weekly answers in the hotspot's shown cells. Nothing that needs a
  single incident's time or place (busiest weekday and hour) is shown, nor how many incidents
  of sensitive categories were left out. A hotspot's change label is read from the viewer
  versions too: new when the analysts' label says so or the week before had no viewer version
  of it, else grown, shrunk or stable as its shown cells grew, shrank or stayed.
- analyst: the run's analyst version (hulls, exact counts, hotspot statistics), for analysts
  whose organisation holds a raw grant on the area, and for the system role (the command line).

Reads go through the caller's session, so the database's checks apply once more; the system
role's session asks est.viewer_grid as the nightly run does (privacy.as_system).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import shapely
from shapely import wkb as shapely_wkb
from sqlalchemy import Connection, text

from app.access import privacy
from app.core.errors import NotFound
from app.core.swedish import EMERGING_CLASSES
from app.reports.texts import HotspotName, ReportTexts, check_period, hotspot_names, read_texts
from app.runs import inputs
from app.runs.figures import figure_periods
from app.runs.profiles import DEFAULT_NAME, ProfileSettings, find_profile
from app.runs.recompute import RunPeriod
from clustering.evaluation import flagged_cell_count, hit_rate, pai
from geo.grid import cell_centres, cell_polygons, cells_in_area

Audience = Literal["viewer", "analyst"]
AUDIENCES: tuple[str, ...] = ("viewer", "analyst")
HOTTEST_SHARE = 0.05  # the concentration: the share of incidents in the hottest 5 % of cells
SERIES_WEEKS = 12
# A hotspot's emerging class when its cells hold several: the most pressing hot class.
HOT_CLASSES = (
    "intensifying_hot",
    "persistent_hot",
    "consecutive_hot",
    "new_hot",
    "sporadic_hot",
    "oscillating_hot",
    "diminishing_hot",
    "historical_hot",
)


def parse_period(label: str, tz: str, field: str = "period") -> RunPeriod:
    """An ISO week (2026-W48) or a tertial (2026-T3); InvalidInput naming `field` otherwise."""
    check_period(label, field)
    year, number = int(label[:4]), int(label[6:])
    if label[5] == "T":
        return RunPeriod.tertial(date(year, 4 * number - 3, 1), tz)
    return RunPeriod.week(date.fromisocalendar(year, number, 1), tz)


@dataclass(frozen=True)
class ReportRequest:
    """Which report: area, period, profile (the organisation's own of that name first) and
    audience."""

    area_code: str
    period: RunPeriod
    profile: str = DEFAULT_NAME
    audience: Audience = "viewer"
    organisation_id: int | None = None


@dataclass(frozen=True)
class Run:
    """The published run a report is made of."""

    id: int
    area_id: int
    area_code: str
    area_name: str
    boundary: Any
    profile_id: int
    profile: str
    provisional: bool
    published_at: datetime
    parameters: dict[str, Any]
    provenance: dict[str, Any]
    figures: dict[str, Any]
    notes: dict[str, dict[str, str]]
    code_version: str

    @property
    def settings(self) -> ProfileSettings:
        """The profile settings the run used (the defaults for a run that kept none)."""
        return ProfileSettings.model_validate(self.parameters.get("profile", {}))

    @property
    def previous_run(self) -> int | None:
        """The run of the period before, which this run's ids and labels follow."""
        found = self.provenance.get("previous_run")
        return int(found) if found is not None else None


@dataclass(frozen=True)
class GroupFigure:
    """A category group's counts this period against its baselines, and the three tests."""

    code: str
    name: str
    this: float
    previous: float
    last_year: float
    mean: float
    tests: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class HotspotRow:
    """A row of the hotspot table; `number` is the one the maps show."""

    number: int
    key: str
    name: str | None
    label: str
    count: int  # in the hotspot methods' window (a week's run) or the tertial
    last_week: int
    weekly: list[int]
    emerging: str | None
    busiest_weekday: int | None
    busiest_hour: int | None
    geometry: Any


@dataclass(frozen=True)
class Forecast:
    """Where the forecast of the coming week puts the highest risk, and last week's score."""

    cell_size_m: int
    cells: Any  # the flagged cells' union, or None
    flagged: int
    hotspots: list[int]  # numbers of the hotspots the flagged cells touch
    score: dict[str, Any] | None  # hit_rate, pai, hits, incidents, flagged_cells


@dataclass(frozen=True)
class Source:
    """A source's incidents in the period (viewers: rounded, None below k), last delivery."""

    organisation: str
    source: str
    incidents: int | None
    last_received: datetime | None


@dataclass
class Report:
    """Everything a report shows, for one audience."""

    request: ReportRequest
    run: Run
    protection: privacy.Protection
    figures: list[GroupFigure]
    series: list[tuple[str, int]]  # the profile's group: the baseline periods and this one
    hotspots: list[HotspotRow]
    gone: int
    emerging: list[tuple[str, int, float]]  # class, cells, km²
    emerging_cell_m: int
    concentration: tuple[float | None, float | None]  # this period, the one before
    concentration_cells: tuple[int, int]  # the cell size, and how many cells are the top 5 %
    forecast: Forecast | None
    sources: list[Source]
    texts: ReportTexts
    tatorter: list[Any] = field(default_factory=list)

    @property
    def viewer(self) -> bool:
        """Whether this is the viewer's version."""
        return self.request.audience == "viewer"

    @property
    def period(self) -> RunPeriod:
        """The report's week or tertial."""
        return self.request.period

    @property
    def changed(self) -> list[GroupFigure]:
        """The category groups with a change beyond chance in any of their tests."""
        return [f for f in self.figures if any(t.get("significant") for t in f.tests.values())]

    @property
    def k(self) -> int:
        """The privacy k: viewers never see a count below it."""
        return self.protection.suppression_k


def build(conn: Connection, request: ReportRequest, *, system: bool = False) -> Report:
    """Read what the report of `request` shows (system: the session is the system role's)."""
    if system:
        privacy.as_system(conn)
    run = find_run(conn, request)
    protected = privacy.protection(conn)
    names = hotspot_names(conn, run.area_code)
    viewer = request.audience == "viewer"
    if viewer:
        hotspots, gone = _viewer_hotspots(conn, run, request.period, protected, names, system)
        series = _viewer_series(conn, run, request.period, protected, system)
    else:
        hotspots, gone = _analyst_hotspots(conn, run, names)
        series = _analyst_series(conn, run, request.period)
    emerging, emerging_m = _emerging(conn, run, viewer)
    hotspots = _with_emerging(hotspots, emerging, emerging_m)
    return Report(
        request=request,
        run=run,
        protection=protected,
        figures=_figures(conn, run.id, request.audience),
        series=series,
        hotspots=hotspots,
        gone=gone,
        emerging=_emerging_summary(emerging, emerging_m),
        emerging_cell_m=emerging_m,
        concentration=_concentration(conn, run, viewer),
        concentration_cells=_top_cells(run, viewer),
        forecast=_forecast(conn, run, viewer, hotspots) if request.period.kind == "week" else None,
        sources=_sources(conn, run, request.period, exact=not viewer),
        texts=read_texts(conn, run.area_code, request.period.label),
        tatorter=_tatorter(conn, run),
    )


def find_run(conn: Connection, request: ReportRequest) -> Run:
    """The newest published run of the area, profile and period; NotFound saying what is
    missing."""
    area = conn.execute(
        text("SELECT id, name FROM est.area WHERE code = :c"), {"c": request.area_code}
    ).one_or_none()
    if area is None:
        raise NotFound(f"no area {request.area_code!r}")
    profile = None
    if request.organisation_id is not None:
        profile = find_profile(conn, request.area_code, request.profile, request.organisation_id)
    profile = profile or find_profile(conn, request.area_code, request.profile, None)
    if profile is None:
        raise NotFound(
            f"area {request.area_code} has no profile {request.profile!r}",
            missing="profile",
            profile=request.profile,
        )
    label = request.period.label
    row = conn.execute(
        text("""
        SELECT r.id, r.provisional, r.published_at, r.parameters, r.provenance, r.figures,
               r.notes, r.code_version, ST_AsBinary(a.geom) AS wkb
        FROM est.hotspot_run r JOIN est.area a ON a.id = r.area_id
        WHERE r.area_id = :area AND r.profile_id = :profile AND r.period_kind = :kind
          AND r.period_label = :label AND r.status = 'succeeded' AND r.published_at IS NOT NULL
        ORDER BY r.published_at DESC, r.id DESC LIMIT 1
    """),
        {"area": area.id, "profile": profile.id, "kind": request.period.kind, "label": label},
    ).one_or_none()
    if row is None:
        what = "week" if request.period.kind == "week" else "tertial"
        raise NotFound(
            f"no published run of {what} {label} for area {request.area_code} ({area.name}) "
            f"with profile {profile.name!r}: the report is made from it; the nightly run "
            f"publishes it, or an analyst starts one (POST /api/v1/runs, "
            f"est recompute --area {request.area_code} --week {label})",
            missing="published run",
            area=request.area_code,
            period=label,
            profile=profile.name,
        )
    return Run(
        id=row.id,
        area_id=area.id,
        area_code=request.area_code,
        area_name=area.name,
        boundary=shapely_wkb.loads(bytes(row.wkb)),
        profile_id=profile.id,
        profile=profile.name,
        provisional=row.provisional,
        published_at=row.published_at,
        parameters=row.parameters or {},
        provenance=row.provenance or {},
        figures=row.figures or {},
        notes=row.notes or {},
        code_version=row.code_version,
    )


def _figures(conn: Connection, run_id: int, audience: str) -> list[GroupFigure]:
    """The run's area figures of the audience: all categories first, then by name."""
    rows = conn.execute(
        text("""
        SELECT f.group_code, g.label_sv, f.this_week, f.last_week, f.same_week_last_year,
               f.mean_12_weeks, f.tests
        FROM est.area_figure f JOIN est.category_group g ON g.code = f.group_code
        WHERE f.run_id = :run AND f.audience = :audience
        ORDER BY f.group_code = 'all' DESC, g.label_sv
    """),
        {"run": run_id, "audience": audience},
    ).all()
    return [GroupFigure(*r) for r in rows]


def _hotspot_rows(conn: Connection, run_id: int | None, viewer: bool) -> list[Any]:
    """A run's hotspots that are not gone, with the audience's geometry (viewers: only those
    with a viewer version)."""
    if run_id is None:
        return []
    geometry = "h.viewer_geom" if viewer else "h.geom"
    return list(
        conn.execute(
            text(f"""
            SELECT h.hotspot_key, h.change_label::text AS label, h.incident_count,
                   h.viewer_count, h.stats, ST_AsBinary({geometry}) AS wkb
            FROM est.hotspot h
            WHERE h.run_id = :run AND h.change_label <> 'gone' AND {geometry} IS NOT NULL
            ORDER BY h.hotspot_key
        """),
            {"run": run_id},
        ).all()
    )


def _numbered(rows: list[HotspotRow]) -> list[HotspotRow]:
    """Numbered by count, largest first (ties by id): the table's and the maps' numbers."""
    ordered = sorted(rows, key=lambda r: (-r.count, r.key))
    return [_replace(r, number=i) for i, r in enumerate(ordered, start=1)]


def _replace(row: HotspotRow, **changes: Any) -> HotspotRow:
    """The row with some fields changed."""
    return HotspotRow(**{**row.__dict__, **changes})


def _analyst_hotspots(
    conn: Connection, run: Run, names: dict[str, HotspotName]
) -> tuple[list[HotspotRow], int]:
    """The analyst version's rows (hulls, exact counts, statistics) and how many are gone."""
    rows = []
    for r in _hotspot_rows(conn, run.id, viewer=False):
        weekly = [int(v) for v in r.stats.get("weekly", [])]
        rows.append(
            HotspotRow(
                number=0,
                key=r.hotspot_key,
                name=names[r.hotspot_key].name if r.hotspot_key in names else None,
                label=r.label,
                count=int(r.incident_count),
                last_week=weekly[-1] if weekly else 0,
                weekly=weekly,
                emerging=None,
                busiest_weekday=r.stats.get("busiest_weekday"),
                busiest_hour=r.stats.get("busiest_hour"),
                geometry=shapely_wkb.loads(bytes(r.wkb)),
            )
        )
    gone = conn.scalar(
        text("SELECT count(*) FROM est.hotspot WHERE run_id = :run AND change_label = 'gone'"),
        {"run": run.id},
    )
    return _numbered(rows), int(gone or 0)


def _mondays(period: RunPeriod) -> list[date]:
    """The Mondays of the SERIES_WEEKS weeks ending with the period's last whole week."""
    return [period.last_monday - timedelta(7 * k) for k in range(SERIES_WEEKS - 1, -1, -1)]


def _weekly_answers(
    conn: Connection,
    protected: privacy.Protection,
    area_code: str,
    cell_size_m: int,
    periods: list[privacy.Period],
    group: str,
    system: bool,
) -> list[privacy.Grid]:
    """est.viewer_grid's answer for each period: in one call for the system role, else one
    call each (the service's role may ask only one at a time)."""
    if system:
        answers = privacy.viewer_grids(conn, protected, area_code, cell_size_m, periods, [group])
        return [a[0] for a in answers]
    return [privacy.viewer_grid(conn, protected, area_code, cell_size_m, p, group) for p in periods]


def _viewer_hotspots(
    conn: Connection,
    run: Run,
    period: RunPeriod,
    protected: privacy.Protection,
    names: dict[str, HotspotName],
    system: bool,
) -> tuple[list[HotspotRow], int]:
    """The viewer version's rows (shown cells and totals, weekly shown sums) and how many
    hotspots of the run before had a viewer version and have none now."""
    settings = run.settings
    size = settings.cell_size_m
    weeks = [privacy.period_of("week", m) for m in _mondays(period)]
    grids = _weekly_answers(
        conn, protected, run.area_code, size, weeks, settings.category_group, system
    )
    before = {
        r.hotspot_key: shapely_wkb.loads(bytes(r.wkb)).area
        for r in _hotspot_rows(conn, run.previous_run, viewer=True)
    }
    rows = []
    keys = set()
    for r in _hotspot_rows(conn, run.id, viewer=True):
        geometry = shapely_wkb.loads(bytes(r.wkb))
        weekly = [_shown_inside(g, geometry) for g in grids]
        keys.add(r.hotspot_key)
        rows.append(
            HotspotRow(
                number=0,
                key=r.hotspot_key,
                name=names[r.hotspot_key].name if r.hotspot_key in names else None,
                label=_viewer_label(r.label, before.get(r.hotspot_key), geometry.area, size),
                count=int(r.viewer_count or 0),
                last_week=weekly[-1] if weekly else 0,
                weekly=weekly,
                emerging=None,
                busiest_weekday=None,
                busiest_hour=None,
                geometry=geometry,
            )
        )
    return _numbered(rows), len(set(before) - keys)


def _shown_inside(grid: privacy.Grid, geometry: Any) -> int:
    """The shown total of the grid's cells whose centres lie in the geometry."""
    if len(grid.ix) == 0:
        return 0
    x, y = cell_centres(grid.ix, grid.iy, grid.cell_size_m)
    return int(grid.count[shapely.contains_xy(geometry, x, y)].sum())


def _viewer_label(label: str, area_before: float | None, area_now: float, size: int) -> str:
    """A hotspot's change from its viewer versions (see the module docstring)."""
    if label == "new" or area_before is None:
        return "new"
    cells_now, cells_before = round(area_now / size**2), round(area_before / size**2)
    if cells_now > cells_before:
        return "grown"
    if cells_now < cells_before:
        return "shrunk"
    return "stable"


def _viewer_series(
    conn: Connection,
    run: Run,
    period: RunPeriod,
    protected: privacy.Protection,
    system: bool,
) -> list[tuple[str, int]]:
    """The profile group's shown totals of the figures' baseline periods and this one, at the
    largest cell size (as the viewer figures count them)."""
    periods = [*figure_periods(period.period)["baseline"], period.period]
    size = max(protected.cell_sizes)
    grids = _weekly_answers(
        conn, protected, run.area_code, size, periods, run.settings.category_group, system
    )
    return [(_short(p), int(g.count.sum())) for p, g in zip(periods, grids, strict=True)]


def _analyst_series(conn: Connection, run: Run, period: RunPeriod) -> list[tuple[str, int]]:
    """The profile group's exact counts of the figures' baseline periods and this one."""
    counts = inputs.figure_counts(conn, run.area_id, period.period, run.settings, period.tz)
    group = next(c for c in counts if c.group == run.settings.category_group)
    periods = [*figure_periods(period.period)["baseline"], period.period]
    values = [*group.baseline, group.this_period]
    return [(_short(p), int(v)) for p, v in zip(periods, values, strict=True)]


def _short(period: privacy.Period) -> str:
    """A period's label under a bar: v48, T3 2026."""
    if period.kind == "tertial":
        return f"{period.label[5:]} {period.label[:4]}"
    return f"v{period.first_day.isocalendar()[1]}"


@dataclass(frozen=True)
class _Cells:
    """Grid cells of one size and their emerging class."""

    ix: np.ndarray[Any, np.dtype[np.int64]]
    iy: np.ndarray[Any, np.dtype[np.int64]]
    pattern: np.ndarray[Any, np.dtype[np.object_]]


def _emerging(conn: Connection, run: Run, viewer: bool) -> tuple[_Cells, int]:
    """The run's emerging cells (viewers: of the viewer layer) and their cell size."""
    if viewer:
        sql = (
            "SELECT ix, iy, pattern FROM est.viewer_cell "
            "WHERE run_id = :run AND layer = 'emerging' ORDER BY iy, ix"
        )
        size = run.settings.cell_size_m
    else:
        sql = "SELECT ix, iy, pattern FROM est.emerging_cell WHERE run_id = :run ORDER BY iy, ix"
        size = int(run.parameters.get("emerging", {}).get("cell_size_m", 250))
    rows = conn.execute(text(sql), {"run": run.id}).all()
    return (
        _Cells(
            np.array([r.ix for r in rows], dtype=np.int64),
            np.array([r.iy for r in rows], dtype=np.int64),
            np.array([r.pattern for r in rows], dtype=object),
        ),
        size,
    )


def _touched(cells: Any, geometry: Any) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Indexes of the cells (polygons) that share area with the geometry."""
    tree = shapely.STRtree(cells)
    hit = tree.query(geometry, predicate="intersects")
    return np.array(
        [i for i in hit if shapely.area(shapely.intersection(cells[i], geometry)) > 0],
        dtype=np.int64,
    )


def _with_emerging(hotspots: list[HotspotRow], cells: _Cells, size: int) -> list[HotspotRow]:
    """Each hotspot with the most pressing hot class among the emerging cells it touches."""
    if len(cells.ix) == 0:
        return hotspots
    polygons = cell_polygons(cells.ix, cells.iy, size)
    out = []
    for row in hotspots:
        found = set(cells.pattern[_touched(polygons, row.geometry)].tolist())
        out.append(_replace(row, emerging=next((c for c in HOT_CLASSES if c in found), None)))
    return out


def _emerging_summary(cells: _Cells, size: int) -> list[tuple[str, int, float]]:
    """Per emerging class over the area: its cells and their km², in the classes' order."""
    patterns, n = np.unique(cells.pattern.astype(str), return_counts=True)
    found = dict(zip(patterns.tolist(), n.tolist(), strict=True))
    return [
        (name, int(found[name]), found[name] * size**2 / 1e6)
        for name in EMERGING_CLASSES
        if name in found
    ]


def _shown_counts(conn: Connection, run_id: int | None) -> list[int]:
    """The shown counts of a run's viewer cells of its period."""
    if run_id is None:
        return []
    return list(
        conn.scalars(
            text(
                "SELECT shown FROM est.viewer_cell WHERE run_id = :run AND layer = 'counts' "
                "AND shown > 0"
            ),
            {"run": run_id},
        )
    )


def _top_cells(run: Run, viewer: bool) -> tuple[int, int]:
    """The cell size the concentration is counted on, and how many cells are its top 5 %."""
    if viewer:
        size = run.settings.cell_size_m
    else:
        size = int(run.parameters.get("gistar", {}).get("cell_size_m", 250))
    return size, max(1, int(HOTTEST_SHARE * len(cells_in_area(run.boundary, size)[0])))


def top_share(counts: list[int], top_cells: int) -> float | None:
    """The share of the counts in the `top_cells` cells that hold most."""
    total = sum(counts)
    return sum(sorted(counts, reverse=True)[:top_cells]) / total if total else None


def _concentration(conn: Connection, run: Run, viewer: bool) -> tuple[float | None, float | None]:
    """The share of the period's incidents in the hottest 5 % of the area, and the period's
    before (viewers: of shown counts, on the viewer cells)."""
    if viewer:
        _, top = _top_cells(run, viewer)
        return (
            top_share(_shown_counts(conn, run.id), top),
            top_share(_shown_counts(conn, run.previous_run), top),
        )
    before = None
    if run.previous_run is not None:
        figures = conn.scalar(
            text("SELECT figures FROM est.hotspot_run WHERE id = :id"), {"id": run.previous_run}
        )
        before = (figures or {}).get("concentration")
    return run.figures.get("concentration"), before


def _flagged(conn: Connection, run_id: int | None, viewer: bool, area: Any) -> tuple[int, Any]:
    """The flagged forecast cells of a run: cell size and (ix, iy) arrays."""
    if run_id is None:
        return 0, (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if viewer:
        rows = conn.execute(
            text(
                "SELECT cell_size_m, ix, iy FROM est.viewer_cell "
                "WHERE run_id = :run AND layer = 'forecast' ORDER BY bin, iy, ix"
            ),
            {"run": run_id},
        ).all()
        coverage = conn.scalar(
            text(
                "SELECT parameters -> 'forecast' ->> 'coverage' FROM est.hotspot_run WHERE id = :r"
            ),
            {"r": run_id},
        )
        if rows:
            size = rows[0].cell_size_m
            n = flagged_cell_count(len(cells_in_area(area, size)[0]), float(coverage or 0.05))
            rows = rows[:n]
    else:
        rows = conn.execute(
            text(
                "SELECT cell_size_m, ix, iy FROM est.forecast_cell "
                "WHERE run_id = :run AND flagged ORDER BY rank"
            ),
            {"run": run_id},
        ).all()
    size = rows[0].cell_size_m if rows else 0
    return size, (
        np.array([r.ix for r in rows], dtype=np.int64),
        np.array([r.iy for r in rows], dtype=np.int64),
    )


def _forecast(conn: Connection, run: Run, viewer: bool, hotspots: list[HotspotRow]) -> Forecast:
    """Next week's flagged cells, the hotspots they touch, and last week's score."""
    size, (ix, iy) = _flagged(conn, run.id, viewer, run.boundary)
    cells = shapely.union_all(cell_polygons(ix, iy, size)) if len(ix) else None
    touched = [
        h.number
        for h in hotspots
        if cells is not None and shapely.area(shapely.intersection(cells, h.geometry)) > 0
    ]
    score = _viewer_score(conn, run) if viewer else run.figures.get("forecast_score")
    return Forecast(size, cells, len(ix), touched, score)


def _viewer_score(conn: Connection, run: Run) -> dict[str, Any] | None:
    """Last week's viewer forecast against this week's shown counts: hit rate and PAI."""
    size, (fx, fy) = _flagged(conn, run.previous_run, True, run.boundary)
    if run.previous_run is None or size == 0:
        return None
    rows = conn.execute(
        text(
            "SELECT ix, iy, shown FROM est.viewer_cell WHERE run_id = :run AND layer = 'counts' "
            "AND cell_size_m = :size AND shown > 0"
        ),
        {"run": run.id, "size": size},
    ).all()
    flagged = set(zip(fx.tolist(), fy.tolist(), strict=True))
    total = sum(r.shown for r in rows)
    hits = sum(r.shown for r in rows if (r.ix, r.iy) in flagged)
    study = len(cells_in_area(run.boundary, size)[0])
    if not total:
        return {"incidents": 0, "flagged_cells": len(fx)}
    return {
        "incidents": total,
        "hits": hits,
        "flagged_cells": len(fx),
        "hit_rate": hit_rate(hits, total),
        "pai": pai(hits, total, len(fx) * size**2, study * size**2),
    }


def _sources(conn: Connection, run: Run, period: RunPeriod, exact: bool) -> list[Source]:
    """Per organisation and source: the period's incidents and the last delivery
    (est.report_sources decides what the caller may be told)."""
    rows = conn.execute(
        text("SELECT * FROM est.report_sources(:area, :since, :until, :exact)"),
        {"area": run.area_code, "since": period.start, "until": period.end, "exact": exact},
    ).all()
    return [Source(r.organisation, r.source, r.incidents, r.last_received) for r in rows]


def _tatorter(conn: Connection, run: Run) -> list[Any]:
    """The parts of loaded tätorter (areas of kind tatort) inside the area."""
    rows = conn.scalars(
        text("""
        SELECT ST_AsBinary(ST_Intersection(t.geom, a.geom))
        FROM est.area t JOIN est.area a ON a.id = :area
        WHERE t.kind = 'tatort' AND ST_Intersects(t.geom, a.geom)
    """),
        {"area": run.area_id},
    ).all()
    return [shapely_wkb.loads(bytes(w)) for w in rows]

"""The viewer versions of a run's layers and figures, from shown counts only.

Every value here starts as an answer of est.viewer_grid (app.access.privacy): the weekly shown
counts of the profile's cell size (already suppressed, perturbed and rounded in the database),
and sums of them. The methods then run on those counts as weights at the cells' centres, so a
viewer layer tells nothing the weekly answers do not already tell:

- counts: the run's week;
- density, gistar: the profile's window (sum of its weeks);
- emerging: the weekly counts of the trend's weeks, each at its week's middle;
- forecast: prospective risk from the shown counts of the recent weeks;
- hotspots: for each analyst hotspot, the shown cells it touches and their total
  (privacy.covered_cells); a hotspot that touches no shown cell has no viewer version;
- figures: the area's shown totals per category group, at the largest cell size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from app.access import privacy
from app.runs.compute import NO_PATTERN, ranked_cells
from app.runs.figures import GroupCounts, figure_periods, tested
from app.runs.profiles import ProfileSettings
from clustering.emerging import EmergingHotspots
from clustering.gistar import GiStar, TooFewIncidents
from clustering.kde import KernelDensity
from clustering.weeks import week_numbers
from geo.grid import cell_centres, cell_polygons, cells_in_area

LAYERS = ("counts", "density", "gistar", "emerging", "forecast")
CELL_COLUMNS = ["layer", "cell_size_m", "ix", "iy", "shown", "value", "bin", "pattern"]


@dataclass
class ViewerLayers:
    """A run's viewer cells (all layers), its hotspots' viewer versions and its figures."""

    cells: pd.DataFrame
    hotspots: list[tuple[shapely.Geometry | None, int | None]]
    figures: list[dict[str, Any]]
    notes: dict[str, str] = field(default_factory=dict)
    protection: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewerRequest:
    """What the viewer layers of one run are built for."""

    area_code: str
    area: shapely.Geometry
    period: privacy.Period  # the run's week or tertial
    last_monday: date  # the Monday of its last whole week
    settings: ProfileSettings
    tz: str
    groups: list[str]


@dataclass
class Answers:
    """The est.viewer_grid answers a run's viewer layers are built from (read by `ask`)."""

    weekly: list[privacy.Grid]  # the weeks the layers need, oldest first
    this: privacy.Grid  # the run's week, or its tertial
    window: privacy.Grid  # the hotspot methods' window: summed weeks, or the tertial
    figures: list[GroupCounts]  # the area's shown totals per category group
    protection: dict[str, object]


def ask(conn: Connection, request: ViewerRequest) -> Answers:
    """Ask est.viewer_grid (through est.viewer_grids) for everything the layers need."""
    protected = privacy.protection(conn)
    privacy.as_system(conn)
    s = request.settings
    size = s.cell_size_m
    weeks = max(s.window_weeks, s.methods.emerging.window_weeks, s.methods.forecast.weeks)
    mondays = [request.last_monday - timedelta(7 * k) for k in range(weeks - 1, -1, -1)]
    weekly = privacy.weekly_grids(
        conn, protected, request.area_code, size, mondays, s.category_group
    )
    if request.period.kind == "week":
        this = weekly[-1]
        window = privacy.summed(weekly[-s.window_weeks :], size)
    else:  # a tertial is an allowed period of its own: one answer, counted over all of it
        this = privacy.viewer_grid(
            conn, protected, request.area_code, size, request.period, s.category_group
        )
        window = this
    figures = _figure_counts(conn, protected, request)
    return Answers(weekly, this, window, figures, protected.describe())


def make(request: ViewerRequest, answers: Answers, hotspot_polygons: list[Any]) -> ViewerLayers:
    """Every viewer layer, the hotspots' viewer versions and the figures, from the answers
    alone (no database: this runs where the methods run)."""
    s = request.settings
    size = s.cell_size_m
    weekly, this, window = answers.weekly, answers.this, answers.window
    mondays = [g.period.first_day for g in weekly]
    notes: dict[str, str] = {}
    frames = [_cells("counts", this, shown=this.count)]
    frames.append(_density(request, window, notes))
    frames.append(_gistar(request, window, notes))
    frames.append(_emerging(request, weekly[-s.methods.emerging.window_weeks :], notes))
    frames.append(_forecast(request, weekly, mondays, notes))
    present = [f for f in frames if len(f)]
    cells = pd.concat(present, ignore_index=True) if present else _no_cells()
    cells = cells.reindex(columns=CELL_COLUMNS)
    hotspots: list[tuple[shapely.Geometry | None, int | None]] = []
    for hit, shown in privacy.covered_cells(window, hotspot_polygons):
        if len(hit) == 0:
            hotspots.append((None, None))
            continue
        union = shapely.union_all(cell_polygons(window.ix[hit], window.iy[hit], size))
        hotspots.append((union, shown))
    return ViewerLayers(cells, hotspots, tested(answers.figures), notes, answers.protection)


def build(conn: Connection, request: ViewerRequest, hotspot_polygons: list[Any]) -> ViewerLayers:
    """Ask est.viewer_grid for the weeks the layers need and build every viewer layer."""
    return make(request, ask(conn, request), hotspot_polygons)


def _no_cells() -> pd.DataFrame:
    return pd.DataFrame(columns=CELL_COLUMNS)


def _cells(layer: str, grid: privacy.Grid, **columns: Any) -> pd.DataFrame:
    return _as_layer(
        pd.DataFrame({"ix": grid.ix, "iy": grid.iy, **columns}), layer, grid.cell_size_m
    )


def _as_layer(frame: pd.DataFrame, layer: str, cell_size_m: int) -> pd.DataFrame:
    """A layer's cells with its name and cell size (build orders the columns)."""
    return frame.assign(layer=layer, cell_size_m=cell_size_m)


def _centres(grid: privacy.Grid) -> np.ndarray[Any, np.dtype[np.float64]]:
    x, y = cell_centres(grid.ix, grid.iy, grid.cell_size_m)
    return np.column_stack([x, y])


def _density(request: ViewerRequest, window: privacy.Grid, notes: dict[str, str]) -> pd.DataFrame:
    size = request.settings.cell_size_m
    if window.count.sum() < 2:
        notes["density"] = "not computed: fewer than 2 incidents shown in the window"
        return _no_cells()
    bandwidth = request.settings.methods.kde.bandwidth_m
    model = KernelDensity(cell_size_m=size, bandwidth_m=max(bandwidth or 0.0, size) or None)
    try:
        model.fit(_centres(window), weights=window.count, area=request.area)
    except ValueError as exc:
        notes["density"] = f"not computed: {exc}"
        return _no_cells()
    cells = model.to_cells(geometry=False)
    frame = pd.DataFrame({"ix": cells["ix"], "iy": cells["iy"], "value": cells["density"]})
    return _as_layer(frame, "density", size)


def _gistar(request: ViewerRequest, window: privacy.Grid, notes: dict[str, str]) -> pd.DataFrame:
    settings = request.settings.methods.gistar
    size = request.settings.cell_size_m
    shown = int(window.count.sum())
    if shown < settings.min_incidents:  # the shown incidents, not the cells that hold them
        notes["gistar"] = (
            f"not computed: {shown} incidents shown, Gi* needs {settings.min_incidents}"
        )
        return _no_cells()
    model = GiStar(
        cell_size_m=size, distance_band_m=max(settings.distance_band_m, size), min_incidents=1
    )
    try:
        model.fit(_centres(window), weights=window.count, area=request.area)
    except TooFewIncidents as exc:
        notes["gistar"] = f"not computed: {exc.got} incidents shown, Gi* needs {exc.needed}"
        return _no_cells()
    cells = model.to_cells(geometry=False)
    frame = pd.DataFrame(
        {
            "ix": cells["ix"],
            "iy": cells["iy"],
            "shown": cells["count"].round().astype("Int64"),
            "value": cells["z"],
            "bin": cells["bin"].astype(int),
        }
    )
    return _as_layer(frame, "gistar", size)


def _mid_week(monday: date, tz: str) -> datetime:
    noon = datetime(monday.year, monday.month, monday.day, 12, tzinfo=ZoneInfo(tz))
    return noon + timedelta(days=3)


def _emerging(
    request: ViewerRequest, weekly: list[privacy.Grid], notes: dict[str, str]
) -> pd.DataFrame:
    settings = request.settings.methods.emerging
    size = request.settings.cell_size_m
    xy = np.concatenate([_centres(g) for g in weekly]) if weekly else np.zeros((0, 2))
    times = pd.DatetimeIndex(
        [_mid_week(g.period.first_day, request.tz) for g in weekly for _ in range(len(g.ix))]
    )
    weights = np.concatenate([g.count for g in weekly]).astype(np.float64)
    model = EmergingHotspots(
        cell_size_m=size,
        distance_band_m=max(settings.distance_band_m, size),
        window_steps=settings.window_weeks,
        min_incidents=settings.min_incidents,
        tz=request.tz,
    )
    end = datetime.combine(
        request.last_monday + timedelta(7), datetime.min.time(), ZoneInfo(request.tz)
    )
    try:
        model.fit(xy, times, weights=weights, area=request.area, end=end)
    except TooFewIncidents as exc:
        notes["emerging"] = f"not computed: {exc.got} incidents shown, trends need {exc.needed}"
        return _no_cells()
    cells = model.to_cells(geometry=False)
    frame = pd.DataFrame(
        {
            "ix": cells["ix"],
            "iy": cells["iy"],
            "value": cells["trend_z"],
            "pattern": cells["pattern"],
        }
    )
    frame = frame[~frame["pattern"].isin(["", NO_PATTERN])]
    return _as_layer(frame, "emerging", size)


def _forecast(
    request: ViewerRequest,
    weekly: list[privacy.Grid],
    mondays: list[date],
    notes: dict[str, str],
) -> pd.DataFrame:
    settings = request.settings.methods.forecast
    size = request.settings.cell_size_m
    recent = weekly[-settings.weeks :]
    numbers = week_numbers(
        pd.DatetimeIndex([_mid_week(m, request.tz) for m in mondays]), request.tz
    )
    run_week = int(numbers[-1])
    counts = np.concatenate([g.count for g in recent]) if recent else np.zeros(0, np.int64)
    if counts.sum() == 0:
        notes["forecast"] = f"not computed: nothing shown in the last {settings.weeks} weeks"
        return _no_cells()
    xy = np.repeat(np.concatenate([_centres(g) for g in recent]), counts, axis=0)
    labels = [np.full(len(g.ix), n) for g, n in zip(recent, numbers[-len(recent) :], strict=True)]
    week = np.repeat(np.concatenate(labels), counts).astype(np.int64)
    ix, iy = cells_in_area(request.area, size)
    # On the viewer's grid, a reach below one cell would reach no neighbour.
    model = settings.estimator(
        cell_size_m=size,
        bandwidth_m=max(settings.bandwidth_m, size),
        distance_band_m=max(settings.distance_band_m, size),
    )
    try:
        model.fit(xy, week, run_week + 1, cells=(ix, iy), area=request.area)
    except ValueError as exc:  # Gi*'s TooFewIncidents, a bandwidth the grid cannot resolve
        notes["forecast"] = f"not computed: {exc}"
        return _no_cells()
    ranked = ranked_cells(ix, iy, model.risk_, settings.coverage, model.tiebreak_)
    frame = pd.DataFrame(
        {"ix": ranked["ix"], "iy": ranked["iy"], "value": ranked["risk"], "bin": ranked["rank"]}
    )
    return _as_layer(frame, "forecast", size)


def _figure_counts(
    conn: Connection, protected: privacy.Protection, request: ViewerRequest
) -> list[GroupCounts]:
    """The shown totals of the area per category group (largest cell size: least rounding)."""
    size = max(protected.cell_sizes)
    named = figure_periods(request.period)
    periods = [p for ps in named.values() for p in ps]
    answers = privacy.viewer_grids(
        conn, protected, request.area_code, size, periods, list(request.groups)
    )
    groups = []
    for j, group in enumerate(request.groups):
        totals: dict[str, list[int]] = {}
        i = 0
        for name, ps in named.items():
            totals[name] = [int(answers[i + k][j].count.sum()) for k in range(len(ps))]
            i += len(ps)
        groups.append(
            GroupCounts(
                group,
                totals["this_period"][0],
                totals["previous_period"][0],
                totals["same_period_last_year"][0],
                tuple(totals["baseline"]),
            )
        )
    return groups

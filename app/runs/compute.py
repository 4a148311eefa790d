"""What a run computes from its incidents, without a database: the methods of one profile.

The input is the area's incidents of the weeks the methods need (metres in the storage CRS,
times, local week numbers), the week the run is for, the area's polygon and the profile's
settings. Each method runs on the weeks it is defined for, all ending where the run's week ends:

- DBSCAN hotspots over the window (a week's run: the profile's `window_weeks` weeks ending
  with it; a tertial's run: the tertial), as buffered hulls of the members
  with counts per category and per week over the last 12 weeks, first and last time, busiest
  weekday and hour; they inherit the previous published run's ids where they overlap
  (clustering.identity), with a change label, and the ones that vanished are listed as gone;
- kernel density cells over the same window, each with the smallest isopleth share it lies in;
- Gi* cells with Benjamini–Hochberg bins over the same window;
- the emerging-hotspot class of every cell over the last `emerging.window_weeks` whole weeks;
- the forecast for the week after, as cells ranked by risk, the top `coverage` flagged.

A method that cannot run (too few incidents, too few weeks) is not an error: it is recorded as
a note and the rest is computed. Viewer versions are built elsewhere (app.runs.viewer), from
shown counts only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from app.runs.profiles import ProfileSettings
from clustering.cluster_polygons import cluster_polygons
from clustering.dbscan import DBSCAN
from clustering.emerging import NO_PATTERN, EmergingHotspots
from clustering.evaluation import default_min_samples, flagged_cell_count
from clustering.gistar import GiStar, TooFewIncidents
from clustering.identity import match_hotspots
from clustering.kde import KernelDensity
from geo.grid import cell_index, cells_in_area

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SERIES_WEEKS = 12  # the weekly series kept per hotspot (the map page and report chart it)
KDE_MIN_INCIDENTS = 2


@dataclass(frozen=True)
class RunInput:
    """The incidents a run may use and what it is for (see the module docstring)."""

    xy: FloatArray  # (n, 2) metres, storage CRS
    time: npt.NDArray[np.datetime64]  # UTC, naive
    week: IntArray  # local week numbers (clustering.weeks)
    category: npt.NDArray[np.object_]
    window: npt.NDArray[np.bool_]  # the incidents of the hotspot methods' window
    run_week: int  # the run's last whole week
    week_end: pd.Timestamp  # the Monday 00:00 local that closes it (tz-aware)
    area: shapely.Geometry
    tz: str
    crs: Any
    settings: ProfileSettings
    previous: gpd.GeoDataFrame | None = None  # the last published hotspots: id, geometry


@dataclass
class RunResult:
    """The analyst layers of a run, the estimators' parameters and the notes."""

    hotspots: gpd.GeoDataFrame
    gone: gpd.GeoDataFrame
    density: pd.DataFrame  # ix, iy, density, isopleth
    gistar: pd.DataFrame  # ix, iy, count, z, p, p_adjusted, bin
    emerging: pd.DataFrame  # ix, iy, pattern, trend_z, trend_p, hot_steps, cold_steps
    forecast: pd.DataFrame  # ix, iy, risk, rank, flagged
    parameters: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def in_weeks(week: IntArray, last: int, weeks: int) -> npt.NDArray[np.bool_]:
    """Which week numbers fall in the `weeks` weeks that end with week `last`."""
    return (week > last - weeks) & (week <= last)


def compute(run: RunInput) -> RunResult:
    """Run every method of the profile on the run's incidents."""
    window = run.window
    xy = run.xy[window]
    result = RunResult(
        hotspots=_empty_frame(run.crs),
        gone=_empty_frame(run.crs),
        density=pd.DataFrame(columns=["ix", "iy", "density", "isopleth"]),
        gistar=pd.DataFrame(columns=["ix", "iy", "count", "z", "p", "p_adjusted", "bin"]),
        emerging=pd.DataFrame(
            columns=["ix", "iy", "pattern", "trend_z", "trend_p", "hot_steps", "cold_steps"]
        ),
        forecast=pd.DataFrame(columns=["ix", "iy", "risk", "rank", "flagged"]),
    )
    result.counts = {"window": int(window.sum()), "loaded": len(run.xy)}
    _dbscan(run, window, result)
    _density(run, xy, result)
    _gistar(run, xy, result)
    _emerging(run, result)
    _forecast(run, result)
    return result


def _empty_frame(crs: Any) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": pd.Series(dtype=object)}, geometry=[], crs=crs)


def _dbscan(run: RunInput, window: npt.NDArray[np.bool_], result: RunResult) -> None:
    settings = run.settings.methods.dbscan
    xy = run.xy[window]
    area_m2 = float(run.area.area)
    min_samples = settings.min_samples or default_min_samples(len(xy), settings.eps_m, area_m2)
    model = DBSCAN(eps_m=settings.eps_m, min_samples=min_samples)
    result.parameters["dbscan"] = model.get_params()
    if len(xy) < min_samples:
        result.notes["dbscan"] = (
            f"no hotspots: {len(xy)} incidents, DBSCAN needs {min_samples} close together"
        )
        return
    labels = model.fit(xy).labels_
    if labels.max(initial=-1) < 0:
        result.notes["dbscan"] = (
            f"no hotspots: no {min_samples} incidents within {settings.eps_m:g} m"
        )
        return
    polygons = cluster_polygons(
        xy,
        labels,
        eps_m=settings.eps_m,
        categories=run.category[window],
        times=run.time[window],
        tz=run.tz,
        crs=run.crs,
    )
    polygons["weekly"], polygons["weekly_by_category"] = series_in_polygons(
        run, polygons.geometry.to_numpy()
    )
    previous = run.previous if run.previous is not None else _empty_frame(run.crs)
    matched = match_hotspots(previous.set_crs(run.crs, allow_override=True), polygons)
    result.hotspots = matched.current
    result.gone = matched.gone


def series_in_polygons(
    run: RunInput, polygons: Any
) -> tuple[list[list[int]], list[dict[str, int]]]:
    """Per polygon, its incidents per week over the last SERIES_WEEKS weeks (oldest first), and
    per category over those weeks: how the place developed, not only this window's members."""
    recent = in_weeks(run.week, run.run_week, SERIES_WEEKS)
    xy, week, category = run.xy[recent], run.week[recent], run.category[recent]
    first = run.run_week - SERIES_WEEKS + 1
    weekly, by_category = [], []
    for polygon in polygons:
        inside = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
        counts = np.bincount(week[inside] - first, minlength=SERIES_WEEKS)
        weekly.append([int(c) for c in counts])
        codes, n = np.unique(category[inside].astype(str), return_counts=True)
        by_category.append({str(c): int(k) for c, k in zip(codes, n, strict=True)})
    return weekly, by_category


def _density(run: RunInput, xy: FloatArray, result: RunResult) -> None:
    settings = run.settings.methods.kde
    model = KernelDensity(
        cell_size_m=settings.cell_size_m, bandwidth_m=settings.bandwidth_m, kernel=settings.kernel
    )
    result.parameters["kde"] = model.get_params()
    if len(xy) < KDE_MIN_INCIDENTS:
        result.notes["kde"] = (
            f"not computed: {len(xy)} incidents, kernel density needs {KDE_MIN_INCIDENTS}"
        )
        return
    try:
        model.fit(xy, area=run.area)
    except ValueError as exc:  # no spread to choose a bandwidth from, an area without cells
        result.notes["kde"] = f"not computed: {exc}"
        return
    result.parameters["kde"]["bandwidth_m_used"] = float(model.bandwidth_m_)
    cells = pd.DataFrame(model.to_cells(geometry=False))
    cells["isopleth"] = isopleth_shares(cells["density"].to_numpy(), cells["ix"], cells["iy"])
    result.density = cells


def isopleth_shares(density: FloatArray, ix: Any, iy: Any) -> FloatArray:
    """Per cell, the smallest share of the mass whose isopleth holds it (cumulative, high first).

    Ranked as clustering.isopleths ranks cells (density down, then iy, then ix), so a cell
    with share <= 0.5 lies in the 50% isopleth density_isopleths draws.
    """
    values = np.asarray(density, dtype=np.float64)
    if values.size == 0:
        return values
    order = np.lexsort((np.asarray(ix), np.asarray(iy), -values))
    cumulative = np.cumsum(values[order]) / values.sum()
    shares = np.empty_like(values)
    shares[order] = cumulative
    return shares


def _gistar(run: RunInput, xy: FloatArray, result: RunResult) -> None:
    settings = run.settings.methods.gistar
    model = GiStar(
        cell_size_m=settings.cell_size_m,
        distance_band_m=settings.distance_band_m,
        min_incidents=settings.min_incidents,
    )
    result.parameters["gistar"] = model.get_params()
    try:
        model.fit(xy, area=run.area)
    except TooFewIncidents as exc:
        result.notes["gistar"] = f"not computed: {exc.got} incidents, Gi* needs {exc.needed}"
        return
    cells = pd.DataFrame(model.to_cells(geometry=False))
    cells["count"] = cells["count"].round().astype(np.int64)
    # stored: the cells with incidents or a significant z (the others are the quiet rest)
    result.gistar = cells[(cells["count"] > 0) | (cells["bin"] != 0)].reset_index(drop=True)


def _emerging(run: RunInput, result: RunResult) -> None:
    settings = run.settings.methods.emerging
    model = EmergingHotspots(
        cell_size_m=settings.cell_size_m,
        distance_band_m=settings.distance_band_m,
        window_steps=settings.window_weeks,
        min_incidents=settings.min_incidents,
        tz=run.tz,
    )
    result.parameters["emerging"] = model.get_params()
    weeks = in_weeks(run.week, run.run_week, settings.window_weeks)
    try:
        model.fit(run.xy[weeks], run.time[weeks], area=run.area, end=run.week_end)
    except TooFewIncidents as exc:
        result.notes["emerging"] = (
            f"not computed: {exc.got} incidents in {settings.window_weeks} weeks, "
            f"trends need {exc.needed}"
        )
        return
    cells = pd.DataFrame(model.to_cells(geometry=False))
    result.emerging = cells[~cells["pattern"].isin(["", NO_PATTERN])].reset_index(drop=True)


def _forecast(run: RunInput, result: RunResult) -> None:
    settings = run.settings.methods.forecast
    ix, iy = cells_in_area(run.area, settings.cell_size_m)
    recent = in_weeks(run.week, run.run_week, settings.weeks)
    model = settings.estimator()
    result.parameters["forecast"] = model.method_params() | {"coverage": settings.coverage}
    if not recent.any():
        result.notes["forecast"] = f"not computed: no incidents in the last {settings.weeks} weeks"
        return
    try:
        model.fit(
            run.xy[recent],
            run.week[recent],
            run.run_week + 1,
            cells=(ix, iy),
            area=run.area,
            categories=run.category[recent],
        )
    except ValueError as exc:  # Gi*'s TooFewIncidents, a bandwidth the grid cannot resolve
        result.notes["forecast"] = f"not computed: {exc}"
        return
    result.forecast = ranked_cells(ix, iy, model.risk_, settings.coverage, model.tiebreak_)


def cell_counts(xy: FloatArray, ix: IntArray, iy: IntArray, cell_size_m: float) -> FloatArray:
    """How many of the points lie in each of the cells (ix, iy)."""
    if len(ix) == 0:
        return np.zeros(0)
    px, py = cell_index(xy[:, 0], xy[:, 1], cell_size_m)
    keys = pd.MultiIndex.from_arrays([ix, iy])
    found = pd.Series(1.0, index=pd.MultiIndex.from_arrays([px, py])).groupby(level=[0, 1]).sum()
    return found.reindex(keys, fill_value=0.0).to_numpy(dtype=np.float64)


def ranked_cells(
    ix: IntArray,
    iy: IntArray,
    risk: FloatArray,
    coverage: float,
    tiebreak: FloatArray | None = None,
) -> pd.DataFrame:
    """Cells of positive risk ranked highest first, the top `coverage` of the area's cells
    flagged. Equal risks (common at small counts) are ranked by `tiebreak` (the forecast's
    incidents in the cell and its eight neighbours, highest first), then by iy, ix."""
    second = np.zeros(len(ix)) if tiebreak is None else np.asarray(tiebreak, dtype=np.float64)
    order = np.lexsort((ix, iy, -second, -risk))
    positive = order[risk[order] > 0]
    flagged = min(flagged_cell_count(len(ix), coverage), len(positive))
    return pd.DataFrame(
        {
            "ix": ix[positive],
            "iy": iy[positive],
            "risk": risk[positive],
            "rank": np.arange(1, len(positive) + 1),
            "flagged": np.arange(len(positive)) < flagged,
        }
    )


def concentration(xy: FloatArray, area: shapely.Geometry, cell_size_m: float) -> float | None:
    """The share of the incidents in the hottest 5% of the area's cells (None without any)."""
    ix, iy = cells_in_area(area, cell_size_m)
    if len(xy) == 0 or len(ix) == 0:
        return None
    counts = np.sort(cell_counts(xy, ix, iy, cell_size_m))[::-1]
    top = max(1, math.floor(0.05 * len(ix)))
    inside = counts.sum()
    return float(counts[:top].sum() / inside) if inside else None

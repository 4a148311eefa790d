"""Synthetic incidents with known hotspots, deterministic for a seed.

One generator serves the demo, the tests and the benchmarks. Every hotspot is a Gaussian blob
with a temporal profile (persisting, emerging, fading), so a method can be checked against the
truth it was made from: which points came from which hotspot, and how each one changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely

Trend = Literal["persisting", "emerging", "fading"]
TRENDS: tuple[Trend, ...] = ("persisting", "emerging", "fading")


@dataclass(frozen=True)
class HotspotSpec:
    """A hotspot to generate: centre and spread in metres, its share of the hotspot incidents,
    its trend over the period and the categories it produces (code -> relative weight)."""

    x_m: float
    y_m: float
    sigma_m: float
    weight: float = 1.0
    trend: Trend = "persisting"
    categories: dict[str, float] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class SyntheticIncidents:
    """Generated incidents: coordinates (metres), UTC times, category codes and the hotspot
    each came from (-1 for background)."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    time: npt.NDArray[np.datetime64]
    category: npt.NDArray[np.str_]
    hotspot: npt.NDArray[np.int64]
    hotspots: tuple[HotspotSpec, ...]

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def xy(self) -> npt.NDArray[np.float64]:
        """The coordinates as an (n, 2) array."""
        return np.column_stack([self.x, self.y])


def trend_profile(trend: Trend, weeks: int) -> npt.NDArray[np.float64]:
    """Return the relative weekly intensity (summing to 1) of a hotspot with the given trend.

    persisting: flat; emerging: nothing in the first half, then rising; fading: high at the start,
    falling to nothing in the last third.
    """
    t = (np.arange(weeks) + 0.5) / weeks
    if trend == "persisting":
        p = np.ones(weeks)
    elif trend == "emerging":
        p = np.clip((t - 0.5) / 0.5, 0.0, None)
    elif trend == "fading":
        p = np.clip(1.0 - t / (2.0 / 3.0), 0.0, None)
    else:
        raise ValueError(f"unknown trend {trend!r}; use one of {', '.join(TRENDS)}")
    return p / p.sum()


# Incidents cluster in the evening and at night; this is the relative share per hour of day.
_HOURLY = np.array(
    [5, 4, 3, 2, 1, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 5, 6, 7, 8, 9, 9, 9, 8, 6], dtype=np.float64
)
_HOURLY /= _HOURLY.sum()


def generate_incidents(
    hotspots: Sequence[HotspotSpec],
    n: int,
    *,
    start: datetime,
    weeks: int,
    background_share: float = 0.3,
    background_area: shapely.Geometry | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    background_categories: dict[str, float] | None = None,
    seed: int = 0,
) -> SyntheticIncidents:
    """Generate n incidents over `weeks` weeks from `start` (timezone-aware).

    A share `background_share` is spread uniformly over `background_area` (or `bounds`); the
    rest is split over the hotspots by weight and over weeks by each hotspot's trend.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if weeks < 1 or n < 0:
        raise ValueError("weeks must be >= 1 and n >= 0")
    if not 0.0 <= background_share <= 1.0:
        raise ValueError("background_share must lie in [0, 1]")
    if not hotspots and background_share < 1.0:
        raise ValueError("without hotspots every incident is background: set background_share=1")
    rng = np.random.default_rng(seed)
    n_background = round(n * background_share) if hotspots else n
    n_hot = n - n_background

    weights = np.array([h.weight for h in hotspots], dtype=np.float64)
    per_hotspot = rng.multinomial(n_hot, weights / weights.sum()) if hotspots else np.zeros(0, int)

    xs, ys, weeks_of, hot_ids, cats = [], [], [], [], []
    for i, (spec, k) in enumerate(zip(hotspots, per_hotspot, strict=True)):
        xs.append(rng.normal(spec.x_m, spec.sigma_m, k))
        ys.append(rng.normal(spec.y_m, spec.sigma_m, k))
        weeks_of.append(rng.choice(weeks, size=k, p=trend_profile(spec.trend, weeks)))
        hot_ids.append(np.full(k, i, dtype=np.int64))
        cats.append(_pick_categories(rng, spec.categories or background_categories, k))

    bx, by = _uniform_points(rng, n_background, background_area, bounds)
    xs.append(bx)
    ys.append(by)
    weeks_of.append(rng.integers(0, weeks, n_background))
    hot_ids.append(np.full(n_background, -1, dtype=np.int64))
    cats.append(_pick_categories(rng, background_categories, n_background))

    week = np.concatenate(weeks_of).astype(np.int64)
    day = rng.integers(0, 7, week.size)
    hour = rng.choice(24, size=week.size, p=_HOURLY)
    second = rng.integers(0, 3600, week.size)
    offset_s = ((week * 7 + day) * 24 + hour) * 3600 + second
    t0 = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "s")
    times = t0 + offset_s.astype("timedelta64[s]")

    x, y = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(times, kind="stable")
    return SyntheticIncidents(
        x=x[order],
        y=y[order],
        time=times[order],
        category=np.concatenate(cats)[order],
        hotspot=np.concatenate(hot_ids)[order],
        hotspots=tuple(hotspots),
    )


def generate_near_repeats(
    n_background: int,
    *,
    start: datetime,
    weeks: int,
    bounds: tuple[float, float, float, float],
    offspring_mean: float = 0.8,
    spread_m: float = 80.0,
    delay_days: float = 5.0,
    seed: int = 0,
) -> SyntheticIncidents:
    """Generate a near-repeat process over `weeks` weeks from `start` (timezone-aware).

    n_background incidents fall uniformly over `bounds` and the period; every incident then has
    a Poisson(offspring_mean) number of follow-ups, each at a Gaussian offset of spread_m metres
    and an exponential delay of mean delay_days, and so on (a branching, self-exciting process;
    offspring_mean < 1 keeps it finite). Follow-ups after the period are dropped. `hotspot` is
    -1 for a background incident and 0 for a follow-up; there is no place that stays hot.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if not 0.0 <= offspring_mean < 1.0:
        raise ValueError("offspring_mean must lie in [0, 1)")
    rng = np.random.default_rng(seed)
    end_s = weeks * 7 * 86400.0
    x, y = _uniform_points(rng, n_background, None, bounds)
    t = rng.uniform(0.0, end_s, n_background)
    xs, ys, ts, kinds = [x], [y], [t], [np.full(n_background, -1, dtype=np.int64)]
    while len(t):
        children = rng.poisson(offspring_mean, len(t))
        parent = np.repeat(np.arange(len(t)), children)
        x = x[parent] + rng.normal(0.0, spread_m, parent.size)
        y = y[parent] + rng.normal(0.0, spread_m, parent.size)
        t = t[parent] + rng.exponential(delay_days * 86400.0, parent.size)
        inside = t < end_s
        x, y, t = x[inside], y[inside], t[inside]
        xs.append(x)
        ys.append(y)
        ts.append(t)
        kinds.append(np.zeros(len(t), dtype=np.int64))
    t0 = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "s")
    seconds = np.concatenate(ts).astype(np.int64)
    times = t0 + seconds.astype("timedelta64[s]")
    order = np.argsort(times, kind="stable")
    return SyntheticIncidents(
        x=np.concatenate(xs)[order],
        y=np.concatenate(ys)[order],
        time=times[order],
        category=np.full(len(times), "", dtype=object).astype(str),
        hotspot=np.concatenate(kinds)[order],
        hotspots=(),
    )


def _pick_categories(
    rng: np.random.Generator, categories: dict[str, float] | None, k: int
) -> npt.NDArray[np.str_]:
    if not categories:
        return np.full(k, "", dtype=object).astype(str)
    codes = list(categories)
    p = np.array([categories[c] for c in codes], dtype=np.float64)
    return np.asarray(codes)[rng.choice(len(codes), size=k, p=p / p.sum())]


def _uniform_points(
    rng: np.random.Generator,
    k: int,
    area: shapely.Geometry | None,
    bounds: tuple[float, float, float, float] | None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if area is None and bounds is None:
        if k:
            raise ValueError("background points need a background_area or bounds")
        return np.zeros(0), np.zeros(0)
    minx, miny, maxx, maxy = area.bounds if area is not None else bounds  # type: ignore[misc]
    if area is None:
        return rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)
    shapely.prepare(area)
    xs: list[npt.NDArray[np.float64]] = []
    ys: list[npt.NDArray[np.float64]] = []
    have = 0
    while have < k:  # rejection sampling; the batch grows with the area's emptiness
        batch = max(64, 2 * (k - have))
        cx, cy = rng.uniform(minx, maxx, batch), rng.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(area, cx, cy)
        xs.append(cx[inside])
        ys.append(cy[inside])
        have += int(inside.sum())
    return np.concatenate(xs)[:k], np.concatenate(ys)[:k]


def benchmark_points(
    n: int,
    *,
    size_m: float = 60_000.0,
    n_hotspots: int = 300,
    hotspot_share: float = 0.7,
    sigma_range_m: tuple[float, float] = (50.0, 400.0),
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Return n points (n, 2) for benchmarks: `hotspot_share` of them in `n_hotspots` Gaussian
    hotspots of 50–400 m spread, the rest uniform over a size_m × size_m square at the origin."""
    rng = np.random.default_rng(seed)
    margin = 2.0 * sigma_range_m[1]
    specs = [
        HotspotSpec(
            x_m=float(rng.uniform(margin, size_m - margin)),
            y_m=float(rng.uniform(margin, size_m - margin)),
            sigma_m=float(rng.uniform(*sigma_range_m)),
            weight=float(rng.pareto(1.5) + 1.0),
        )
        for _ in range(n_hotspots)
    ]
    start = datetime(2026, 1, 5, tzinfo=UTC)
    inc = generate_incidents(
        specs,
        n,
        start=start,
        weeks=1,
        background_share=1.0 - hotspot_share,
        bounds=(0.0, 0.0, size_m, size_m),
        seed=seed + 1,
    )
    return inc.xy

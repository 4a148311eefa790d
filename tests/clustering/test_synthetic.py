"""The synthetic generator: deterministic, and its hotspots are what it says they are."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from shapely import box

from clustering.synthetic import HotspotSpec, benchmark_points, generate_incidents, trend_profile

START = datetime(2026, 1, 5, tzinfo=UTC)
SPECS = [
    HotspotSpec(1000, 1000, 50, weight=1, trend="persisting", categories={"a": 1}),
    HotspotSpec(5000, 5000, 100, weight=1, trend="emerging", categories={"b": 1}),
    HotspotSpec(9000, 1000, 80, weight=1, trend="fading", categories={"c": 1}),
]


def _make(seed: int) -> object:
    return generate_incidents(
        SPECS,
        6000,
        start=START,
        weeks=12,
        background_share=0.3,
        bounds=(0, 0, 10_000, 10_000),
        background_categories={"x": 1},
        seed=seed,
    )


def test_same_seed_gives_identical_incidents_and_another_seed_does_not() -> None:
    a, b, c = _make(1), _make(1), _make(2)
    for field in ("x", "y", "time", "category", "hotspot"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x, c.x)  # type: ignore[attr-defined]


def test_background_share_and_hotspot_spread_are_as_asked() -> None:
    inc = generate_incidents(
        SPECS,
        30_000,
        start=START,
        weeks=12,
        background_share=0.3,
        bounds=(0, 0, 10_000, 10_000),
        seed=3,
    )
    assert len(inc) == 30_000
    assert abs((inc.hotspot == -1).mean() - 0.3) < 1e-3
    for i, spec in enumerate(SPECS):
        members = inc.hotspot == i
        assert abs(inc.x[members].std() - spec.sigma_m) < 0.1 * spec.sigma_m
        assert abs(inc.y[members].mean() - spec.y_m) < 0.1 * spec.sigma_m


def test_trends_shape_the_weekly_counts() -> None:
    inc = generate_incidents(
        SPECS,
        30_000,
        start=START,
        weeks=12,
        background_share=0.0,
        seed=4,
    )
    week = ((inc.time - np.datetime64("2026-01-05T00:00:00")) // np.timedelta64(7, "D")).astype(int)
    emerging = np.bincount(week[inc.hotspot == 1], minlength=12)
    fading = np.bincount(week[inc.hotspot == 2], minlength=12)
    persisting = np.bincount(week[inc.hotspot == 0], minlength=12)
    assert emerging[:6].sum() == 0 and emerging[-1] > emerging[7]
    assert fading[8:].sum() == 0 and fading[0] > fading[6]
    assert persisting.min() > 0.6 * persisting.max()
    assert week.min() >= 0 and week.max() <= 11


def test_trend_profiles_are_distributions() -> None:
    for trend in ("persisting", "emerging", "fading"):
        p = trend_profile(trend, 26)  # type: ignore[arg-type]
        assert p.shape == (26,) and abs(p.sum() - 1) < 1e-12 and (p >= 0).all()
    with pytest.raises(ValueError, match="unknown trend"):
        trend_profile("sideways", 5)  # type: ignore[arg-type]


def test_background_stays_inside_the_area_it_is_given() -> None:
    area = box(0, 0, 1000, 1000).union(box(5000, 5000, 6000, 6000))
    inc = generate_incidents(
        [], 2000, start=START, weeks=4, background_area=area, seed=5, background_share=1.0
    )
    inside_first = (inc.x <= 1000) & (inc.y <= 1000)
    inside_second = (inc.x >= 5000) & (inc.y >= 5000) & (inc.x <= 6000) & (inc.y <= 6000)
    assert (inside_first | inside_second).all()
    assert 0.4 < inside_first.mean() < 0.6


def test_benchmark_points_cover_the_square_with_clusters() -> None:
    xy = benchmark_points(100_000, seed=7)
    assert xy.shape == (100_000, 2)
    assert np.array_equal(xy, benchmark_points(100_000, seed=7))
    counts, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=60, range=[[0, 60_000], [0, 60_000]])
    assert counts.max() > 20 * np.median(counts)  # clustered, not uniform


def test_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_incidents(SPECS, 10, start=datetime(2026, 1, 5), weeks=1, bounds=(0, 0, 1, 1))

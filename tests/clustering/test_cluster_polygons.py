"""Hotspot polygons: members inside valid polygons, with counts and local times that add up."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from clustering.cluster_polygons import cluster_polygons
from clustering.synthetic import HotspotSpec, SyntheticIncidents, generate_incidents

EPS_M = 80.0
# Sweden moves to summer time at 01:00 UTC on 29 March 2026; the incidents span that night.
START = datetime(2026, 3, 16, tzinfo=UTC)


@pytest.fixture(scope="module")
def incidents() -> SyntheticIncidents:
    """Three hotspots and background, with categories and times across the DST change."""
    specs = [
        HotspotSpec(1000, 1000, 40, weight=2, categories={"rån": 1, "stöld": 3}),
        HotspotSpec(3000, 1200, 90, weight=1, categories={"skadegörelse": 1}),
        HotspotSpec(2000, 3000, 60, weight=1, categories={"stöld": 1, "narkotika": 1}),
    ]
    return generate_incidents(
        specs,
        3000,
        start=START,
        weeks=4,
        background_share=0.2,
        bounds=(0, 0, 4000, 4000),
        background_categories={"övrigt": 1},
        seed=4,
    )


@pytest.fixture(scope="module")
def polygons(incidents: SyntheticIncidents) -> gpd.GeoDataFrame:
    """Polygons of the generator's own hotspots (its truth as labels, -1 for background)."""
    return cluster_polygons(
        incidents.xy,
        incidents.hotspot,
        eps_m=EPS_M,
        categories=incidents.category,
        times=incidents.time,
        crs=3006,
    )


def test_one_row_per_cluster_ordered_by_label_and_noise_left_out(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    assert polygons["cluster"].tolist() == [0, 1, 2]
    assert -1 in incidents.hotspot.tolist()


def test_every_member_point_lies_inside_its_cluster_polygon(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    for row in polygons.itertuples():
        members = incidents.hotspot == row.cluster
        inside = shapely.contains_xy(row.geometry, incidents.x[members], incidents.y[members])
        assert inside.all()


def test_polygons_are_valid_and_keep_a_buffer_around_every_member(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    assert polygons.geometry.is_valid.all()
    assert set(polygons.geom_type) <= {"Polygon", "MultiPolygon"}
    assert polygons.crs.to_epsg() == 3006
    for row in polygons.itertuples():
        members = shapely.points(incidents.xy[incidents.hotspot == row.cluster])
        # The buffer is drawn with 8 segments per quarter circle: cos(pi / 32) > 0.99.
        gap_m = shapely.distance(members, row.geometry.boundary)
        assert gap_m.min() >= 0.99 * 0.25 * EPS_M


def test_counts_sum_to_the_number_of_clustered_points(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    expected = Counter(incidents.hotspot[incidents.hotspot >= 0].tolist())
    assert dict(zip(polygons["cluster"], polygons["count"], strict=True)) == expected
    assert polygons["count"].sum() == (incidents.hotspot >= 0).sum()


def test_category_counts_equal_an_independent_count(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    pairs = Counter(zip(incidents.hotspot.tolist(), incidents.category.tolist(), strict=True))
    for row in polygons.itertuples():
        expected = {code: n for (label, code), n in pairs.items() if label == row.cluster}
        assert row.counts_by_category == expected
        assert all(type(code) is str for code in row.counts_by_category)


def test_busiest_weekday_and_hour_are_counted_in_stockholm_time(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    local = pd.Series(pd.to_datetime(incidents.time).tz_localize("UTC")).dt.tz_convert(
        "Europe/Stockholm"
    )
    for row in polygons.itertuples():
        members = local[incidents.hotspot == row.cluster]
        assert row.busiest_weekday == _most_common(members.dt.day_of_week)
        assert row.busiest_hour == _most_common(members.dt.hour)
        assert row.first_time == members.min()
        assert row.last_time == members.max()
    assert str(polygons["first_time"].dt.tz) == "Europe/Stockholm"


def _most_common(values: pd.Series) -> int:
    """The most frequent value, the smallest one on a tie."""
    counts = values.value_counts()
    return int(counts[counts == counts.max()].index.min())


def test_local_time_crosses_midnight_and_follows_summer_time() -> None:
    # Sunday 23:30 UTC is Monday 00:30 in winter and 01:30 in summer (both Monday in Sweden).
    xy = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [900.0, 0.0], [905.0, 0.0]])
    times = np.array(
        [
            "2026-03-22T23:30",  # Sunday in UTC, before the change: CET, +1 h
            "2026-03-22T23:40",
            "2026-03-25T12:00",  # a Wednesday at 13:00 local
            "2026-03-29T23:30",  # after the change: CEST, +2 h
            "2026-03-29T23:45",
        ],
        dtype="datetime64[s]",
    )
    polygons = cluster_polygons(xy, [0, 0, 0, 1, 1], eps_m=10, times=times)
    assert polygons["busiest_weekday"].tolist() == [0, 0]
    assert polygons["busiest_hour"].tolist() == [0, 1]
    assert polygons["first_time"][0] == pd.Timestamp("2026-03-23 00:30", tz="Europe/Stockholm")
    assert polygons["last_time"][1] == pd.Timestamp("2026-03-30 01:45", tz="Europe/Stockholm")


def test_busiest_hour_ties_go_to_the_smallest_hour() -> None:
    times = np.array(["2026-06-01T15:00", "2026-06-02T03:00"], dtype="datetime64[s]")
    polygons = cluster_polygons([[0.0, 0.0], [1.0, 0.0]], [0, 0], eps_m=10, times=times)
    # 17:00 and 05:00 local, Monday and Tuesday, one each.
    assert polygons["busiest_hour"].tolist() == [5]
    assert polygons["busiest_weekday"].tolist() == [0]


def test_timezone_aware_pandas_times_give_the_same_result_as_utc_numpy_times(
    incidents: SyntheticIncidents, polygons: gpd.GeoDataFrame
) -> None:
    aware = pd.Series(pd.to_datetime(incidents.time).tz_localize("UTC")).dt.tz_convert(
        "America/New_York"
    )
    again = cluster_polygons(incidents.xy, incidents.hotspot, eps_m=EPS_M, times=aware)
    for column in ["first_time", "last_time", "busiest_weekday", "busiest_hour"]:
        assert again[column].tolist() == polygons[column].tolist()


@pytest.mark.parametrize(
    "xy",
    [
        [[100.0, 100.0], [160.0, 100.0]],  # two points: a line
        [[100.0, 100.0], [130.0, 130.0], [160.0, 160.0]],  # collinear
        [[100.0, 100.0]],  # alone
        [[100.0, 100.0], [100.0, 100.0], [100.0, 100.0]],  # one place, three incidents
    ],
)
def test_degenerate_clusters_still_give_a_valid_polygon(xy: list[list[float]]) -> None:
    polygons = cluster_polygons(xy, [4] * len(xy), eps_m=40)
    (geometry,) = polygons.geometry
    assert geometry.geom_type == "Polygon" and geometry.is_valid and geometry.area > 0
    assert shapely.contains_xy(geometry, *np.asarray(xy).T).all()
    assert polygons["cluster"].tolist() == [4]


def test_area_and_density_describe_the_polygon(polygons: gpd.GeoDataFrame) -> None:
    np.testing.assert_allclose(polygons["area_m2"], polygons.geometry.area)
    np.testing.assert_allclose(
        polygons["density_per_km2"], polygons["count"] / (polygons.geometry.area / 1e6)
    )


def test_columns_without_categories_or_times_are_left_out() -> None:
    polygons = cluster_polygons([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0]], [0, 0, -1], eps_m=5)
    assert list(polygons.columns) == [
        "cluster",
        "count",
        "area_m2",
        "density_per_km2",
        "geometry",
    ]


def test_all_noise_gives_an_empty_frame_with_every_column() -> None:
    polygons = cluster_polygons(
        [[0.0, 0.0], [1.0, 1.0]],
        [-1, -1],
        eps_m=5,
        categories=["a", "b"],
        times=np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[s]"),
    )
    assert len(polygons) == 0
    assert {"counts_by_category", "first_time", "busiest_hour", "geometry"} <= set(polygons)


def test_points_as_a_geodataframe_carry_their_crs(incidents: SyntheticIncidents) -> None:
    frame = gpd.GeoDataFrame(geometry=gpd.points_from_xy(incidents.x, incidents.y), crs="EPSG:3006")
    polygons = cluster_polygons(frame, incidents.hotspot, eps_m=EPS_M)
    assert polygons.crs == frame.crs
    assert len(polygons) == 3


def test_polygons_are_deterministic(incidents: SyntheticIncidents) -> None:
    first = cluster_polygons(incidents.xy, incidents.hotspot, eps_m=EPS_M)
    second = cluster_polygons(incidents.xy, incidents.hotspot, eps_m=EPS_M)
    assert first.geometry.geom_equals_exact(second.geometry, tolerance=0).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"eps_m": 0},
        {"eps_m": 10, "buffer_fraction": 0},
        {"eps_m": 10, "concave_ratio": 1.5},
        {"eps_m": 10, "categories": ["a"]},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        cluster_polygons([[0.0, 0.0], [1.0, 0.0]], [0, 0], **kwargs)

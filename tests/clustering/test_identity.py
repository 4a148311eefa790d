"""Hotspot identity: tonight's hotspots keep yesterday's ids where they overlap, change labelled."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
from hypothesis import given, settings
from hypothesis import strategies as st

from clustering.cluster_polygons import cluster_polygons
from clustering.dbscan import DBSCAN
from clustering.identity import (
    HotspotMatch,
    LineageEvent,
    centroid_id_factory,
    match_cell_hotspots,
    match_hotspots,
)

CRS = "EPSG:3006"


def previous(**boxes: shapely.Geometry) -> gpd.GeoDataFrame:
    """Yesterday's hotspots: id -> polygon."""
    return gpd.GeoDataFrame({"id": list(boxes)}, geometry=list(boxes.values()), crs=CRS)


def current(*polygons: shapely.Geometry) -> gpd.GeoDataFrame:
    """Tonight's hotspots, with a column of their own to show it is kept."""
    return gpd.GeoDataFrame({"cluster": np.arange(len(polygons))}, geometry=list(polygons), crs=CRS)


def as_previous(match: HotspotMatch) -> gpd.GeoDataFrame:
    """What the next night reads back: the published ids and polygons."""
    return match.current[["id", "geometry"]]


def test_identical_hotspots_are_stable_and_keep_their_ids() -> None:
    a, b = shapely.box(0, 0, 100, 100), shapely.box(500, 500, 700, 600)
    match = match_hotspots(previous(a=a, b=b), current(b, a))
    assert match.current["id"].tolist() == ["b", "a"]
    assert match.current["change"].tolist() == ["stable", "stable"]
    assert match.current["iou"].tolist() == [1.0, 1.0]
    assert match.current["cluster"].tolist() == [0, 1]
    assert match.gone.empty
    assert match.events == []


def test_area_change_within_the_tolerance_is_stable() -> None:
    match = match_hotspots(
        previous(a=shapely.box(0, 0, 100, 100)),
        current(shapely.box(0, 0, 100, 109)),
        stable_tolerance=0.1,
    )
    assert match.current["change"].tolist() == ["stable"]
    assert match.current["area_change"].iloc[0] == pytest.approx(0.09)


def test_grown_hotspot_keeps_its_id() -> None:
    match = match_hotspots(
        previous(a=shapely.box(0, 0, 100, 100)), current(shapely.box(0, 0, 120, 120))
    )
    row = match.current.iloc[0]
    assert (row["id"], row["change"]) == ("a", "grown")
    assert row["previous_area_m2"] == 10_000.0
    assert row["area_change"] == pytest.approx(0.44)
    assert row["iou"] == pytest.approx(1 / 1.44)


def test_hotspot_shrunk_to_a_tenth_inside_keeps_its_id_by_containment() -> None:
    # IoU is 0.1, below min_iou; the new polygon lies wholly inside the old one.
    match = match_hotspots(
        previous(a=shapely.box(0, 0, 100, 100)), current(shapely.box(40, 0, 50, 100)), min_iou=0.2
    )
    assert match.current[["id", "change"]].values.tolist() == [["a", "shrunk"]]
    assert match.gone.empty


def test_small_overlap_below_both_thresholds_is_no_match() -> None:
    match = match_hotspots(
        previous(a=shapely.box(0, 0, 100, 100)), current(shapely.box(95, 0, 195, 100))
    )
    assert match.current["change"].tolist() == ["new"]
    assert match.gone[["id", "reason"]].values.tolist() == [["a", "disappeared"]]


def test_new_and_gone_hotspots() -> None:
    far = shapely.box(5000, 5000, 5100, 5100)
    match = match_hotspots(previous(a=shapely.box(0, 0, 100, 100)), current(far))
    row = match.current.iloc[0]
    assert row["change"] == "new"
    assert row["id"] == centroid_id_factory()(far)
    assert np.isnan(row["previous_area_m2"]) and np.isnan(row["iou"])
    assert row["split_from"] is None and row["merged_from"] == ()
    gone = match.gone.iloc[0]
    assert (gone["id"], gone["reason"], gone["merged_into"]) == ("a", "disappeared", None)
    assert gone["area_m2"] == 10_000.0
    assert match.gone.crs == CRS


def test_touching_edges_are_not_an_overlap() -> None:
    match = match_hotspots(
        previous(a=shapely.box(0, 0, 100, 100)), current(shapely.box(100, 0, 200, 100))
    )
    assert match.current["change"].tolist() == ["new"]


def test_split_the_best_overlap_keeps_the_id_the_other_is_new() -> None:
    left, right = shapely.box(0, 0, 180, 100), shapely.box(200, 0, 300, 100)
    match = match_hotspots(previous(a=shapely.box(0, 0, 300, 100)), current(right, left))
    by_cluster = match.current.set_index("cluster")
    assert by_cluster.loc[1, "id"] == "a"
    assert by_cluster.loc[1, "change"] == "shrunk"
    split_id = by_cluster.loc[0, "id"]
    assert split_id != "a"
    assert by_cluster.loc[0, "change"] == "new"
    assert by_cluster.loc[0, "split_from"] == "a"
    assert match.events == [LineageEvent("split", "a", split_id, 10_000.0)]
    assert match.gone.empty


def test_merge_keeps_the_best_overlapping_id_and_lists_the_other_as_merged() -> None:
    match = match_hotspots(
        previous(b=shapely.box(120, 0, 170, 100), a=shapely.box(0, 0, 100, 100)),
        current(shapely.box(0, 0, 170, 100)),
    )
    row = match.current.iloc[0]
    assert (row["id"], row["change"], row["merged_from"]) == ("a", "grown", ("b",))
    assert match.gone[["id", "reason", "merged_into"]].values.tolist() == [["b", "merged", "a"]]
    assert match.events == [LineageEvent("merge", "b", "a", 5_000.0)]


def test_chain_of_three_nights_carries_ids_through_growth_split_and_merge() -> None:
    empty = gpd.GeoDataFrame({"id": []}, geometry=[], crs=CRS)
    night1 = match_hotspots(
        empty, current(shapely.box(0, 0, 300, 100), shapely.box(1000, 0, 1100, 100))
    )
    assert night1.current["change"].tolist() == ["new", "new"]
    long_id, small_id = night1.current["id"]

    # Night 2: the long one splits, the small one grows.
    night2 = match_hotspots(
        as_previous(night1),
        current(
            shapely.box(0, 0, 180, 100),
            shapely.box(200, 0, 300, 100),
            shapely.box(1000, 0, 1150, 120),
        ),
    )
    assert night2.current["id"].tolist()[0] == long_id
    assert night2.current["id"].tolist()[2] == small_id
    assert night2.current["change"].tolist() == ["shrunk", "new", "grown"]
    split_id = night2.current["id"].iloc[1]

    # Night 3: the split-off part grows into the small one and they merge; the first part stays.
    night3 = match_hotspots(
        as_previous(night2), current(shapely.box(0, 0, 180, 100), shapely.box(200, 0, 1150, 120))
    )
    assert night3.current["id"].tolist() == [long_id, small_id]
    assert night3.current["change"].tolist() == ["stable", "grown"]
    assert night3.gone[["id", "reason", "merged_into"]].values.tolist() == [
        [split_id, "merged", small_id]
    ]
    assert [e.kind for e in night3.events] == ["merge"]


def test_matching_twice_gives_the_same_ids_and_labels_whatever_the_row_order() -> None:
    prev = previous(a=shapely.box(0, 0, 300, 100), b=shapely.box(1000, 0, 1100, 100))
    polygons = [
        shapely.box(0, 0, 150, 100),
        shapely.box(150, 0, 300, 100),  # an exact tie with the first: canonical order decides
        shapely.box(1000, 0, 1100, 130),
        shapely.box(3000, 0, 3100, 100),
    ]
    first = match_hotspots(prev, current(*polygons))
    again = match_hotspots(prev, current(*polygons))
    pd.testing.assert_frame_equal(first.current, again.current)
    assert first.events == again.events

    reordered = match_hotspots(prev.iloc[::-1], current(*polygons[::-1]))
    by_shape = dict(zip(first.current.geometry.to_wkt(), first.current["id"], strict=True))
    assert (
        dict(zip(reordered.current.geometry.to_wkt(), reordered.current["id"], strict=True))
        == by_shape
    )
    assert by_shape[shapely.box(0, 0, 150, 100).wkt] == "a"  # lower-left centroid first


def test_new_id_depends_on_the_salt_and_collisions_get_a_suffix() -> None:
    box = shapely.box(0, 0, 100, 100)
    assert centroid_id_factory("dbscan-150")(box) != centroid_id_factory("kde-150")(box)
    clash = match_hotspots(
        previous(a=shapely.box(5000, 0, 5100, 100)),
        current(box),
        id_factory=lambda geometry: "a",
    )
    assert clash.current["id"].tolist() == ["a-2"]


def test_adding_one_point_does_not_reshuffle_unrelated_ids() -> None:
    rng = np.random.default_rng(7)
    centres = np.array([[0, 0], [2000, 0], [0, 2000], [2000, 2000], [4000, 1000]], dtype=float)
    points = np.concatenate([rng.normal(c, 40, (40, 2)) for c in centres])

    def hotspots(xy: np.ndarray) -> gpd.GeoDataFrame:
        labels = DBSCAN(eps_m=60, min_samples=5).fit(xy).labels_
        return cluster_polygons(xy, labels, eps_m=60, crs=CRS)

    def by_centre(match: HotspotMatch, column: str) -> dict[int, object]:
        """The value of a column for the hotspot on each generating centre."""
        near = match.current.geometry.centroid.apply(
            lambda c: int(np.argmin(np.hypot(*(centres - [c.x, c.y]).T)))
        )
        return dict(zip(near, match.current[column], strict=True))

    empty = gpd.GeoDataFrame({"id": []}, geometry=[], crs=CRS)
    night1 = match_hotspots(empty, hotspots(points))
    # The next night holds one more incident, at the edge of the fourth hotspot, and the database
    # returns the rows in another order, so DBSCAN numbers the clusters differently.
    edge = points[120:160][np.argmax(points[120:160, 0])] + [30.0, 0.0]
    tonight = rng.permutation(np.vstack([points, edge]))
    night2 = match_hotspots(as_previous(night1), hotspots(tonight))
    assert by_centre(night2, "cluster") != by_centre(night1, "cluster")
    assert by_centre(night2, "id") == by_centre(night1, "id")
    assert night2.current["count"].sum() == night1.current["count"].sum() + 1
    changed = night2.current[night2.current["iou"] < 1.0]
    assert len(changed) == 1
    assert by_centre(night1, "id")[3] == changed["id"].iloc[0]
    assert (night2.current["change"] == "stable").sum() >= len(centres) - 1


def grid_of_boxes(sizes: list[float]) -> list[shapely.Geometry]:
    """Boxes of the given sides, one per 1 km lattice site, so no two overlap."""
    return [
        shapely.box(1000 * (i % 4), 1000 * (i // 4), 1000 * (i % 4) + s, 1000 * (i // 4) + s)
        for i, s in enumerate(sizes)
    ]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.floats(100, 400), min_size=2, max_size=10),
    factors=st.lists(st.floats(0.6, 1.6), min_size=10, max_size=10),
    which=st.integers(0, 9),
    nudge_m=st.floats(-50, 50),
)
def test_changing_one_polygon_changes_no_other_id(
    sizes: list[float], factors: list[float], which: int, nudge_m: float
) -> None:
    prev_boxes = grid_of_boxes(sizes)
    prev = previous(**{f"p{i}": b for i, b in enumerate(prev_boxes)})
    tonight = [shapely.affinity.scale(b, f, f, origin=(b.bounds[0], b.bounds[1]))
               for b, f in zip(prev_boxes, factors, strict=False)]  # fmt: skip
    tonight.append(shapely.box(-3000, -3000, -2900, -2900))  # a new one, far away
    base = match_hotspots(prev, current(*tonight))

    k = which % len(tonight)
    changed = list(tonight)
    changed[k] = shapely.affinity.translate(changed[k], nudge_m, nudge_m)
    after = match_hotspots(prev, current(*changed))
    others = np.arange(len(tonight)) != k
    assert after.current["id"][others].tolist() == base.current["id"][others].tolist()
    assert after.current["change"][others].tolist() == base.current["change"][others].tolist()


def test_cell_hotspots_match_like_their_polygons() -> None:
    size = 100.0
    prev_cells = pd.DataFrame(
        {
            "id": ["a"] * 6 + ["b"] * 2,
            "ix": [0, 1, 2, 0, 1, 2, 10, 11],
            "iy": [0, 0, 0, 1, 1, 1, 5, 5],
        }
    )
    cur_cells = pd.DataFrame(
        {"hotspot": [7, 7, 7, 7, 8, 8], "ix": [0, 1, 0, 1, 20, 21], "iy": [0, 0, 1, 1, 9, 9]}
    )
    by_cells = match_cell_hotspots(prev_cells, cur_cells, size, crs=CRS)
    assert by_cells.current["hotspot"].tolist() == [7, 8]
    assert by_cells.current["id"].iloc[0] == "a"
    assert by_cells.current["change"].tolist() == ["shrunk", "new"]
    assert by_cells.current["iou"].iloc[0] == pytest.approx(4 / 6)
    assert by_cells.gone["id"].tolist() == ["b"]

    prev_polys = previous(a=shapely.box(0, 0, 300, 200), b=shapely.box(1000, 500, 1200, 600))
    by_polygons = match_hotspots(
        prev_polys, current(shapely.box(0, 0, 200, 200), shapely.box(2000, 900, 2200, 1000))
    )
    assert by_polygons.current["id"].tolist() == by_cells.current["id"].tolist()
    assert by_polygons.current["iou"].tolist() == pytest.approx(
        by_cells.current["iou"].tolist(), nan_ok=True
    )


def test_inputs_are_checked() -> None:
    a = shapely.box(0, 0, 100, 100)
    with pytest.raises(ValueError, match="unique"):
        match_hotspots(previous(a=a).pipe(lambda f: pd.concat([f, f])), current(a))
    with pytest.raises(ValueError, match="positive area"):
        match_hotspots(previous(a=a), current(shapely.LineString([(0, 0), (1, 1)])))
    with pytest.raises(ValueError, match="id"):
        match_hotspots(current(a), current(a))
    with pytest.raises(ValueError, match="min_iou"):
        match_hotspots(previous(a=a), current(a), min_iou=0)

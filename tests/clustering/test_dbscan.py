"""DBSCAN on the grid finds scikit-learn's core points and clusters; HDBSCAN wraps sklearn's."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import cluster as sklearn_cluster
from sklearn.metrics import adjusted_rand_score

from clustering.dbscan import DBSCAN, HDBSCAN
from clustering.synthetic import benchmark_points

FloatArray = npt.NDArray[np.float64]


def sklearn_dbscan(
    xy: FloatArray, eps_m: float, min_samples: int, weights: FloatArray | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The reference: scikit-learn's labels and core mask for the same input."""
    model = sklearn_cluster.DBSCAN(eps=eps_m, min_samples=min_samples, metric="euclidean")
    model.fit(xy, sample_weight=weights)
    core = np.zeros(len(xy), dtype=bool)
    core[model.core_sample_indices_] = True
    return model.labels_.astype(np.int64), core


def assert_matches_sklearn(
    xy: FloatArray, eps_m: float, min_samples: int, weights: FloatArray | None = None
) -> DBSCAN:
    """Fit ours and scikit-learn's; assert identical core points, clusters and labels."""
    ours = DBSCAN(eps_m=eps_m, min_samples=min_samples).fit(xy, weights)
    labels, core = sklearn_dbscan(xy, eps_m, min_samples, weights)
    np.testing.assert_array_equal(ours.core_mask_, core)
    np.testing.assert_array_equal(ours.core_sample_indices_, np.flatnonzero(core))
    if core.any():
        assert adjusted_rand_score(labels[core], ours.labels_[core]) == 1.0
    # Clusters are numbered by their first core point and border points join the
    # first-numbered cluster that reaches them, as in scikit-learn: the labels are its labels.
    np.testing.assert_array_equal(ours.labels_, labels)
    assert ours.n_clusters_ == len(set(labels.tolist()) - {-1})
    assert ours.labels_.dtype == np.int64
    return ours


def blobs_and_noise(seed: int, n: int = 3000) -> FloatArray:
    """Gaussian blobs of varied spread over uniform noise, in metres."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 5000, (8, 2))
    spreads = rng.uniform(20, 200, 8)
    which = rng.integers(0, 8, n * 2 // 3)
    blobs = centres[which] + rng.normal(size=(len(which), 2)) * spreads[which, None]
    noise = rng.uniform(0, 5000, (n - len(which), 2))
    return np.vstack([blobs, noise])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("eps_m", "min_samples"), [(50, 5), (150, 10), (300, 40), (20, 2)])
def test_dbscan_matches_scikit_learn_core_points_and_clusters(
    seed: int, eps_m: float, min_samples: int
) -> None:
    assert_matches_sklearn(blobs_and_noise(seed), eps_m, min_samples)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dbscan_matches_scikit_learn_with_sample_weights(seed: int) -> None:
    xy = blobs_and_noise(seed, 2000)
    weights = np.random.default_rng(seed).integers(0, 4, len(xy)).astype(np.float64)
    assert_matches_sklearn(xy, 100, 8, weights)
    assert_matches_sklearn(xy, 60, 3, weights / 2)  # halves are exact in binary


@pytest.mark.parametrize("seed", [0, 1])
def test_dbscan_matches_scikit_learn_on_duplicated_coordinates(seed: int) -> None:
    # Incidents geocoded to the same address share coordinates; many repeat several times.
    rng = np.random.default_rng(seed)
    addresses = np.round(blobs_and_noise(seed, 600))
    xy = addresses[rng.integers(0, len(addresses), 3000)]
    assert_matches_sklearn(xy, 40, 6)
    assert_matches_sklearn(xy, 25, 12, rng.integers(1, 3, len(xy)).astype(np.float64))


def test_repeated_points_count_as_their_weight() -> None:
    rng = np.random.default_rng(7)
    distinct = np.round(rng.uniform(0, 1000, (400, 2)))
    repeats = rng.integers(1, 5, len(distinct))
    repeated = DBSCAN(eps_m=60, min_samples=6).fit(np.repeat(distinct, repeats, axis=0))
    weighted = DBSCAN(eps_m=60, min_samples=6).fit(distinct, weights=repeats)
    np.testing.assert_array_equal(np.repeat(weighted.core_mask_, repeats), repeated.core_mask_)
    assert adjusted_rand_score(np.repeat(weighted.labels_, repeats), repeated.labels_) == 1.0


def test_dbscan_counts_a_neighbour_at_exactly_eps_and_not_one_just_beyond() -> None:
    eps_m = 150.0
    on_eps = np.column_stack([np.arange(20) * eps_m, np.zeros(20)])
    ours = assert_matches_sklearn(on_eps, eps_m, 3)
    # Each inner point has itself and two neighbours at exactly eps: core, one chain.
    assert ours.core_mask_[1:-1].all() and not ours.core_mask_[[0, -1]].any()
    assert set(ours.labels_.tolist()) == {0}

    just_beyond = np.array([[0.0, 0.0], [np.nextafter(eps_m, np.inf), 0.0]])
    assert not assert_matches_sklearn(just_beyond, eps_m, 2).core_mask_.any()
    beyond = np.column_stack([np.arange(20) * (eps_m + 1e-6), np.zeros(20)])
    assert not assert_matches_sklearn(beyond, eps_m, 2).core_mask_.any()

    # A 3-4-5 triangle: the diagonal neighbour is at exactly eps = 5 m.
    diagonal = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [9.0, 12.0]] * 4)
    diagonal[4:] += [[1000.0, 0.0]] * 4 + [[2000.0, 0.0]] * 4 + [[3000.0, 0.0]] * 4
    assert_matches_sklearn(diagonal, 5.0, 3)


def test_dbscan_of_sparse_points_is_all_noise() -> None:
    xy = np.column_stack([np.arange(50) * 1000.0, np.arange(50) * 7.0])
    ours = assert_matches_sklearn(xy, 100, 2)
    assert ours.n_clusters_ == 0 and (ours.labels_ == -1).all()
    assert ours.core_sample_indices_.size == 0


def test_dbscan_of_one_dense_blob_is_one_giant_cluster() -> None:
    xy = np.random.default_rng(3).normal(0, 100, (5000, 2))
    ours = assert_matches_sklearn(xy, 150, 5)
    assert ours.n_clusters_ == 1 and ours.core_mask_.all()


def test_dbscan_of_no_points_finds_no_clusters() -> None:
    ours = DBSCAN(eps_m=100, min_samples=5).fit(np.zeros((0, 2)))
    assert ours.labels_.shape == (0,) and ours.labels_.dtype == np.int64
    assert ours.core_mask_.shape == (0,) and ours.core_sample_indices_.shape == (0,)
    assert ours.n_clusters_ == 0


@pytest.mark.parametrize("min_samples", [1, 2])
def test_dbscan_of_one_point_matches_scikit_learn(min_samples: int) -> None:
    assert_matches_sklearn(np.array([[6_500_000.0, 600_000.0]]), 100, min_samples)


def test_dbscan_is_exact_with_large_coordinates_and_a_small_eps() -> None:
    # SWEREF 99 TM northings are ~6.5e6 m; a 0.5 m eps leaves little room for rounding.
    rng = np.random.default_rng(11)
    xy = np.array([6_580_000.0, 670_000.0]) + rng.normal(0, 2.0, (3000, 2))
    assert_matches_sklearn(xy, 0.5, 4)


def test_dbscan_accepts_a_geodataframe_of_points() -> None:
    xy = blobs_and_noise(5, 1000)
    frame = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=3006)
    np.testing.assert_array_equal(
        DBSCAN(eps_m=100, min_samples=5).fit(frame).labels_,
        DBSCAN(eps_m=100, min_samples=5).fit(xy).labels_,
    )


def test_fit_predict_returns_the_labels() -> None:
    xy = blobs_and_noise(6, 1000)
    model = DBSCAN(eps_m=100, min_samples=5)
    np.testing.assert_array_equal(model.fit_predict(xy), model.labels_)


@pytest.mark.parametrize(
    ("params", "weights"),
    [
        ({"eps_m": 0, "min_samples": 5}, None),
        ({"eps_m": float("nan"), "min_samples": 5}, None),
        ({"eps_m": 100, "min_samples": 0}, None),
        ({"eps_m": 100, "min_samples": 2.5}, None),
        ({"eps_m": 100, "min_samples": 5, "algorithm": "hdbscan"}, None),
        ({"eps_m": 100, "min_samples": 5}, [1.0, -1.0, 1.0]),
    ],
)
def test_dbscan_rejects_bad_parameters_when_fitting(params: dict, weights: list | None) -> None:
    model = DBSCAN(**params)  # the constructor only stores them
    with pytest.raises(ValueError):
        model.fit(np.zeros((3, 2)), weights)


@settings(max_examples=150, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 3)),
        min_size=1,
        max_size=80,
    ),
    eps_m=st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 8.0]),
    min_samples=st.integers(1, 6),
    weighted=st.booleans(),
)
def test_dbscan_matches_scikit_learn_on_any_small_input(
    cells: list[tuple[int, int, int]], eps_m: float, min_samples: int, weighted: bool
) -> None:
    # Points on a lattice, so that many pairs sit at exactly eps and many coincide.
    xy = np.array([(x, y) for x, y, _ in cells], dtype=np.float64)
    weights = np.array([w for _, _, w in cells], dtype=np.float64) if weighted else None
    if weights is not None and not weights.any():
        # scikit-learn refuses all-zero weights; nothing has any weight to be core.
        assert (DBSCAN(eps_m=eps_m, min_samples=min_samples).fit(xy, weights).labels_ == -1).all()
        return
    assert_matches_sklearn(xy, eps_m, min_samples, weights)


@pytest.mark.slow
def test_dbscan_matches_scikit_learn_on_100k_benchmark_points() -> None:
    ours = assert_matches_sklearn(benchmark_points(100_000), 150, 10)
    assert ours.n_clusters_ > 100


def test_hdbscan_is_scikit_learns_on_the_locations_sorted_by_x_then_y() -> None:
    xy = blobs_and_noise(8, 1500)
    ours = HDBSCAN(min_cluster_size=15, min_samples=5).fit(xy)
    by_x_then_y = np.lexsort((xy[:, 1], xy[:, 0]))
    ref = sklearn_cluster.HDBSCAN(min_cluster_size=15, min_samples=5, copy=True)
    ref.fit(xy[by_x_then_y])
    labels = np.empty(len(xy), dtype=np.int64)
    labels[by_x_then_y] = ref.labels_
    probabilities = np.empty(len(xy))
    probabilities[by_x_then_y] = ref.probabilities_
    np.testing.assert_array_equal(ours.labels_ == -1, labels == -1)
    clustered = labels >= 0
    assert adjusted_rand_score(labels[clustered], ours.labels_[clustered]) == 1.0
    np.testing.assert_array_equal(ours.probabilities_, probabilities)
    assert ours.n_clusters_ == labels.max() + 1


def test_hdbscan_does_not_depend_on_the_input_order() -> None:
    # scikit-learn's own HDBSCAN does, through ties between mutual reachability distances.
    xy = blobs_and_noise(12, 1500)
    shuffle = np.random.default_rng(12).permutation(len(xy))
    ours = HDBSCAN(min_cluster_size=15).fit(xy).labels_
    shuffled = HDBSCAN(min_cluster_size=15).fit(xy[shuffle]).labels_
    np.testing.assert_array_equal(ours[shuffle] == -1, shuffled == -1)
    clustered = shuffled >= 0
    assert adjusted_rand_score(ours[shuffle][clustered], shuffled[clustered]) == 1.0


def test_hdbscan_numbers_clusters_by_their_first_point() -> None:
    labels = HDBSCAN(min_cluster_size=15).fit(blobs_and_noise(9, 1500)).labels_
    clustered = labels[labels >= 0]
    _, first_seen = np.unique(clustered, return_index=True)
    np.testing.assert_array_equal(clustered[np.sort(first_seen)], np.arange(len(first_seen)))


def test_hdbscan_clusters_locations_each_counted_once() -> None:
    rng = np.random.default_rng(10)
    locations = np.unique(np.round(blobs_and_noise(10, 800)), axis=0)
    # Every location at least once, many several times.
    picks = np.concatenate([np.arange(len(locations)), rng.integers(0, len(locations), 3000)])
    repeated = HDBSCAN(min_cluster_size=10).fit(locations[picks])
    once = HDBSCAN(min_cluster_size=10).fit(locations)
    # sklearn's HDBSCAN takes no sample weights, so repeats change nothing: the same clusters.
    expected = once.labels_[picks]
    np.testing.assert_array_equal(repeated.labels_ == -1, expected == -1)
    clustered = expected >= 0
    assert adjusted_rand_score(expected[clustered], repeated.labels_[clustered]) == 1.0
    np.testing.assert_array_equal(repeated.probabilities_, once.probabilities_[picks])


def test_hdbscan_of_too_few_points_is_all_noise() -> None:
    ours = HDBSCAN(min_cluster_size=5).fit(np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_array_equal(ours.labels_, [-1, -1, -1])
    assert ours.n_clusters_ == 0 and ours.probabilities_.shape == (3,)
    assert HDBSCAN(min_cluster_size=5).fit(np.zeros((0, 2))).labels_.shape == (0,)

"""Getis-Ord Gi* on the grid equals esda's G_Local(star=True); bins follow ArcGIS, FDR per level."""

from __future__ import annotations

import warnings
from pathlib import Path

import esda
import libpysal
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from scipy.stats import false_discovery_control

from clustering.fdr import benjamini_hochberg
from clustering.gistar import GiStar, TooFewIncidents, disc_footprint
from geo.grid import cell_centres, cell_index, cells_in_area

FloatArray = npt.NDArray[np.float64]
MEMPHIS_CSV = (
    Path(__file__).resolve().parents[2] / "data" / "memphis" / "memphis_robberies_2019.csv"
)


def memphis_robberies() -> FloatArray:
    """The 2,245 Memphis robberies of 2019 in UTM 16N metres."""
    table = pd.read_csv(MEMPHIS_CSV)
    to_utm = Transformer.from_crs(4326, 32616, always_xy=True)
    x, y = to_utm.transform(table["lon"].to_numpy(), table["lat"].to_numpy())
    return np.column_stack([x, y])


def hotspot_incidents(seed: int = 3) -> FloatArray:
    """A strong hotspot, a tight small one and uniform background over 6 × 6 km."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.normal([2000, 3000], 200, (600, 2)),
            rng.normal([4500, 1000], 100, (150, 2)),
            rng.uniform(0, 6000, (1500, 2)),
        ]
    )


def irregular_area() -> shapely.Geometry:
    """A concave study area with a round and a square hole, so empty and border cells matter."""
    outer = shapely.Polygon([(300, 200), (5800, 500), (5600, 5900), (2500, 5200), (400, 5700)])
    holes = shapely.union_all(
        [shapely.Point(3500, 3500).buffer(700), shapely.box(1000, 1000, 1600, 2200)]
    )
    return outer.difference(holes)


def esda_gi_star(gi: GiStar, permutations: int = 0, seed: int = 1) -> esda.G_Local:
    """The reference: esda's G_Local(star=True) with binary DistanceBand weights on the centres."""
    gx, gy = gi.window_.cell_keys()
    m = gi.cell_mask_
    cx, cy = cell_centres(gx[m], gy[m], gi.window_.cell_size_m)
    w = libpysal.weights.DistanceBand(
        np.column_stack([cx, cy]), threshold=gi.distance_band_m, binary=True, silence_warnings=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda warns about islands and its p_sim alternative
        return esda.G_Local(
            gi.counts_[m],
            w,
            transform="B",
            star=True,
            permutations=permutations,
            seed=seed,
            n_jobs=1,
        )


@pytest.mark.parametrize("distance_band_m", [100.0, 250.0, 300.0, 450.0])
@pytest.mark.parametrize("with_area", [False, True])
def test_gi_star_matches_esda(distance_band_m: float, with_area: bool) -> None:
    area = irregular_area() if with_area else None
    gi = GiStar(cell_size_m=100.0, distance_band_m=distance_band_m).fit(
        hotspot_incidents(), area=area
    )
    reference = esda_gi_star(gi)
    m = gi.cell_mask_
    np.testing.assert_allclose(gi.z_[m], reference.Zs, rtol=0, atol=1e-6)
    # esda's p_norm is one-sided; ours is two-sided.
    np.testing.assert_allclose(gi.p_[m], 2 * reference.p_norm, rtol=0, atol=1e-9)


def test_gi_star_matches_esda_on_memphis_robberies() -> None:
    xy = memphis_robberies()
    # The city as the robberies outline it: a concave hull with holes, widened by 400 m.
    city = shapely.concave_hull(shapely.MultiPoint(xy), ratio=0.05, allow_holes=True).buffer(400)
    gi = GiStar(cell_size_m=200.0, distance_band_m=600.0).fit(xy, area=city)
    reference = esda_gi_star(gi)
    np.testing.assert_allclose(gi.z_[gi.cell_mask_], reference.Zs, rtol=0, atol=1e-6)
    ix, iy = cell_index(xy[:, 0], xy[:, 1], 200.0)
    rows, cols = iy - gi.window_.iy0, ix - gi.window_.ix0
    in_window = (rows >= 0) & (rows < gi.window_.ny) & (cols >= 0) & (cols < gi.window_.nx)
    assert gi.n_incidents_ == gi.cell_mask_[rows[in_window], cols[in_window]].sum()
    assert (gi.bins_ == 3).sum() > 0


def test_study_cells_are_the_area_cells_empty_ones_included() -> None:
    area = irregular_area()
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0).fit(hotspot_incidents(), area=area)
    ix, iy = cells_in_area(area, 100.0)
    gx, gy = gi.window_.cell_keys()
    m = gi.cell_mask_
    assert set(zip(gx[m].tolist(), gy[m].tolist(), strict=True)) == set(
        zip(ix.tolist(), iy.tolist(), strict=True)
    )
    assert (gi.counts_[m] == 0).any()
    assert np.isnan(gi.z_[~m]).all() and np.isnan(gi.counts_[~m]).all()
    assert (gi.bins_[~m] == 0).all()


def test_without_area_every_cell_of_the_points_window_is_studied() -> None:
    xy = hotspot_incidents()
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0).fit(xy)
    assert gi.cell_mask_.all()
    assert gi.counts_.sum() == len(xy)


def test_footprint_is_the_disc_of_cell_centres_within_the_band() -> None:
    disc = disc_footprint(100.0, 300.0)
    assert disc.shape == (7, 7) and disc.sum() == 29  # offsets with dx² + dy² <= 9
    assert disc_footprint(100.0, 100.0).sum() == 5  # rook neighbours and self


def test_bins_apply_the_arcgis_fdr_threshold_per_confidence_level() -> None:
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0, fdr=True).fit(
        hotspot_incidents(), area=irregular_area()
    )
    m = gi.cell_mask_
    p, z = gi.p_[m], gi.z_[m]
    expected = np.zeros(p.size, dtype=np.int8)
    for level, alpha in ((1, 0.10), (2, 0.05), (3, 0.01)):
        # Benjamini–Hochberg step-up: the critical p is the largest p_(k) <= k·alpha/m.
        ranked = np.sort(p)
        below = np.flatnonzero(ranked <= np.arange(1, p.size + 1) * alpha / p.size)
        critical = ranked[below[-1]] if below.size else -1.0
        expected[p <= critical] = level
    expected = (expected * np.sign(z)).astype(np.int8)
    np.testing.assert_array_equal(gi.bins_[m], expected)
    assert set(np.unique(gi.bins_[m])) >= {0, 3}


def test_without_fdr_bins_use_the_raw_p_values() -> None:
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0, fdr=False).fit(hotspot_incidents())
    p, z = gi.p_.ravel(), gi.z_.ravel()
    level = np.select([p <= 0.01, p <= 0.05, p <= 0.10], [3, 2, 1], 0)
    np.testing.assert_array_equal(gi.bins_.ravel(), level * np.sign(z))
    fdr = GiStar(cell_size_m=100.0, distance_band_m=300.0, fdr=True).fit(hotspot_incidents())
    assert (np.abs(fdr.bins_) > 0).sum() < (np.abs(gi.bins_) > 0).sum()


def test_significant_cells_are_those_at_alpha() -> None:
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0, alpha=0.01).fit(hotspot_incidents())
    np.testing.assert_array_equal(gi.significant_, gi.p_adjusted_ <= 0.01)
    np.testing.assert_array_equal(gi.significant_, np.abs(gi.bins_) == 3)


def test_too_few_incidents_raise_instead_of_numbers() -> None:
    xy = hotspot_incidents()[:12]
    with pytest.raises(
        TooFewIncidents, match=r"^Gi\* needs at least 30 incidents in the study area, got 12$"
    ):
        GiStar(cell_size_m=100.0, distance_band_m=300.0).fit(xy)
    assert issubclass(TooFewIncidents, ValueError)


def test_incidents_outside_the_area_do_not_count_towards_the_minimum() -> None:
    inside = np.column_stack([np.linspace(1100, 1900, 25), np.full(25, 1500.0)])
    outside = np.full((40, 2), 9000.0)
    with pytest.raises(TooFewIncidents, match="got 25"):
        GiStar(cell_size_m=100.0, distance_band_m=300.0).fit(
            np.concatenate([inside, outside]), area=shapely.box(1000, 1000, 2000, 2000)
        )


def test_to_cells_has_one_row_per_study_cell() -> None:
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0).fit(
        hotspot_incidents(), area=irregular_area()
    )
    cells = gi.to_cells()
    assert len(cells) == gi.cell_mask_.sum()
    assert list(cells.columns) == ["ix", "iy", "count", "z", "p", "p_adjusted", "bin", "geometry"]
    rows, cols = cells["iy"] - gi.window_.iy0, cells["ix"] - gi.window_.ix0
    np.testing.assert_array_equal(cells["z"], gi.z_[rows, cols])
    assert cells["count"].sum() == gi.n_incidents_


def test_weights_add_up_per_cell() -> None:
    xy = hotspot_incidents()
    weights = np.where(np.arange(len(xy)) % 2 == 0, 2.0, 0.5)
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0).fit(xy, weights)
    assert np.nansum(gi.counts_) == pytest.approx(weights.sum())
    np.testing.assert_allclose(gi.z_[gi.cell_mask_], esda_gi_star(gi).Zs, atol=1e-6)


def test_permutations_are_deterministic_for_a_seed() -> None:
    xy = hotspot_incidents()
    a = GiStar(cell_size_m=100.0, distance_band_m=300.0, permutations=199, seed=5).fit(xy)
    b = GiStar(cell_size_m=100.0, distance_band_m=300.0, permutations=199, seed=5).fit(xy)
    assert a.p_sim_ is not None and b.p_sim_ is not None
    np.testing.assert_array_equal(a.p_sim_, b.p_sim_)
    np.testing.assert_array_equal(a.p_adjusted_, benjamini_hochberg(a.p_sim_))


@pytest.mark.slow
def test_permutation_p_values_agree_with_esda_in_distribution() -> None:
    # esda compiles its numba kernels on first use (~20 s).
    gi = GiStar(cell_size_m=100.0, distance_band_m=300.0, permutations=999, seed=0).fit(
        hotspot_incidents(), area=irregular_area()
    )
    reference = esda_gi_star(gi, permutations=999, seed=1)
    m = gi.cell_mask_
    assert gi.p_sim_ is not None
    ours, theirs = gi.p_sim_[m] / 2, reference.p_sim  # esda reports the smaller tail
    hot = gi.z_[m] > 0
    ours_hot, theirs_hot = hot & (ours <= 0.01), hot & (theirs <= 0.01)
    assert theirs_hot.sum() > 50
    jaccard = (ours_hot & theirs_hot).sum() / (ours_hot | theirs_hot).sum()
    assert jaccard >= 0.9
    assert np.corrcoef(ours[hot], theirs[hot])[0, 1] > 0.95


def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=500), rng.uniform(0, 1e-3, 50), [0.5, 0.5, 0.5, 0.0, 1.0]])
    np.testing.assert_allclose(
        benjamini_hochberg(p), false_discovery_control(p, method="bh"), rtol=1e-12
    )


def test_benjamini_hochberg_leaves_nan_cells_out() -> None:
    p = np.array([[0.01, np.nan], [0.04, 0.03]])
    adjusted = benjamini_hochberg(p)
    assert np.isnan(adjusted[0, 1])
    np.testing.assert_allclose(adjusted[~np.isnan(p)], false_discovery_control([0.01, 0.04, 0.03]))

"""Kernel density on the grid equals the exact kernel sum at cell centres, within its bound."""

from __future__ import annotations

import math
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from clustering.isopleths import density_isopleths
from clustering.kde import (
    _MAX_RHO_FOR_ORDER,
    GAUSSIAN_PAIR_TOLERANCE,
    KernelDensity,
    _gaussian_pair_error,
    _hermite,
    arcgis_bandwidth,
)
from clustering.synthetic import HotspotSpec, generate_incidents
from geo.grid import GridWindow, cells_in_area

FloatArray = npt.NDArray[np.float64]
MEMPHIS_CSV = (
    Path(__file__).resolve().parents[2] / "data" / "memphis" / "memphis_robberies_2019.csv"
)


def memphis_robberies() -> FloatArray:
    """The 2,245 Memphis robberies of 2019 in UTM 16N metres (many share a rounded location)."""
    table = pd.read_csv(MEMPHIS_CSV)
    to_utm = Transformer.from_crs(4326, 32616, always_xy=True)
    x, y = to_utm.transform(table["lon"].to_numpy(), table["lat"].to_numpy())
    return np.column_stack([x, y])


def clustered_incidents() -> FloatArray:
    """Three Gaussian hotspots, uniform background and 40 incidents stacked at one address."""
    hotspots = [
        HotspotSpec(2000, 3000, 150, weight=3),
        HotspotSpec(4200, 2500, 60, weight=1),
        HotspotSpec(3500, 4500, 400, weight=2),
    ]
    incidents = generate_incidents(
        hotspots, 2500, start=datetime(2026, 1, 5, tzinfo=UTC), weeks=4,
        background_share=0.3, bounds=(0, 0, 6000, 6000), seed=7,
    )  # fmt: skip
    stack = np.repeat([[3100.3, 1207.7]], 40, axis=0)
    return np.concatenate([incidents.xy, stack])


def exact_density(
    kde: KernelDensity, xy: FloatArray, weights: FloatArray | None = None
) -> FloatArray:
    """The reference: sum of the kernel over every point at every cell centre of the window.

    Pairs are found with a k-d tree (Gaussian: within 8 bandwidths, where the kernel is 1e-14 of
    its peak; quartic: within its radius) and the kernel is evaluated on their exact distances.
    """
    h = kde.bandwidth_m_
    cx, cy = kde.window_.centres()
    centres = np.column_stack([cx.ravel(), cy.ravel()])
    reach = 8 * h if kde.kernel == "gaussian" else h
    pairs = cKDTree(centres).sparse_distance_matrix(cKDTree(xy), reach, output_type="ndarray")
    i, j = pairs["i"], pairs["j"]
    d2 = ((centres[i] - xy[j]) ** 2).sum(axis=1)
    if kde.kernel == "gaussian":
        k = np.exp(-d2 / (2 * h * h)) / (2 * math.pi * h * h)
    else:
        k = np.where(d2 < h * h, 3 / (math.pi * h * h) * (1 - d2 / (h * h)) ** 2, 0.0)
    w = np.ones(len(xy)) if weights is None else weights
    total = np.bincount(i, weights=k * w[j], minlength=len(centres))
    return total.reshape(cx.shape) * 1e6


def relative_error_on_cells_above_one_percent(ours: FloatArray, exact: FloatArray) -> float:
    """The requirement's measure: worst relative error over cells above 1% of the maximum."""
    big = exact > 0.01 * exact.max()
    return float((np.abs(ours[big] - exact[big]) / exact[big]).max())


@pytest.mark.parametrize("kernel", ["gaussian", "quartic"])
@pytest.mark.parametrize("bandwidth_m", [60.0, 100.0, 150.0, 250.0, 600.0])
def test_kde_error_below_one_percent_against_exact_sum(kernel: str, bandwidth_m: float) -> None:
    xy = clustered_incidents()
    below_cell = bandwidth_m < 100
    with pytest.warns(UserWarning, match="undersample") if below_cell else nullcontext():
        kde = KernelDensity(
            cell_size_m=100.0,
            bandwidth_m=bandwidth_m,
            kernel=kernel,  # type: ignore[arg-type]
        ).fit(xy)
    exact = exact_density(kde, xy)
    error = relative_error_on_cells_above_one_percent(kde.density_, exact)
    assert error <= 0.01
    # The stated bounds: 0.25% per nearby pair for the Gaussian, exact for the quartic.
    assert error <= (GAUSSIAN_PAIR_TOLERANCE if kernel == "gaussian" else 1e-9)


@pytest.mark.parametrize("kernel", ["gaussian", "quartic"])
@pytest.mark.parametrize(
    ("cell_size_m", "bandwidth_m"), [(100.0, 100.0), (100.0, 250.0), (250.0, 1000.0)]
)
def test_kde_error_below_one_percent_on_memphis_robberies(
    kernel: str, cell_size_m: float, bandwidth_m: float
) -> None:
    xy = memphis_robberies()
    kde = KernelDensity(
        cell_size_m=cell_size_m,
        bandwidth_m=bandwidth_m,
        kernel=kernel,  # type: ignore[arg-type]
    ).fit(xy)
    exact = exact_density(kde, xy)
    error = relative_error_on_cells_above_one_percent(kde.density_, exact)
    assert error <= 0.01
    assert error <= (GAUSSIAN_PAIR_TOLERANCE if kernel == "gaussian" else 1e-9)


def test_quartic_is_exact_around_a_stack_of_incidents() -> None:
    # 40 robberies at one address: cells ~0.9 h away get a small density that any binning or
    # interpolation gets wrong by tens of percent; the edge cells are summed point by point.
    xy = np.concatenate([np.repeat([[1037.4, 2061.9]], 40, axis=0), [[1500.0, 1800.0]]])
    kde = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0, kernel="quartic").fit(xy)
    exact = exact_density(kde, xy)
    reached = exact > 0
    assert np.allclose(kde.density_[reached], exact[reached], rtol=1e-9, atol=0)
    assert (kde.density_[~reached] == 0).all()


def test_gaussian_expansion_order_table_meets_its_tolerance() -> None:
    for order, max_rho in _MAX_RHO_FOR_ORDER.items():
        assert _gaussian_pair_error(max_rho, order, r_max=3.5, n=101) <= GAUSSIAN_PAIR_TOLERANCE


def test_gaussian_expansion_errs_below_1e5_of_the_peak_on_far_pairs() -> None:
    # The far-point term of the bound: pairs beyond 3.5 bandwidths, out to the farthest offset
    # the convolution sums reach (5 h + half a cell along each axis, below 6 h for rho <= 0.65).
    for order, max_rho in _MAX_RHO_FOR_ORDER.items():
        assert far_pair_error_over_peak(max_rho, order, r_min=3.5, reach=6.0) <= 1e-5


def far_pair_error_over_peak(rho: float, order: int, r_min: float, reach: float) -> float:
    """Worst |expansion - kernel| / K(0) over cell offsets v up to `reach` bandwidths along each
    axis (a 161 × 161 grid) and sub-cell offsets e on a 9 × 9 grid, for pairs beyond r_min."""
    u = np.linspace(-reach, reach, 161)
    e = np.linspace(-rho, rho, 9)
    vx, vy, ex, ey = np.meshgrid(u, u, e, e, indexing="ij", sparse=True)
    hx, hy = _hermite(order, vx), _hermite(order, vy)
    tx = [ex**a / math.factorial(a) * hx[a] for a in range(order + 1)]
    ty = [ey**b / math.factorial(b) * hy[b] for b in range(order + 1)]
    approx = sum(tx[a] * ty[b] for a in range(order + 1) for b in range(order + 1 - a))
    exact = np.exp(vx * ex - ex**2 / 2 + vy * ey - ey**2 / 2)
    error = np.abs(approx - exact) * np.exp(-(vx**2 + vy**2) / 2)  # K(v) / K(0) times the factor
    far = np.broadcast_to(np.hypot(vx - ex, vy - ey) > r_min, error.shape)
    return float(error[far].max())


def test_density_integrates_to_the_number_of_incidents() -> None:
    xy = clustered_incidents()
    kde = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(xy)
    cell_km2 = (100.0 / 1000.0) ** 2
    assert kde.density_.sum() * cell_km2 == pytest.approx(len(xy), rel=1e-5)


def test_weights_count_as_repeated_incidents() -> None:
    xy = clustered_incidents()[:300]
    weights = np.arange(300) % 3 + 0.0
    weighted = KernelDensity(cell_size_m=100.0, bandwidth_m=200.0, kernel="quartic").fit(
        xy, weights
    )
    repeated = KernelDensity(cell_size_m=100.0, bandwidth_m=200.0, kernel="quartic").fit(
        np.repeat(xy, weights.astype(int), axis=0)
    )
    shared = _common_cells(weighted, repeated)  # zero-weight points widen one window
    np.testing.assert_allclose(shared[0], shared[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        weighted.density_, exact_density(weighted, xy, weights), rtol=1e-9, atol=1e-9
    )


def test_area_reports_only_its_cells_and_counts_incidents_across_its_border() -> None:
    xy = clustered_incidents()
    area = shapely.Polygon([(1500, 1500), (4500, 1800), (4000, 4200), (1800, 3900)])
    inside_only = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(xy, area=area)
    everywhere = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(xy)
    ix, iy = cells_in_area(area, 100.0)
    gx, gy = inside_only.window_.cell_keys()
    reported = set(
        zip(gx[inside_only.cell_mask_].tolist(), gy[inside_only.cell_mask_].tolist(), strict=True)
    )
    assert reported == set(zip(ix.tolist(), iy.tolist(), strict=True))
    assert np.isnan(inside_only.density_[~inside_only.cell_mask_]).all()
    # Incidents just outside the area add to the density inside it, exactly as without the area.
    w = everywhere.window_
    cols, rows = ix - w.ix0, iy - w.iy0
    expected = everywhere.density_[rows, cols]
    got = inside_only.density_[iy - inside_only.window_.iy0, ix - inside_only.window_.ix0]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_incidents_beyond_the_window_do_not_count() -> None:
    xy = clustered_incidents()
    area = shapely.box(1000, 1000, 3000, 3000)
    far = np.concatenate([xy, [[50_000.0, 50_000.0]]])
    a = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(xy, area=area)
    b = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(far, area=area)
    np.testing.assert_array_equal(a.density_, b.density_)


def test_bandwidth_below_half_a_cell_is_refused() -> None:
    with pytest.raises(ValueError, match="half the cell size"):
        KernelDensity(cell_size_m=100.0, bandwidth_m=40.0).fit(clustered_incidents())


def test_bandwidth_below_the_cell_size_warns() -> None:
    with pytest.warns(UserWarning, match="undersample"):
        KernelDensity(cell_size_m=100.0, bandwidth_m=80.0).fit(clustered_incidents())


def test_arcgis_bandwidth_matches_a_hand_computation() -> None:
    # Four corners of a 6 × 8 rectangle and its centre: the mean centre is (3, 4); distances are
    # 5, 5, 5, 5, 0, so Dm = 5 and SD = sqrt(4 · 25 / 5) = sqrt(20); sqrt(1 / ln 2) · 5 = 6.0056
    # > sqrt(20), so h = 0.9 · sqrt(20) · 5^-0.2 = 0.9 · 4.47214 · 0.72478 = 2.91718.
    xy = np.array([[0, 0], [6, 0], [0, 8], [6, 8], [3, 4]], dtype=float)
    assert arcgis_bandwidth(xy) == pytest.approx(0.9 * math.sqrt(20) * 5**-0.2, rel=1e-12)
    assert arcgis_bandwidth(xy) == pytest.approx(2.91718, abs=1e-5)


def test_arcgis_bandwidth_uses_the_median_distance_when_outliers_inflate_sd() -> None:
    # Nine points on a circle of radius 10 around the origin and one at (1000, 0): the mean
    # centre is (100, 0); the median distance is the mean of the 5th and 6th distances, and SD
    # is dominated by the outlier, so the median branch wins.
    angles = np.linspace(0, 2 * math.pi, 9, endpoint=False)
    xy = np.vstack([np.column_stack([10 * np.cos(angles), 10 * np.sin(angles)]), [[1000, 0]]])
    d = np.sort(np.hypot(xy[:, 0] - 100, xy[:, 1]))
    dm = (d[4] + d[5]) / 2
    sd = math.sqrt((d**2).mean())
    assert math.sqrt(1 / math.log(2)) * dm < sd
    assert arcgis_bandwidth(xy) == pytest.approx(0.9 * math.sqrt(1 / math.log(2)) * dm * 10**-0.2)


def test_arcgis_bandwidth_weights_count_as_repeated_points() -> None:
    xy = clustered_incidents()[:200]
    weights = (np.arange(200) % 4).astype(float)
    repeated = np.repeat(xy, weights.astype(int), axis=0)
    assert arcgis_bandwidth(xy, weights) == pytest.approx(arcgis_bandwidth(repeated), rel=1e-12)


def test_default_bandwidth_follows_the_arcgis_rule() -> None:
    xy = memphis_robberies()
    kde = KernelDensity(cell_size_m=200.0).fit(xy)
    assert kde.bandwidth_m_ == pytest.approx(arcgis_bandwidth(xy))


def test_to_cells_lists_every_nonzero_cell_with_its_square() -> None:
    xy = clustered_incidents()
    kde = KernelDensity(cell_size_m=100.0, bandwidth_m=150.0, kernel="quartic").fit(xy)
    cells = kde.to_cells()
    assert len(cells) == int((kde.density_ > 0).sum())
    rows, cols = cells["iy"] - kde.window_.iy0, cells["ix"] - kde.window_.ix0
    np.testing.assert_array_equal(cells["density"], kde.density_[rows, cols])
    assert np.allclose(cells.area, 100.0**2)


def test_isopleth_is_the_smallest_cell_set_holding_its_share() -> None:
    kde = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(clustered_incidents())
    isopleths = kde.isopleths((0.5, 0.75, 0.9))
    values = np.sort(kde.density_[kde.density_ > 0])[::-1]
    total = values.sum()
    for row in isopleths.itertuples():
        held = values[: row.cell_count].sum()
        assert held >= row.share * total
        assert held - values[row.cell_count - 1] < row.share * total
        assert row.min_density == values[row.cell_count - 1]


def test_isopleths_are_valid_nested_polygons() -> None:
    kde = KernelDensity(cell_size_m=100.0, bandwidth_m=250.0).fit(clustered_incidents())
    isopleths = kde.isopleths((0.5, 0.75, 0.9))
    assert isopleths.is_valid.all()
    assert list(isopleths.columns) == ["share", "cell_count", "area_m2", "min_density", "geometry"]
    np.testing.assert_allclose(isopleths.area, isopleths["area_m2"])
    np.testing.assert_allclose(isopleths["area_m2"], isopleths["cell_count"] * 100.0**2)
    g50, g75, g90 = isopleths.geometry
    assert g50.within(g75) and g75.within(g90)


def test_isopleth_ties_are_broken_by_cell_key() -> None:
    window = GridWindow(100.0, ix0=10, iy0=20, nx=10, ny=10)
    flat = np.ones(window.shape)
    (half,) = density_isopleths(flat, window, (0.5,)).geometry
    # Equal densities: the 50 cells with the lowest (iy, ix) keys, i.e. the southern five rows.
    assert half.equals(shapely.box(1000, 2000, 2000, 2500))


def _common_cells(a: KernelDensity, b: KernelDensity) -> tuple[FloatArray, FloatArray]:
    """Both densities on the cells the two windows share."""
    wa, wb = a.window_, b.window_
    ix0, iy0 = max(wa.ix0, wb.ix0), max(wa.iy0, wb.iy0)
    ix1 = min(wa.ix0 + wa.nx, wb.ix0 + wb.nx)
    iy1 = min(wa.iy0 + wa.ny, wb.iy0 + wb.ny)
    da = a.density_[iy0 - wa.iy0 : iy1 - wa.iy0, ix0 - wa.ix0 : ix1 - wa.ix0]
    db = b.density_[iy0 - wb.iy0 : iy1 - wb.iy0, ix0 - wb.ix0 : ix1 - wb.ix0]
    return da, db

"""DBSCAN on points in metres, giving scikit-learn's clusters on a grid that fits a million points.

scikit-learn's DBSCAN keeps every point's neighbour list in memory, which for a million
incidents in dense hotspots is tens of gigabytes. Here the points are binned into cells of side
eps/sqrt(2), so that every pair inside one cell is within eps:

1. identical coordinates are collapsed into one point carrying their summed weight;
2. a cell whose weight reaches min_samples makes all its points core; other points count their
   neighbours in the 5 x 5 block of cells around them, stopping as soon as they are core;
3. all core points of a cell are within eps of each other, so clusters are the connected
   components of core cells, two cells joined when any core pair across them is within eps;
4. a border point joins, of the clusters with a core point within eps, the one numbered first.

Distances are compared as dx*dx + dy*dy <= eps*eps, as scikit-learn's KD-tree does, and clusters
are numbered by their first core point in input order, as scikit-learn numbers them; its border
points also go to the first-numbered cluster reaching them, so the labels are scikit-learn's.
Where they can differ: fractional weights are summed in another order, so a neighbour weight
equal to min_samples up to rounding may fall either side (integer weights are exact); for fewer
than 12 points scikit-learn switches to brute force, whose distance formula loses precision far
from the origin (ours does not); and all-zero weights, which scikit-learn refuses, give noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from numba import njit

from clustering.params import Estimator
from geo.points import as_weights, as_xy, unique_points

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Cells are made slightly smaller than eps/sqrt(2) so that rounding in floor(x / side) cannot
# put two points further apart than eps into one cell; each cell is checked, and a larger
# margin is tried if a check fails (only for eps tiny against the extent of the points).
_CELL_MARGINS = (1e-9, 1e-6, 1e-3)
# A point's neighbours within eps lie in the columns ix-2..ix+2 and rows iy-2..iy+2 around it.
_REACH_CELLS = 2
# Nearest columns first, so that counting neighbours reaches min_samples, and stops, sooner.
_COLUMNS = (0, -1, 1, -2, 2)


class DBSCAN(Estimator):
    """Density-based clusters of points in metres, with scikit-learn's DBSCAN semantics.

    A point is core when the summed weight of the points within eps_m of it (itself included,
    distance <= eps_m) is at least min_samples. Core points within eps_m of each other share a
    cluster; a non-core point within eps_m of a core point is a border point of that cluster,
    and of the first-numbered one when several reach it; every other point is noise (-1).
    Clusters are numbered 0..k-1 in the order of their first core point in the input.
    """

    labels_: IntArray
    core_sample_indices_: IntArray
    core_mask_: BoolArray
    n_clusters_: int

    def __init__(
        self, *, eps_m: float, min_samples: int, algorithm: Literal["grid"] = "grid"
    ) -> None:
        self.eps_m = eps_m
        self.min_samples = min_samples
        self.algorithm = algorithm

    def fit(self, points: Any, weights: Any = None) -> DBSCAN:
        """Cluster points (an (n, 2) array in metres or a GeoSeries/GeoDataFrame); return self.

        weights are per-point sample weights (non-negative), as scikit-learn's sample_weight.
        """
        eps_m, min_samples = self._checked_params()
        xy = as_xy(points)
        w = as_weights(weights, len(xy))
        self.labels_, self.core_mask_ = dbscan_labels(xy, w, eps_m, min_samples)
        self.core_sample_indices_ = np.flatnonzero(self.core_mask_).astype(np.int64)
        self.n_clusters_ = int(self.labels_.max()) + 1 if self.labels_.size else 0
        return self

    def fit_predict(self, points: Any, weights: Any = None) -> IntArray:
        """Cluster points and return their labels (-1 for noise)."""
        return self.fit(points, weights).labels_

    def _checked_params(self) -> tuple[float, int]:
        if self.algorithm != "grid":
            raise ValueError(
                f"algorithm must be 'grid', got {self.algorithm!r}; for HDBSCAN use "
                "clustering.dbscan.HDBSCAN"
            )
        eps_m = float(self.eps_m)
        if not (math.isfinite(eps_m) and eps_m > 0):
            raise ValueError(f"eps_m must be a positive number of metres, got {self.eps_m}")
        if isinstance(self.min_samples, bool) or int(self.min_samples) != self.min_samples:
            raise ValueError(f"min_samples must be an integer, got {self.min_samples!r}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")
        return eps_m, int(self.min_samples)


class HDBSCAN(Estimator):
    """Hierarchical density clusters from scikit-learn's HDBSCAN, run on the distinct locations.

    Identical coordinates are collapsed before clustering and the labels copied back to every
    point. scikit-learn's HDBSCAN takes no sample weights, so a location counts once towards
    min_cluster_size and min_samples however many incidents it holds: many incidents at one
    address do not by themselves make a cluster (use DBSCAN with its weights for that).
    scikit-learn sees the locations sorted by x, then y, so the result does not depend on the
    input order (scikit-learn's own does, through ties between reachability distances), and
    clusters are renumbered 0..k-1 in the order of their first point in the input.
    """

    labels_: IntArray
    probabilities_: FloatArray
    n_clusters_: int

    def __init__(self, *, min_cluster_size: int, min_samples: int | None = None) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples

    def fit(self, points: Any) -> HDBSCAN:
        """Cluster points (an (n, 2) array in metres or a GeoSeries/GeoDataFrame); return self."""
        if int(self.min_cluster_size) != self.min_cluster_size or self.min_cluster_size < 2:
            raise ValueError(
                f"min_cluster_size must be an integer >= 2, got {self.min_cluster_size}"
            )
        if self.min_samples is not None and (
            int(self.min_samples) != self.min_samples or self.min_samples < 1
        ):
            raise ValueError(f"min_samples must be an integer >= 1, got {self.min_samples}")
        xy = as_xy(points)
        distinct, inverse, _ = unique_points(xy)
        needed = self.min_samples if self.min_samples is not None else self.min_cluster_size
        if len(distinct) < max(2, needed):
            # Too few locations for scikit-learn to build a hierarchy: all noise.
            labels = np.full(len(distinct), -1, dtype=np.int64)
            probabilities = np.zeros(len(distinct), dtype=np.float64)
        else:
            # Imported here: scikit-learn takes a second to import and DBSCAN does not need it.
            from sklearn.cluster import HDBSCAN as SklearnHDBSCAN  # noqa: N811

            model = SklearnHDBSCAN(
                min_cluster_size=self.min_cluster_size, min_samples=self.min_samples, copy=True
            ).fit(distinct)
            labels = np.asarray(model.labels_, dtype=np.int64)
            probabilities = np.asarray(model.probabilities_, dtype=np.float64)
        self.labels_ = _numbered_by_first_point(labels[inverse])
        self.probabilities_ = probabilities[inverse]
        self.n_clusters_ = int(self.labels_.max()) + 1 if self.labels_.size else 0
        return self

    def fit_predict(self, points: Any) -> IntArray:
        """Cluster points and return their labels (-1 for noise)."""
        return self.fit(points).labels_


def dbscan_labels(
    xy: FloatArray, weights: FloatArray, eps_m: float, min_samples: int
) -> tuple[IntArray, BoolArray]:
    """Return DBSCAN labels (-1 noise) and the core mask of points xy (metres) with weights."""
    n = len(xy)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    distinct, inverse, first_row = unique_points(xy)
    distinct_w = np.bincount(inverse, weights=weights, minlength=len(distinct)).astype(np.float64)
    eps2 = eps_m * eps_m
    grid = _CellGrid.build(distinct, eps_m)
    x = np.ascontiguousarray(distinct[grid.order, 0])
    y = np.ascontiguousarray(distinct[grid.order, 1])
    w = distinct_w[grid.order]
    first = first_row[grid.order]

    core = _core_mask(
        x, y, w, grid.start, grid.weight(w), grid.box, grid.col_lo, grid.col_hi, eps2, min_samples
    )
    core_box, has_core, first_core = _core_boxes(x, y, core, first, grid.start)
    root = _connect_cells(
        x, y, core, grid.start, core_box, has_core, grid.col_lo, grid.col_hi, eps2
    )
    cell_label = _cluster_numbers(root, has_core, first_core)
    sorted_labels = _label_points(
        x, y, core, grid.start, core_box, cell_label, grid.col_lo, grid.col_hi, eps2
    )

    distinct_labels = np.empty(len(distinct), dtype=np.int64)
    distinct_labels[grid.order] = sorted_labels
    distinct_core = np.empty(len(distinct), dtype=bool)
    distinct_core[grid.order] = core
    return distinct_labels[inverse], distinct_core[inverse]


@dataclass(frozen=True)
class _CellGrid:
    """Distinct points sorted into cells of side just under eps/sqrt(2), each a contiguous slice.

    order sorts the points by cell; cell c holds sorted points start[c]:start[c+1] within the
    bounding box box[c] = (min x, max x, min y, max y); the cells of rows iy-2..iy+2 in column
    ix + _COLUMNS[k] around cell c are the cell indices col_lo[c, k]:col_hi[c, k].
    """

    order: IntArray
    start: IntArray
    box: FloatArray
    col_lo: IntArray
    col_hi: IntArray

    @classmethod
    def build(cls, xy: FloatArray, eps_m: float) -> _CellGrid:
        """Bin distinct points xy into cells in which every pair lies within eps_m."""
        eps2 = eps_m * eps_m
        for margin in _CELL_MARGINS:
            side_m = eps_m / math.sqrt(2.0) * (1.0 - margin)
            keys, n_rows = _cell_keys(xy, side_m)
            order = np.argsort(keys, kind="stable").astype(np.int64)
            sorted_keys = keys[order]
            first = np.ones(len(keys), dtype=bool)
            first[1:] = sorted_keys[1:] != sorted_keys[:-1]
            start = np.append(np.flatnonzero(first), len(keys)).astype(np.int64)
            box = _boxes(xy[order], start)
            dx, dy = box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]
            if (dx * dx + dy * dy <= eps2).all():
                break
        else:
            raise ValueError(f"eps_m={eps_m} is too small for the extent of the points")
        cell_keys = sorted_keys[start[:-1]]
        col_lo = np.column_stack(
            [np.searchsorted(cell_keys, cell_keys + di * n_rows - _REACH_CELLS) for di in _COLUMNS]
        )
        col_hi = np.column_stack(
            [
                np.searchsorted(cell_keys, cell_keys + di * n_rows + _REACH_CELLS, side="right")
                for di in _COLUMNS
            ]
        )
        return cls(order, start, box, col_lo.astype(np.int64), col_hi.astype(np.int64))

    def weight(self, sorted_weights: FloatArray) -> FloatArray:
        """Return the summed weight of each cell, given the weights in cell order."""
        return np.add.reduceat(sorted_weights, self.start[:-1])


def _cell_keys(xy: FloatArray, side_m: float) -> tuple[IntArray, int]:
    """Return one int64 key per point, ix * n_rows + iy + 2, and n_rows.

    The padding of 2 rows on each side keeps the rows iy-2..iy+2 of a column inside it, so the
    cells around a point in one column are a contiguous run of keys.
    """
    ix = np.floor((xy[:, 0] - xy[:, 0].min()) / side_m).astype(np.int64)
    iy = np.floor((xy[:, 1] - xy[:, 1].min()) / side_m).astype(np.int64)
    n_rows = int(iy.max()) + 1 + 2 * _REACH_CELLS
    if (int(ix.max()) + 1 + _REACH_CELLS) * n_rows >= 2**62:
        raise ValueError("eps_m is too small for the extent of the points")
    return ix * n_rows + iy + _REACH_CELLS, n_rows


def _boxes(sorted_xy: FloatArray, start: IntArray) -> FloatArray:
    """Return (min x, max x, min y, max y) of each cell's points."""
    cells = start[:-1]
    x, y = sorted_xy[:, 0], sorted_xy[:, 1]
    return np.column_stack(
        [
            np.minimum.reduceat(x, cells),
            np.maximum.reduceat(x, cells),
            np.minimum.reduceat(y, cells),
            np.maximum.reduceat(y, cells),
        ]
    )


def _core_boxes(
    x: FloatArray, y: FloatArray, core: BoolArray, first: IntArray, start: IntArray
) -> tuple[FloatArray, BoolArray, IntArray]:
    """Return each cell's bounding box of core points, whether it has any, and the first
    input row among them."""
    cells = start[:-1]
    box = np.column_stack(
        [
            np.minimum.reduceat(np.where(core, x, np.inf), cells),
            np.maximum.reduceat(np.where(core, x, -np.inf), cells),
            np.minimum.reduceat(np.where(core, y, np.inf), cells),
            np.maximum.reduceat(np.where(core, y, -np.inf), cells),
        ]
    )
    has_core = np.logical_or.reduceat(core, cells)
    no_row = np.iinfo(np.int64).max
    first_core = np.minimum.reduceat(np.where(core, first, no_row), cells)
    return box, has_core, first_core


def _cluster_numbers(root: IntArray, has_core: BoolArray, first_core: IntArray) -> IntArray:
    """Return each cell's cluster label, clusters numbered by their first core point; -1 if none."""
    cells = np.flatnonzero(has_core)
    by_first = cells[np.argsort(first_core[cells], kind="stable")]
    roots, first_seen = np.unique(root[by_first], return_index=True)
    label_of_root = np.full(len(root), -1, dtype=np.int64)
    label_of_root[roots[np.argsort(first_seen)]] = np.arange(len(roots), dtype=np.int64)
    cell_label = np.full(len(root), -1, dtype=np.int64)
    cell_label[cells] = label_of_root[root[cells]]
    return cell_label


def _numbered_by_first_point(labels: IntArray) -> IntArray:
    """Return labels renumbered 0..k-1 in the order of each cluster's first point; -1 kept."""
    clustered = labels >= 0
    if not clustered.any():
        return labels.astype(np.int64)
    ids, first_seen = np.unique(labels[clustered], return_index=True)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(first_seen)] = np.arange(len(ids), dtype=np.int64)
    out = np.full(len(labels), -1, dtype=np.int64)
    out[clustered] = rank[np.searchsorted(ids, labels[clustered])]
    return out


# The hot loops. Bounding-box tests only skip or take whole cells when every point in the cell
# would give the same answer: floating-point subtraction and squaring are monotone, so a box
# distance computed as below never crosses eps where a point distance would not.


@njit(cache=True)
def _gap2(px: float, py: float, box: FloatArray, c: int) -> float:
    """Squared distance from (px, py) to the nearest point of box c: no point is nearer."""
    gx = max(box[c, 0] - px, px - box[c, 1], 0.0)
    gy = max(box[c, 2] - py, py - box[c, 3], 0.0)
    return gx * gx + gy * gy


@njit(cache=True)
def _reach2(px: float, py: float, box: FloatArray, c: int) -> float:
    """Squared distance from (px, py) to the farthest corner of box c: no point is farther."""
    fx = max(px - box[c, 0], box[c, 1] - px)
    fy = max(py - box[c, 2], box[c, 3] - py)
    return fx * fx + fy * fy


@njit(cache=True)
def _core_mask(
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    start: IntArray,
    cell_w: FloatArray,
    box: FloatArray,
    col_lo: IntArray,
    col_hi: IntArray,
    eps2: float,
    min_samples: int,
) -> BoolArray:
    """Return which points have at least min_samples weight within eps (themselves included)."""
    core = np.zeros(x.size, dtype=np.bool_)
    for c in range(start.size - 1):
        if cell_w[c] >= min_samples:
            core[start[c] : start[c + 1]] = True
            continue
        for i in range(start[c], start[c + 1]):
            core[i] = _is_core(i, c, x, y, w, start, cell_w, box, col_lo, col_hi, eps2, min_samples)
    return core


@njit(cache=True)
def _is_core(
    i: int,
    c: int,
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    start: IntArray,
    cell_w: FloatArray,
    box: FloatArray,
    col_lo: IntArray,
    col_hi: IntArray,
    eps2: float,
    min_samples: int,
) -> bool:
    """Return whether point i of cell c has at least min_samples weight within eps."""
    px, py = x[i], y[i]
    # Bound the weight within eps from cells wholly inside (surely) and cut by the disc (maybe),
    # then scan the cut cells, nearest first, until the bounds decide either way.
    surely = cell_w[c]  # the whole own cell is within eps
    maybe = 0.0
    for k in range(col_lo.shape[1]):
        for d in range(col_lo[c, k], col_hi[c, k]):
            if d == c or _gap2(px, py, box, d) > eps2:
                continue
            if _reach2(px, py, box, d) <= eps2:
                surely += cell_w[d]
            else:
                maybe += cell_w[d]
    if surely >= min_samples or surely + maybe < min_samples:
        return surely >= min_samples
    for k in range(col_lo.shape[1]):
        for d in range(col_lo[c, k], col_hi[c, k]):
            if d == c or _gap2(px, py, box, d) > eps2 or _reach2(px, py, box, d) <= eps2:
                continue
            for j in range(start[d], start[d + 1]):
                dx, dy = x[j] - px, y[j] - py
                if dx * dx + dy * dy <= eps2:
                    surely += w[j]
                    if surely >= min_samples:
                        return True
            maybe -= cell_w[d]  # scanned: what was within eps is now in surely
            if surely + maybe < min_samples:
                return False
    return surely >= min_samples


@njit(cache=True)
def _find(parent: IntArray, c: int) -> int:
    """Return the root of c's set, halving the path on the way."""
    while parent[c] != c:
        parent[c] = parent[parent[c]]
        c = parent[c]
    return c


@njit(cache=True)
def _cores_touch(
    x: FloatArray,
    y: FloatArray,
    core: BoolArray,
    start: IntArray,
    core_box: FloatArray,
    a: int,
    b: int,
    eps2: float,
) -> bool:
    """Return whether some core point of cell a lies within eps of some core point of cell b."""
    if start[a + 1] - start[a] > start[b + 1] - start[b]:
        a, b = b, a  # walk the smaller cell, scan the larger
    for i in range(start[a], start[a + 1]):
        if not core[i] or _gap2(x[i], y[i], core_box, b) > eps2:
            continue
        for j in range(start[b], start[b + 1]):
            if core[j]:
                dx, dy = x[j] - x[i], y[j] - y[i]
                if dx * dx + dy * dy <= eps2:
                    return True
    return False


@njit(cache=True)
def _connect_cells(
    x: FloatArray,
    y: FloatArray,
    core: BoolArray,
    start: IntArray,
    core_box: FloatArray,
    has_core: BoolArray,
    col_lo: IntArray,
    col_hi: IntArray,
    eps2: float,
) -> IntArray:
    """Return each cell's cluster root: union-find over cells with a core pair within eps."""
    n_cells = start.size - 1
    parent = np.arange(n_cells, dtype=np.int64)
    for a in range(n_cells):
        if not has_core[a]:
            continue
        for k in range(col_lo.shape[1]):
            for b in range(max(col_lo[a, k], a + 1), col_hi[a, k]):
                if not has_core[b]:
                    continue
                ra, rb = _find(parent, a), _find(parent, b)
                if ra == rb:
                    continue
                gx = max(core_box[b, 0] - core_box[a, 1], core_box[a, 0] - core_box[b, 1], 0.0)
                gy = max(core_box[b, 2] - core_box[a, 3], core_box[a, 2] - core_box[b, 3], 0.0)
                if gx * gx + gy * gy > eps2:
                    continue
                if _cores_touch(x, y, core, start, core_box, a, b, eps2):
                    parent[max(ra, rb)] = min(ra, rb)
    for c in range(n_cells):
        parent[c] = _find(parent, c)
    return parent


@njit(cache=True)
def _label_points(
    x: FloatArray,
    y: FloatArray,
    core: BoolArray,
    start: IntArray,
    core_box: FloatArray,
    cell_label: IntArray,
    col_lo: IntArray,
    col_hi: IntArray,
    eps2: float,
) -> IntArray:
    """Return each point's label: its cell's cluster if core, else the lowest-numbered cluster
    with a core point within eps, else -1."""
    labels = np.full(x.size, -1, dtype=np.int64)
    no_label = np.iinfo(np.int64).max
    for c in range(start.size - 1):
        for i in range(start[c], start[c + 1]):
            if core[i]:
                labels[i] = cell_label[c]
                continue
            px, py = x[i], y[i]
            best = no_label
            for k in range(col_lo.shape[1]):
                for d in range(col_lo[c, k], col_hi[c, k]):
                    label = cell_label[d]
                    # All core points of a cell share its label: one within eps is enough.
                    if label < 0 or label >= best or _gap2(px, py, core_box, d) > eps2:
                        continue
                    if _reach2(px, py, core_box, d) <= eps2:
                        best = label
                        continue
                    for j in range(start[d], start[d + 1]):
                        if core[j]:
                            dx, dy = x[j] - px, y[j] - py
                            if dx * dx + dy * dy <= eps2:
                                best = label
                                break
            if best != no_label:
                labels[i] = best
    return labels

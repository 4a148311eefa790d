"""Stable hotspot identity across nightly runs: tonight's hotspots inherit yesterday's ids.

The rule, in order:

1. **Overlap.** For every previous hotspot P and current hotspot C that intersect, with I the
   area of their intersection: IoU = I / area(P ∪ C) and containment = I / min(area(P), area(C)).
   P and C are *linked* when IoU >= min_iou or containment >= min_containment. Containment is
   what lets a hotspot that shrank to a tenth of its area, inside the old one, keep its id
   (its IoU is only 0.1), and a hotspot that grew tenfold around the old one too.
2. **Main lineage.** Linked pairs are split into connected groups (a previous and a current
   hotspot are in one group when a chain of links joins them). In each group an optimal
   one-to-one assignment maximising the summed IoU of linked pairs
   (scipy.optimize.linear_sum_assignment) decides who continues whom: an assigned current
   hotspot keeps the previous id. Solving group by group means a change in one place can never
   move an id somewhere else: unrelated hotspots are not in the group.
3. **Splits.** A current hotspot left unassigned but linked to previous ones split off: it gets a
   new id, and `split_from` names the linked previous hotspot with the largest intersection.
   The part that kept the id is the one the assignment chose (the best IoU when one hotspot
   became several).
4. **Merges.** A previous hotspot left unassigned but linked to current ones merged: it is listed
   as gone with reason "merged" and `merged_into` the linked current hotspot with the largest
   intersection; that current hotspot kept the id of the previous one with the best IoU.
5. **Change label** of each current hotspot: "new" without a predecessor (split-offs included,
   with `split_from` set), otherwise its area against its predecessor's:
   "grown" when (area - previous) / previous > stable_tolerance, "shrunk" when < -stable_tolerance,
   else "stable". Previous hotspots with no successor are "gone" (reason "disappeared") or
   merged (reason "merged").
6. **New ids** come from `id_factory(geometry)`; the default hashes the centroid rounded to a
   metre, the area rounded to a square metre and a salt (say the method and cell size), so the
   same input gives the same ids every time and a new hotspot's id depends on nothing but its
   own shape. A new id that is already taken (by a previous hotspot or an earlier new one, in
   the order of their rounded centroids) gets a suffix "-2", "-3", ...

Ties are broken without regard to input order: previous hotspots are taken in id order and
current ones in the order of their rounded centroid (y, then x), then area.

`match_hotspots` works on polygons (DBSCAN's `cluster_polygons`, isopleths);
`match_cell_hotspots` on hotspots given as sets of stable grid cells, where overlaps are exact
cell counts rather than polygon areas.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.optimize
import scipy.sparse
import scipy.sparse.csgraph
import shapely

from clustering.labels import ChangeLabel
from geo.grid import cell_polygons

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
IdFactory = Callable[[shapely.Geometry], str]
GoneReason = Literal["disappeared", "merged"]

ID_COLUMN = "id"


@dataclass(frozen=True)
class LineageEvent:
    """A split (a new hotspot broke off a previous one) or a merge (a previous one was absorbed).

    For a split, previous_id is the hotspot it broke off and current_id its new id; for a merge,
    previous_id is the absorbed hotspot and current_id the id of the hotspot that absorbed it.
    """

    kind: Literal["split", "merge"]
    previous_id: str
    current_id: str
    intersection_m2: float


class HotspotMatch(NamedTuple):
    """The result of matching: current hotspots with ids and labels, the gone ones, the events."""

    current: gpd.GeoDataFrame
    gone: gpd.GeoDataFrame
    events: list[LineageEvent]


def centroid_id_factory(salt: str = "", digits: int = 10) -> IdFactory:
    """Return an id factory: a hash of the salt, the centroid (to 1 m) and the area (to 1 m²)."""

    def make_id(geometry: shapely.Geometry) -> str:
        """Return the id of a new hotspot from its geometry alone."""
        x, y, area = _geometry_key(geometry)
        text = f"{salt}|{x:.0f}|{y:.0f}|{area:.0f}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]

    return make_id


def match_hotspots(
    previous: gpd.GeoDataFrame,
    current: gpd.GeoDataFrame,
    *,
    min_iou: float = 0.1,
    min_containment: float = 0.5,
    stable_tolerance: float = 0.1,
    id_factory: IdFactory | None = None,
) -> HotspotMatch:
    """Give tonight's hotspot polygons yesterday's ids where they overlap, and label the change.

    previous needs columns `id` (unique strings) and geometry; current needs a geometry (other
    columns are kept; an `id` column is replaced). Both must be (multi)polygons of positive area
    in the same projected CRS. See the module docstring for the rules.

    Returns current with columns id, change, previous_area_m2, area_change (relative), iou,
    split_from and merged_from (tuple of absorbed ids) added, in the input order; gone (id,
    reason, merged_into, area_m2, geometry) in id order; and the split and merge events.
    """
    _check_params(min_iou, min_containment, stable_tolerance)
    previous_ids = _checked_ids(previous)
    if previous.crs is not None and current.crs is not None and previous.crs != current.crs:
        raise ValueError(f"previous is in {previous.crs}, current in {current.crs}")
    prev_geoms = _checked_geometries(previous, "previous")
    cur_geoms = _checked_geometries(current, "current")
    rows, cols, intersection = _polygon_overlaps(prev_geoms, cur_geoms)
    outcome = _match(
        previous_ids,
        np.asarray(shapely.area(prev_geoms), dtype=np.float64),
        np.asarray(shapely.area(cur_geoms), dtype=np.float64),
        np.array([_geometry_key(g) for g in cur_geoms], dtype=np.float64).reshape(-1, 3),
        rows,
        cols,
        intersection,
        min_iou=min_iou,
        min_containment=min_containment,
        stable_tolerance=stable_tolerance,
    )
    ids = _new_ids(outcome, cur_geoms, previous_ids, id_factory or centroid_id_factory())
    return _assemble(outcome, ids, previous, current, previous_ids)


def match_cell_hotspots(
    previous_cells: pd.DataFrame,
    current_cells: pd.DataFrame,
    cell_size_m: float,
    *,
    hotspot_column: str = "hotspot",
    min_iou: float = 0.1,
    min_containment: float = 0.5,
    stable_tolerance: float = 0.1,
    id_factory: IdFactory | None = None,
    crs: Any = None,
) -> HotspotMatch:
    """Match hotspots made of stable grid cells: overlaps are exact counts of shared cells.

    previous_cells has one row per (id, ix, iy); current_cells one row per (hotspot_column, ix,
    iy), the column naming each current hotspot. Returns what `match_hotspots` returns, with one
    current row per current hotspot (in order of hotspot_column) whose geometry is the union of
    its cells.
    """
    _check_params(min_iou, min_containment, stable_tolerance)
    prev = _checked_cells(previous_cells, ID_COLUMN, "previous_cells")
    cur = _checked_cells(current_cells, hotspot_column, "current_cells")
    prev_names, prev_of_row = np.unique(prev[ID_COLUMN].astype(str), return_inverse=True)
    cur_names, cur_of_row = np.unique(cur[hotspot_column].to_numpy(), return_inverse=True)
    cell_area = float(cell_size_m) ** 2
    prev_area = np.bincount(prev_of_row, minlength=len(prev_names)) * cell_area
    cur_area = np.bincount(cur_of_row, minlength=len(cur_names)) * cell_area

    shared = pd.merge(
        pd.DataFrame({"p": prev_of_row, "ix": prev["ix"], "iy": prev["iy"]}),
        pd.DataFrame({"c": cur_of_row, "ix": cur["ix"], "iy": cur["iy"]}),
        on=["ix", "iy"],
    )
    pairs = shared.groupby(["p", "c"], sort=True).size()
    rows = pairs.index.get_level_values("p").to_numpy(dtype=np.int64)
    cols = pairs.index.get_level_values("c").to_numpy(dtype=np.int64)
    intersection = pairs.to_numpy(dtype=np.float64) * cell_area

    prev_geoms = _cell_unions(prev_of_row, prev["ix"], prev["iy"], len(prev_names), cell_size_m)
    cur_geoms = _cell_unions(cur_of_row, cur["ix"], cur["iy"], len(cur_names), cell_size_m)
    previous = gpd.GeoDataFrame({ID_COLUMN: prev_names.tolist()}, geometry=prev_geoms, crs=crs)
    current = gpd.GeoDataFrame({hotspot_column: cur_names}, geometry=cur_geoms, crs=crs)
    outcome = _match(
        prev_names.tolist(),
        prev_area.astype(np.float64),
        cur_area.astype(np.float64),
        np.array([_geometry_key(g) for g in cur_geoms], dtype=np.float64).reshape(-1, 3),
        rows,
        cols,
        intersection,
        min_iou=min_iou,
        min_containment=min_containment,
        stable_tolerance=stable_tolerance,
    )
    ids = _new_ids(outcome, cur_geoms, prev_names.tolist(), id_factory or centroid_id_factory())
    return _assemble(outcome, ids, previous, current, prev_names.tolist())


# ---------------------------------------------------------------------------------------------
# The matching itself, on areas and intersections only


@dataclass(frozen=True)
class _Outcome:
    """Who continues whom, by row number: the shared result of both front ends."""

    predecessor: IntArray  # per current hotspot: the previous row it continues, or -1
    iou: FloatArray  # per current hotspot: IoU with its predecessor (NaN without one)
    split_parent: IntArray  # per current hotspot: the previous row it split from, or -1
    merged_into: IntArray  # per previous hotspot: the current row it merged into, or -1
    successor: IntArray  # per previous hotspot: the current row continuing it, or -1
    merge_m2: FloatArray  # per previous hotspot: its intersection with merged_into
    split_m2: FloatArray  # per current hotspot: its intersection with split_parent
    prev_area: FloatArray
    cur_area: FloatArray
    cur_order: IntArray  # current rows in canonical order (rounded centroid y, x, area)
    labels: list[ChangeLabel]


def _match(
    previous_ids: Sequence[str],
    prev_area: FloatArray,
    cur_area: FloatArray,
    cur_keys: FloatArray,
    rows: IntArray,
    cols: IntArray,
    intersection: FloatArray,
    *,
    min_iou: float,
    min_containment: float,
    stable_tolerance: float,
) -> _Outcome:
    """Link, assign per connected group, and derive splits, merges and labels."""
    n_prev, n_cur = len(prev_area), len(cur_area)
    # Canonical ranks make every tie independent of the input row order.
    prev_rank = np.argsort(np.argsort(np.asarray(previous_ids, dtype=object), kind="stable"))
    cur_order = (
        np.lexsort((cur_keys[:, 2], cur_keys[:, 0], cur_keys[:, 1]))
        if n_cur
        else np.zeros(0, np.int64)
    )
    cur_rank = np.empty(n_cur, dtype=np.int64)
    cur_rank[cur_order] = np.arange(n_cur)

    union = prev_area[rows] + cur_area[cols] - intersection
    iou = intersection / union
    containment = intersection / np.minimum(prev_area[rows], cur_area[cols])
    linked = (iou >= min_iou) | (containment >= min_containment)
    rows, cols, intersection, iou = rows[linked], cols[linked], intersection[linked], iou[linked]

    predecessor = np.full(n_cur, -1, dtype=np.int64)
    successor = np.full(n_prev, -1, dtype=np.int64)
    pair_iou = np.full(n_cur, np.nan)
    graph = scipy.sparse.coo_matrix(
        (np.ones(len(rows)), (rows, n_prev + cols)), shape=(n_prev + n_cur, n_prev + n_cur)
    )
    _, component = scipy.sparse.csgraph.connected_components(graph, directed=False)
    pair_component = component[rows]
    p_pos = np.zeros(n_prev, dtype=np.int64)  # a member's row or column in its group's matrix
    c_pos = np.zeros(n_cur, dtype=np.int64)
    for group in np.unique(pair_component):
        in_group = pair_component == group
        g_rows, g_cols, g_iou = rows[in_group], cols[in_group], iou[in_group]
        p_members = np.unique(g_rows)
        c_members = np.unique(g_cols)
        p_members = p_members[np.argsort(prev_rank[p_members], kind="stable")]
        c_members = c_members[np.argsort(cur_rank[c_members], kind="stable")]
        p_pos[p_members] = np.arange(len(p_members))
        c_pos[c_members] = np.arange(len(c_members))
        score = np.zeros((len(p_members), len(c_members)))
        score[p_pos[g_rows], c_pos[g_cols]] = g_iou
        r, c = scipy.optimize.linear_sum_assignment(score, maximize=True)
        real = score[r, c] > 0  # a zero means the two are not linked: no lineage
        predecessor[c_members[c[real]]] = p_members[r[real]]
        successor[p_members[r[real]]] = c_members[c[real]]
        pair_iou[c_members[c[real]]] = score[r[real], c[real]]

    split_parent, split_m2 = _largest_partner(
        cols, rows, intersection, n_cur, prev_rank, keep=predecessor < 0
    )
    merged_into, merge_m2 = _largest_partner(
        rows, cols, intersection, n_prev, cur_rank, keep=successor < 0
    )
    labels: list[ChangeLabel] = []
    for j in range(n_cur):
        labels.append(_label(cur_area[j], prev_area, predecessor[j], stable_tolerance))
    return _Outcome(
        predecessor=predecessor,
        iou=pair_iou,
        split_parent=split_parent,
        merged_into=merged_into,
        successor=successor,
        merge_m2=merge_m2,
        split_m2=split_m2,
        prev_area=prev_area,
        cur_area=cur_area,
        cur_order=cur_order.astype(np.int64),
        labels=labels,
    )


def _largest_partner(
    own: IntArray,
    other: IntArray,
    intersection: FloatArray,
    n_own: int,
    other_rank: IntArray,
    keep: npt.NDArray[np.bool_],
) -> tuple[IntArray, FloatArray]:
    """Return, for each own row with keep, the linked partner of largest intersection (or -1)."""
    partner = np.full(n_own, -1, dtype=np.int64)
    shared = np.zeros(n_own)
    # Largest intersection first, then the partner's canonical rank: the first hit per row wins.
    order = np.lexsort((other_rank[other], -intersection))
    for k in order:
        i = own[k]
        if keep[i] and partner[i] < 0:
            partner[i] = other[k]
            shared[i] = intersection[k]
    return partner, shared


def _label(area: float, prev_area: FloatArray, predecessor: int, tolerance: float) -> ChangeLabel:
    """Return the change label of one current hotspot against its predecessor's area."""
    if predecessor < 0:
        return ChangeLabel.new
    change = (area - prev_area[predecessor]) / prev_area[predecessor]
    if change > tolerance:
        return ChangeLabel.grown
    if change < -tolerance:
        return ChangeLabel.shrunk
    return ChangeLabel.stable


def _new_ids(
    outcome: _Outcome,
    geometries: npt.NDArray[np.object_],
    previous_ids: Sequence[str],
    id_factory: IdFactory,
) -> list[str]:
    """Return the id of every current hotspot: inherited, or new from its geometry."""
    ids: list[str | None] = [
        previous_ids[p] if p >= 0 else None for p in outcome.predecessor.tolist()
    ]
    taken = set(previous_ids)
    for j in outcome.cur_order.tolist():  # canonical order decides who gets a suffix
        if ids[j] is not None:
            continue
        base = str(id_factory(geometries[j]))
        candidate, k = base, 1
        while candidate in taken:
            k += 1
            candidate = f"{base}-{k}"
        taken.add(candidate)
        ids[j] = candidate
    return [i for i in ids if i is not None]


def _assemble(
    outcome: _Outcome,
    ids: list[str],
    previous: gpd.GeoDataFrame,
    current: gpd.GeoDataFrame,
    previous_ids: Sequence[str],
) -> HotspotMatch:
    """Build the current table, the gone table and the event list from an outcome."""
    events: list[LineageEvent] = []
    split_from: list[str | None] = []
    for j, parent in enumerate(outcome.split_parent.tolist()):
        if parent >= 0:
            split_from.append(previous_ids[parent])
            events.append(
                LineageEvent("split", previous_ids[parent], ids[j], float(outcome.split_m2[j]))
            )
        else:
            split_from.append(None)
    merged_from: list[list[str]] = [[] for _ in ids]
    gone_rows: list[dict[str, Any]] = []
    prev_geoms = previous.geometry.to_numpy()
    for i in np.argsort(np.asarray(previous_ids, dtype=object), kind="stable").tolist():
        if outcome.successor[i] >= 0:
            continue
        target = int(outcome.merged_into[i])
        if target >= 0:
            merged_from[target].append(previous_ids[i])
            events.append(
                LineageEvent("merge", previous_ids[i], ids[target], float(outcome.merge_m2[i]))
            )
        gone_rows.append(
            {
                ID_COLUMN: previous_ids[i],
                "reason": "merged" if target >= 0 else "disappeared",
                "merged_into": ids[target] if target >= 0 else None,
                "area_m2": float(outcome.prev_area[i]),
                "geometry": prev_geoms[i],
            }
        )
    events.sort(key=lambda e: (e.kind, e.previous_id, e.current_id))

    prev_area = np.full(len(ids), np.nan)
    has_prev = outcome.predecessor >= 0
    prev_area[has_prev] = outcome.prev_area[outcome.predecessor[has_prev]]
    table = current.drop(columns=[ID_COLUMN], errors="ignore").copy()
    table.insert(0, ID_COLUMN, ids)
    table["change"] = outcome.labels
    table["previous_area_m2"] = prev_area
    table["area_change"] = (outcome.cur_area - prev_area) / prev_area
    table["iou"] = outcome.iou
    table["split_from"] = pd.Series(split_from, index=table.index, dtype=object)
    table["merged_from"] = pd.Series(
        [tuple(m) for m in merged_from], index=table.index, dtype=object
    )
    gone_columns = [ID_COLUMN, "reason", "merged_into", "area_m2", "geometry"]
    gone = gpd.GeoDataFrame(
        pd.DataFrame(gone_rows, columns=gone_columns), geometry="geometry", crs=previous.crs
    )
    return HotspotMatch(table, gone, events)


# ---------------------------------------------------------------------------------------------
# Inputs


def _check_params(min_iou: float, min_containment: float, stable_tolerance: float) -> None:
    """Raise ValueError unless the thresholds make sense."""
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must lie in (0, 1], got {min_iou}")
    if not 0.0 < min_containment <= 1.0:
        raise ValueError(f"min_containment must lie in (0, 1], got {min_containment}")
    if not stable_tolerance >= 0.0:
        raise ValueError(f"stable_tolerance must be >= 0, got {stable_tolerance}")


def _checked_ids(previous: pd.DataFrame) -> list[str]:
    """Return the previous hotspots' ids as strings, checked to be present and unique."""
    if ID_COLUMN not in previous.columns:
        raise ValueError(f"previous hotspots need an {ID_COLUMN!r} column")
    column = previous[ID_COLUMN]
    if column.isna().any():
        raise ValueError("previous hotspot ids must not be missing")
    ids = [str(v) for v in column.tolist()]
    if len(set(ids)) != len(ids):
        raise ValueError("previous hotspot ids must be unique")
    return ids


def _checked_geometries(frame: gpd.GeoDataFrame, name: str) -> npt.NDArray[np.object_]:
    """Return the geometries as an array, checked to be polygons of positive area."""
    geometries = np.asarray(frame.geometry.to_numpy(), dtype=object)
    if len(geometries) == 0:
        return geometries
    kinds = shapely.get_type_id(geometries)
    polygonal = np.isin(kinds, [3, 6])  # Polygon, MultiPolygon
    if not polygonal.all() or not (shapely.area(geometries) > 0).all():
        raise ValueError(f"every {name} hotspot must be a (multi)polygon of positive area")
    invalid = ~shapely.is_valid(geometries)
    if invalid.any():  # an invalid polygon's area and intersections are meaningless
        geometries = geometries.copy()
        geometries[invalid] = shapely.make_valid(geometries[invalid])
    return geometries


def _checked_cells(cells: pd.DataFrame, key: str, name: str) -> pd.DataFrame:
    """Return the cell table with integer ix, iy, checked for columns and duplicates."""
    missing = {key, "ix", "iy"} - set(cells.columns)
    if missing:
        raise ValueError(f"{name} lacks columns {sorted(missing)}")
    table = cells[[key, "ix", "iy"]].astype({"ix": np.int64, "iy": np.int64})
    if table.duplicated().any():
        raise ValueError(f"{name} lists a cell twice for one hotspot")
    return table.reset_index(drop=True)


def _polygon_overlaps(
    prev: npt.NDArray[np.object_], cur: npt.NDArray[np.object_]
) -> tuple[IntArray, IntArray, FloatArray]:
    """Return the intersecting pairs (previous row, current row) and their intersection areas."""
    if len(prev) == 0 or len(cur) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    tree = shapely.STRtree(prev)
    cols, rows = tree.query(cur, predicate="intersects")
    area = np.asarray(shapely.area(shapely.intersection(prev[rows], cur[cols])), dtype=np.float64)
    touching = area > 0  # sharing only an edge is not an overlap
    return rows[touching].astype(np.int64), cols[touching].astype(np.int64), area[touching]


def _cell_unions(
    group: IntArray, ix: Any, iy: Any, n_groups: int, cell_size_m: float
) -> npt.NDArray[np.object_]:
    """Return, per group, the union of its cells as one (multi)polygon."""
    cells = cell_polygons(np.asarray(ix), np.asarray(iy), cell_size_m)
    out = np.empty(n_groups, dtype=object)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    for g in range(n_groups):
        # Cells share exact corners, so the coverage union is exact and fast.
        out[g] = shapely.coverage_union_all(cells[order[bounds[g] : bounds[g + 1]]])
    return out


def _geometry_key(geometry: shapely.Geometry) -> tuple[float, float, float]:
    """Return (x, y, area) rounded to a metre and a square metre: a shape's canonical key."""
    centroid = shapely.centroid(geometry)
    # +0.0 turns a rounded -0.0 into 0.0, so the key prints the same either way.
    return (
        float(np.round(centroid.x)) + 0.0,
        float(np.round(centroid.y)) + 0.0,
        float(np.round(shapely.area(geometry))) + 0.0,
    )

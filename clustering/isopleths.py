"""Density isopleths: the smallest sets of grid cells that hold given shares of a density's mass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from geo.grid import GridWindow, cell_polygons

FloatArray = npt.NDArray[np.float64]


def density_isopleths(
    density: FloatArray,
    window: GridWindow,
    shares: Sequence[float] = (0.5, 0.75, 0.9),
    crs: Any = None,
) -> gpd.GeoDataFrame:
    """Return one row per share: the smallest set of cells holding that share of the mass.

    Cells (finite, positive density) are ranked by density, highest first, ties broken by the
    cell key (iy, then ix, ascending) so the result is deterministic; each isopleth is the
    shortest prefix of that ranking whose summed density reaches share × total. The isopleths
    are therefore nested. Columns: share, cell_count, area_m2, min_density (the lowest density
    included) and geometry, the cells dissolved into a (Multi)Polygon.
    """
    density = np.asarray(density, dtype=np.float64)
    if density.shape != window.shape:
        raise ValueError(f"density has shape {density.shape}, the window {window.shape}")
    if any(not 0.0 < s <= 1.0 for s in shares):
        raise ValueError("shares must lie in (0, 1]")
    gx, gy = window.cell_keys()
    valid = np.isfinite(density) & (density > 0)
    ix, iy, values = gx[valid], gy[valid], density[valid]
    order = np.lexsort((ix, iy, -values))
    ix, iy, values = ix[order], iy[order], values[order]
    mass = np.cumsum(values)
    rows: list[dict[str, Any]] = []
    for share in shares:
        if values.size == 0:
            rows.append({"share": share, "cell_count": 0, "area_m2": 0.0, "min_density": 0.0,
                         "geometry": shapely.Polygon()})  # fmt: skip
            continue
        count = min(int(np.searchsorted(mass, share * mass[-1], side="left")) + 1, values.size)
        cells = cell_polygons(ix[:count], iy[:count], window.cell_size_m)
        rows.append(
            {
                "share": share,
                "cell_count": count,
                "area_m2": count * window.cell_size_m**2,
                "min_density": float(values[count - 1]),
                # Grid cells share exact corner coordinates, so they form a valid coverage and
                # the coverage union (edges matched, not overlaid) is both exact and fast.
                "geometry": shapely.coverage_union_all(cells),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)

"""The stable grid: cells keyed by (cell size, ix, iy), ix = floor(x / size), iy = floor(y / size).

Because the key depends only on the storage CRS and the cell size, the same cell has the same id
in every run and every area, so layers can be compared night to night and joined across areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def cell_index(x: Any, y: Any, cell_size_m: float) -> tuple[IntArray, IntArray]:
    """Return the (ix, iy) keys of the cells holding the points x, y (metres)."""
    _check_size(cell_size_m)
    ix = np.floor(np.asarray(x, dtype=np.float64) / cell_size_m).astype(np.int64)
    iy = np.floor(np.asarray(y, dtype=np.float64) / cell_size_m).astype(np.int64)
    return ix, iy


def cell_centres(ix: Any, iy: Any, cell_size_m: float) -> tuple[FloatArray, FloatArray]:
    """Return the centre coordinates (metres) of cells ix, iy."""
    ix = np.asarray(ix, dtype=np.float64)
    iy = np.asarray(iy, dtype=np.float64)
    return (ix + 0.5) * cell_size_m, (iy + 0.5) * cell_size_m


def cell_polygons(ix: Any, iy: Any, cell_size_m: float) -> npt.NDArray[np.object_]:
    """Return the cells ix, iy as an array of shapely square polygons."""
    ix = np.asarray(ix, dtype=np.float64)
    iy = np.asarray(iy, dtype=np.float64)
    return shapely.box(
        ix * cell_size_m, iy * cell_size_m, (ix + 1) * cell_size_m, (iy + 1) * cell_size_m
    )


def cells_in_area(area: shapely.Geometry, cell_size_m: float) -> tuple[IntArray, IntArray]:
    """Return the cells of an area: those whose centre lies inside the (multi)polygon."""
    _check_size(cell_size_m)
    minx, miny, maxx, maxy = area.bounds
    ix0, iy0 = int(np.floor(minx / cell_size_m)), int(np.floor(miny / cell_size_m))
    ix1, iy1 = int(np.floor(maxx / cell_size_m)), int(np.floor(maxy / cell_size_m))
    gx, gy = np.meshgrid(np.arange(ix0, ix1 + 1), np.arange(iy0, iy1 + 1))
    ix, iy = gx.ravel().astype(np.int64), gy.ravel().astype(np.int64)
    cx, cy = cell_centres(ix, iy, cell_size_m)
    shapely.prepare(area)
    inside = shapely.contains_xy(area, cx, cy)
    return ix[inside], iy[inside]


def _check_size(cell_size_m: float) -> None:
    if not (np.isfinite(cell_size_m) and cell_size_m > 0):
        raise ValueError(f"cell_size_m must be a positive number of metres, got {cell_size_m}")


@dataclass(frozen=True)
class GridWindow:
    """A rectangular block of grid cells, for methods that work on dense rasters.

    Row r, column c of a raster over the window is the cell (ix0 + c, iy0 + r): rows grow
    northwards, as the cell keys do.
    """

    cell_size_m: float
    ix0: int
    iy0: int
    nx: int
    ny: int

    @classmethod
    def covering(cls, x: Any, y: Any, cell_size_m: float, pad_cells: int = 0) -> GridWindow:
        """Return the smallest window holding every point, padded by pad_cells on each side."""
        ix, iy = cell_index(x, y, cell_size_m)
        if ix.size == 0:
            raise ValueError("cannot build a grid window around no points")
        return cls.from_cells(ix, iy, cell_size_m, pad_cells)

    @classmethod
    def from_cells(cls, ix: Any, iy: Any, cell_size_m: float, pad_cells: int = 0) -> GridWindow:
        """Return the smallest window holding the cells ix, iy, padded by pad_cells."""
        ix, iy = np.asarray(ix), np.asarray(iy)
        if ix.size == 0:
            raise ValueError("cannot build a grid window around no cells")
        ix0, iy0 = int(ix.min()) - pad_cells, int(iy.min()) - pad_cells
        nx = int(ix.max()) + pad_cells - ix0 + 1
        ny = int(iy.max()) + pad_cells - iy0 + 1
        return cls(float(cell_size_m), ix0, iy0, nx, ny)

    @classmethod
    def from_bounds(
        cls, bounds: tuple[float, float, float, float], cell_size_m: float, pad_cells: int = 0
    ) -> GridWindow:
        """Return the window of the cells touching bounds (minx, miny, maxx, maxy), padded."""
        ix, iy = cell_index([bounds[0], bounds[2]], [bounds[1], bounds[3]], cell_size_m)
        return cls.from_cells(ix, iy, cell_size_m, pad_cells)

    @property
    def shape(self) -> tuple[int, int]:
        """The raster shape (ny, nx)."""
        return self.ny, self.nx

    def bin(self, x: Any, y: Any, weights: Any = None) -> FloatArray:
        """Return a (ny, nx) raster of counts (or summed weights); outside points are ignored."""
        ix, iy = cell_index(x, y, self.cell_size_m)
        c, r = ix - self.ix0, iy - self.iy0
        keep = (c >= 0) & (c < self.nx) & (r >= 0) & (r < self.ny)
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
        flat = np.bincount(r[keep] * self.nx + c[keep], weights=w, minlength=self.nx * self.ny)
        return flat.astype(np.float64).reshape(self.ny, self.nx)

    def cell_keys(self) -> tuple[IntArray, IntArray]:
        """Return (ix, iy) rasters of the window's cell keys, each of shape (ny, nx)."""
        gx, gy = np.meshgrid(
            np.arange(self.ix0, self.ix0 + self.nx, dtype=np.int64),
            np.arange(self.iy0, self.iy0 + self.ny, dtype=np.int64),
        )
        return gx, gy

    def centres(self) -> tuple[FloatArray, FloatArray]:
        """Return (x, y) rasters of the window's cell centres in metres."""
        gx, gy = self.cell_keys()
        return cell_centres(gx, gy, self.cell_size_m)

    def mask(self, area: shapely.Geometry) -> npt.NDArray[np.bool_]:
        """Return a (ny, nx) boolean raster: True where the cell centre lies inside area."""
        cx, cy = self.centres()
        shapely.prepare(area)
        return np.asarray(shapely.contains_xy(area, cx, cy), dtype=bool)

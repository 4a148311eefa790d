"""Mapbox Vector Tiles of the run layers in WebMercatorQuad, made by PostGIS (ST_AsMVT).

A tile is the items query of app.api.ogc.query with the tile's box as its bbox: the same
sources stacked for the caller (viewer versions unless its raw grants cover a run's whole
area), so a viewer's tile holds exactly the viewer values its items hold. The box is the tile
with ST_AsMVTGeom's buffer around it, moved into the storage CRS, so the stored geometry and its
index answer the filter; each feature is then clipped and snapped to the tile's 4096 grid.

Feature ids are integers that are the same at every zoom (MapLibre's feature state needs
them): the id column itself when a collection has one integer id (hotspots), else 53 bits of a
hash of the items' feature id (cells: run, cell size, ix, iy), which a JavaScript number holds
exactly. The items' id itself is in the property `fid`.

Grid layers whose values can be merged (density) are drawn from coarser cells where their
cells would be smaller than MERGED_UNITS of the tile's grid: at zoom 10 a 100 m cell is about
a pixel, and a tile of a kommun's 150,000 of them would weigh megabytes. A coarser cell is the
block of 2^k × 2^k cells that share (ix >> k, iy >> k): a cell of the grid of side
cell_size_m · 2^k, with that side, index and square, its values merged by each property's
aggregate (the density's mean, the isopleth's minimum). Its `fid` and id are those of that
coarser cell. So a tile never holds more than (EXTENT / MERGED_UNITS)² cells of one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import shapely
from sqlalchemy import Connection, text

from app.api.ogc import query
from app.api.ogc.collections import (
    CELL_GEOMETRY,
    CELL_ID,
    CELL_PROPERTIES,
    RUN_PROPERTIES,
    Collection,
)
from app.api.ogc.features import output_names
from app.api.ogc.params import ItemsQuery, offered_crs
from app.core.errors import InvalidParameter
from app.core.vocabulary import Role
from geo.crs import transform_geometries

TILE_MATRIX_SET = "WebMercatorQuad"
TILE_MATRIX_SET_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
EXTENT = 4096  # the tile's grid
BUFFER = 64  # grid units drawn beyond the edge, so strokes do not end at tile borders
MIN_ZOOM, MAX_ZOOM = 5, 16  # what the TileJSON offers; deeper zooms are served too (overzoom)
DEEPEST = 24
HALF_WORLD = 20037508.342789244  # half the side of WebMercatorQuad's square, in metres
SAFE_INTEGER = (1 << 53) - 1  # the largest integer a JavaScript number holds exactly
FIELD_TYPES = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean"}
RUN_SELECTORS = ("area", "profile", "week", "run")
MERGED_UNITS = 64  # grid units a drawn cell spans at least, where its layer can merge cells


@dataclass(frozen=True)
class Tile:
    """One tile of WebMercatorQuad: zoom, row (from the north) and column (from the west)."""

    z: int
    y: int
    x: int

    @classmethod
    def checked(cls, z: int, y: int, x: int) -> Tile:
        """The tile, or a 400 naming the coordinate that is out of the matrix."""
        if not 0 <= z <= DEEPEST:
            raise InvalidParameter(f"tileMatrix must be 0 to {DEEPEST}; not {z}")
        side = 1 << z
        for name, value in (("tileRow", y), ("tileCol", x)):
            if not 0 <= value < side:
                raise InvalidParameter(f"{name} must be 0 to {side - 1} at zoom {z}; not {value}")
        return cls(z, y, x)

    def bounds(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """The tile's box in EPSG:3857 metres, grown by `margin` tile widths on each side."""
        size = 2 * HALF_WORLD / (1 << self.z)
        minx = -HALF_WORLD + (self.x - margin) * size
        maxy = HALF_WORLD - (self.y - margin) * size
        return minx, maxy - (1 + 2 * margin) * size, minx + (1 + 2 * margin) * size, maxy

    def storage_box(self, srid: int) -> shapely.Geometry:
        """The tile and its buffer as a polygon in the storage CRS, its edges densified."""
        box = shapely.box(*self.bounds(BUFFER / EXTENT))
        width = box.bounds[2] - box.bounds[0]
        return transform_geometries(shapely.segmentize(box, width / 16), 3857, srid)


def lonlat_bounds(tile: Tile) -> tuple[float, float, float, float]:
    """A tile's box in longitude and latitude (west, south, east, north)."""
    n = 1 << tile.z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return tile.x / n * 360 - 180, lat(tile.y + 1), (tile.x + 1) / n * 360 - 180, lat(tile.y)


def tile_fields(collection: Collection, role: Role) -> dict[str, str]:
    """The attributes of a role's features in a tile, with their TileJSON types."""
    fields = {"fid": "String"}
    for name in output_names(collection, role):
        prop = collection.property(name)
        if prop is not None and prop.type in FIELD_TYPES:
            fields[name] = FIELD_TYPES[prop.type]
        elif prop is not None and prop.type == "date-time":
            fields[name] = "String"
    return fields


def _attribute(collection: Collection, name: str) -> str:
    prop = collection.property(name)
    column = f'v."{name}"'
    if prop is not None and prop.type == "date-time":  # MVT has no time: ISO 8601 in UTC
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    return column


def _feature_id(collection: Collection) -> tuple[str, str]:
    """SQL of the items' feature id (text) and of the tile's integer id."""
    columns = collection.id_columns
    fid = " || ':' || ".join(f'v."{c}"::text' for c in columns)
    prop = collection.property(columns[0])
    if len(columns) == 1 and (prop is None or prop.type == "integer"):
        return fid, f'v."{columns[0]}"'
    return fid, f"(hashtextextended({fid}, 0) & {SAFE_INTEGER})"


def merged_values(collection: Collection) -> dict[str, str] | None:
    """The aggregate of each cell value of a grid layer whose cells a coarse tile may merge
    (None: its cells are drawn as they are, at every zoom)."""
    if collection.id_columns != CELL_ID:
        return None
    fixed = {p.name for p in (*RUN_PROPERTIES, *CELL_PROPERTIES)}
    own = [p for p in collection.properties if p.name not in fixed]
    if not own or any(p.merged is None for p in own):
        return None
    return {p.name: str(p.merged) for p in own}


def ground_metres_per_unit(tile: Tile) -> float:
    """About how many metres on the ground one unit of the tile's grid spans at its centre."""
    _, south, _, north = lonlat_bounds(tile)
    scale = math.cos(math.radians((south + north) / 2))
    return 2 * HALF_WORLD / (1 << tile.z) / EXTENT * scale


def _merged(rows_of: str, where: str, names: list[str], merges: dict[str, str]) -> str:
    """FROM (…) AS v of the coarser cells: each cell moved to the block of 2^k cells that holds
    it, k the least that makes the block span :fine metres, and the blocks' values merged."""
    shift = "greatest(0, ceil(ln(CAST(:fine AS float8) / v.cell_size_m) / ln(2::float8)))::int"
    keep = [n for n in names if n not in merges and n not in {"cell_size_m", "ix", "iy"}]
    block = ("(v.cell_size_m << v.k)", "(v.ix >> v.k)", "(v.iy >> v.k)")
    columns = [f'v."{n}"' for n in keep]
    columns += [f'{b} AS "{n}"' for b, n in zip(block, ("cell_size_m", "ix", "iy"), strict=True)]
    columns += [f'{merges[n]}(v."{n}") AS "{n}"' for n in names if n in merges]
    square = CELL_GEOMETRY.replace("c.", "b.")
    return f"""FROM (SELECT b.*, {square} AS geom FROM (
            SELECT {", ".join(columns)}
            FROM (SELECT v.*, {shift} AS k {rows_of} WHERE {where}) v
            GROUP BY {", ".join([*(f'v."{n}"' for n in keep), *block])}
            OFFSET 0) b) AS v"""  # OFFSET 0: the tile's tests of a block stay above the merge


def read_tile(
    conn: Connection,
    collection: Collection,
    role: Role,
    org: int,
    srid: int,
    tile: Tile,
    selection: ItemsQuery,
) -> bytes:
    """The caller's features of the runs `selection` names (none: the published ones) that
    meet the tile, as one Mapbox Vector Tile layer named after the collection."""
    asked = ItemsQuery(
        limit=1, crs=offered_crs(srid)[0], bbox=tile.storage_box(srid), equals=selection.equals
    )
    statement = query.Statement.of(collection, role, srid, org)
    ctes, rows_of = statement.stacked(asked.equals, query.run_mode(asked), asked.bbox)
    where = " AND ".join(statement.conditions(asked))
    fid, mvt_id = _feature_id(collection)
    names = [n for n in tile_fields(collection, role) if n != "fid"]
    attributes = "".join(f', {_attribute(collection, n)} AS "{n}"' for n in names)
    values = statement.bindings.values
    values.update(z=tile.z, x=tile.x, y=tile.y, layer=collection.id)
    merges = merged_values(collection)
    if merges is not None:
        values["fine"] = MERGED_UNITS * ground_metres_per_unit(tile)
        rows_of, where = _merged(rows_of, where, statement.columns, merges), "true"
    sql = f"""{ctes}
        SELECT ST_AsMVT(t, :layer, {EXTENT}, 'geom', 'mvt_id') FROM (
            SELECT {mvt_id} AS mvt_id, {fid} AS fid{attributes},
                   ST_AsMVTGeom(ST_Transform(v.geom, 3857), ST_TileEnvelope(:z, :x, :y),
                                {EXTENT}, {BUFFER}, true) AS geom
            {rows_of} WHERE {where}
        ) t WHERE t.geom IS NOT NULL"""
    made = conn.scalar(text(sql), values)
    return bytes(made) if made is not None else b""

"""A published layer of one area as one file: GeoJSON, GeoPackage or CSV.

The features are those of /ogc items with `area=` (and `week=`, `run=`, `profile=`): the same
query (app.api.ogc.query), so a file holds exactly the features and values the caller's items
hold, in the version the caller may see. Each selected run is read on its own, keyset page after
keyset page until the last: nothing is cut at a page size, and a run published while a file is
made cannot mix two runs into it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely
from sqlalchemy import Connection

from app.access.auth import Principal
from app.api.ogc import query
from app.api.ogc.collections import Collection, Property
from app.api.ogc.features import feature_id, features, output_names
from app.api.ogc.params import ItemsQuery, offered_crs
from app.core.spreadsheet import csv_lines
from geo.geojson import COORDINATE_DECIMALS, feature_collection

PAGE_SIZE = 10_000  # features per read: a layer of 100,000 cells is ten keyset pages
GPKG_VERSION = "1.3"  # what GDAL before 3.11 (QGIS 3.22's) reads without a warning
PANDAS_TYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean"}


@dataclass(frozen=True)
class LayerRequest:
    """Which runs of an area's layer a download asks for (none given: the published ones)."""

    area: str
    week: str | None = None
    run: int | None = None
    profile: str | None = None

    @property
    def selection(self) -> dict[str, Any]:
        """The run properties to match, as /ogc items' `name=value` parameters."""
        named = {"area": self.area, "week": self.week, "run": self.run, "profile": self.profile}
        return {name: value for name, value in named.items() if value is not None}

    def missing(self, collection: Collection) -> str:
        """What was not found, in words: no published run of hotspots for 1230 in 2026-W47."""
        run = f" {self.run}" if self.run is not None else ""
        said = f"no published run{run} of {collection.id} for {self.area}"
        if self.week is not None:
            said += f" in {self.week}"
        if self.profile is not None:
            said += f" with the profile {self.profile!r}"
        return said


def published_runs(
    conn: Connection, collection: Collection, principal: Principal, srid: int, asked: LayerRequest
) -> list[query.SelectedRun]:
    """The runs of the request that the caller may read, as /ogc items select them."""
    role, org = principal.role, principal.organisation_id
    return query.selected_runs(conn, collection, role, org, srid, _items(srid, asked.selection))


def read_layer(
    conn: Connection,
    collection: Collection,
    principal: Principal,
    srid: int,
    area: str,
    runs: list[query.SelectedRun],
) -> list[dict[str, Any]]:
    """Every feature row of the area in the runs, the caller's version, by run and then id."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        asked = _items(srid, {"area": area, "run": run.id})
        while True:
            page = query.read_page(
                conn,
                collection,
                principal.role,
                principal.organisation_id,
                srid,
                asked,
                count_at_most=0,  # the count of the first page: not needed here
            )
            rows.extend(page.rows)
            if not (page.rows and page.after):
                break
            cursor = query.next_cursor(page, collection, asked, forward=True)
            asked = replace(asked, cursor=cursor)
    return rows


def _items(srid: int, equals: dict[str, Any]) -> ItemsQuery:
    return ItemsQuery(limit=PAGE_SIZE, crs=offered_crs(srid)[0], equals=equals)


def to_geojson(
    collection: Collection, principal: Principal, rows: list[dict[str, Any]], srid: int
) -> bytes:
    """The rows as an RFC 7946 FeatureCollection (CRS84)."""
    return feature_collection(_features(collection, principal, rows, srid))


def to_csv(
    collection: Collection, principal: Principal, rows: list[dict[str, Any]], srid: int
) -> bytes:
    """The rows as CSV for Swedish Excel: the feature id, the properties, the geometry as WKT in
    CRS84 (run layers are polygons), the same coordinates as the GeoJSON's.

    One body, not a stream of lines: the rows are in memory already, and ten thousand small
    writes cost seconds where one costs nothing.
    """
    found = _features(collection, principal, rows, srid)
    names = output_names(collection, principal.role)
    shapes = [shapely.geometry.shape(f["geometry"]) for f in found]
    wkt = shapely.to_wkt(np.asarray(shapes, dtype=object), rounding_precision=COORDINATE_DECIMALS)
    table = (
        [f["id"], *(_cell(f["properties"][n]) for n in names), w]
        for f, w in zip(found, wkt.tolist(), strict=True)
    )
    return "".join(csv_lines(("id", *names, "wkt"), table)).encode()


def to_geopackage(
    collection: Collection, principal: Principal, rows: list[dict[str, Any]], srid: int
) -> bytes:
    """The rows as a GeoPackage in the storage CRS, one layer named as the collection."""
    names = output_names(collection, principal.role)
    columns: dict[str, Any] = {"id": [feature_id(collection, r) for r in rows]}
    for name in names:
        prop = collection.property(name)
        assert prop is not None
        columns[name] = _column(prop, [r[name] for r in rows])
    geometry = shapely.from_wkb([r["wkb"] for r in rows])
    frame = gpd.GeoDataFrame(columns, geometry=geometry, crs=srid)
    multi = collection.geometry_type.startswith("Multi")
    with tempfile.TemporaryDirectory(prefix="est-layer-") as folder:
        path = Path(folder) / f"{collection.id}.gpkg"
        frame.to_file(
            path,
            layer=collection.id,
            driver="GPKG",
            engine="pyogrio",
            geometry_type=collection.geometry_type,
            promote_to_multi=multi,
            dataset_options={"VERSION": GPKG_VERSION},
        )
        return path.read_bytes()


def _features(
    collection: Collection, principal: Principal, rows: list[dict[str, Any]], srid: int
) -> list[dict[str, Any]]:
    return features(collection, principal.role, rows, offered_crs(srid)[0], srid)


def _column(prop: Property, values: list[Any]) -> Any:
    """A property's values as a column of its type (nulls kept), objects as JSON text."""
    if prop.type in PANDAS_TYPES:
        return pd.array(values, dtype=PANDAS_TYPES[prop.type])
    if prop.type == "date-time":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    return pd.Series([_cell(v) for v in values], dtype=object)


def _cell(value: Any) -> Any:
    """An object (a run's stats) as JSON text; anything else as it is."""
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else value

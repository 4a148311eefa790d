"""Rows of a collection as GeoJSON features, and feature ids back into the columns they name."""

from __future__ import annotations

from typing import Any

import shapely

from app.api.ogc.collections import Collection
from app.api.ogc.params import Crs
from app.core.vocabulary import Role
from geo.crs import transform_geometries
from geo.geojson import geometries


def feature_id(collection: Collection, row: dict[str, Any]) -> Any:
    """A feature's id: its one id column's value, or the values joined with ':'."""
    values = [row[c] for c in collection.id_columns]
    return values[0] if len(values) == 1 else ":".join(str(v) for v in values)


def id_columns(collection: Collection, given: str) -> dict[str, Any] | None:
    """The id columns a feature id names, or None when it cannot be one of this collection."""
    names = collection.id_columns
    parts = given.split(":") if len(names) > 1 else [given]
    if len(parts) != len(names):
        return None
    found: dict[str, Any] = {}
    for name, part in zip(names, parts, strict=True):
        prop = collection.property(name)
        if prop is not None and prop.type == "string":
            found[name] = part
            continue
        try:
            number = int(part)
        except ValueError:
            return None
        if not -(2**63) <= number < 2**63:
            return None
        found[name] = number
    return found


def output_names(collection: Collection, role: Role) -> list[str]:
    """The properties written in the features a role gets."""
    named = {n for s in collection.sources_for(role) for n in s.columns}
    return [p.name for p in collection.properties if p.output and p.name in named]


def features(
    collection: Collection, role: Role, rows: list[dict[str, Any]], crs: Crs, srid: int
) -> list[dict[str, Any]]:
    """GeoJSON features of rows in the CRS asked for (axis order of its authority)."""
    stored = shapely.from_wkb([r["wkb"] for r in rows])
    moved = stored if crs.code == srid else transform_geometries(stored, srid, crs.transform_code)
    shapes = geometries(moved, crs.decimals, crs.north_first)
    names = output_names(collection, role)
    return [
        {
            "type": "Feature",
            "id": feature_id(collection, row),
            "geometry": shape,
            "properties": {n: row[n] for n in names},
        }
        for row, shape in zip(rows, shapes, strict=True)
    ]

"""GeoPackage and GeoJSON files through pyogrio: the layer, batches of features, no `crs`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
from pyogrio import raw as ogr_raw

from app.ingest.mapping import Format, Mapping
from app.ingest.readers.columns import Errors, convert, read_batch
from app.ingest.readers.plan import Column, Options, ReadBatch, ReadError, plan_for

_CRS_MEMBER = re.compile(r'(?<!\\)"crs"\s*:')
_DRIVERS: dict[Format, str] = {"geojson": "GeoJSON", "gpkg": "GPKG"}
_OGR_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
)


def read_ogr(
    path: Path, mapping: Mapping, fmt: Format, opts: Options, batch_size: int
) -> Iterator[ReadBatch]:
    """Read a GeoJSON or GeoPackage layer in batches of at most batch_size features."""
    # DATE_AS_STRING keeps GeoJSON times as written (GDAL would otherwise parse some itself).
    open_options: dict[str, Any] = {"DATE_AS_STRING": "YES"} if fmt == "geojson" else {}
    # The driver's prefix: GDAL would pick a driver by the name (a GeoJSON called .csv as CSV).
    source = f"{_DRIVERS[fmt]}:{path}"
    layer = _layer(path, source, mapping, fmt)
    try:
        info = pyogrio.read_info(source, layer=layer, **open_options)
    except _OGR_ERRORS as e:
        raise ReadError(f"cannot read {path.name} as {fmt}: {e}") from None
    if fmt == "geojson":
        _refuse_crs_member(path, info.get("crs"))
    names = [str(f) for f in info["fields"]]
    plan = plan_for(
        mapping,
        names,
        opts,
        file_crs=info.get("crs"),
        has_geometry=info.get("geometry_type") is not None,
        default_geometry_crs="EPSG:4326" if fmt == "geojson" else None,
    )
    total = int(info["features"]) if int(info["features"]) >= 0 else None
    columns = [c for c in plan.columns() if c in names]
    read_geometry = plan.location.kind == "geometry"
    start = 0
    while total is None or start < total:
        try:
            meta, _, geometry, data = ogr_raw.read(
                source,
                layer=layer,
                columns=columns,
                read_geometry=read_geometry,
                skip_features=start,
                max_features=batch_size,
                datetime_as_string=True,
                **open_options,
            )
        except _OGR_ERRORS as e:
            raise ReadError(f"cannot read {path.name} after feature {start}: {e}") from None
        n = len(data[0]) if data else 0
        if n == 0:
            break
        fields = zip(meta["fields"], data, strict=True)
        cols = {str(name): _ogr_column(values) for name, values in fields}
        row = np.arange(start + 1, start + n + 1, dtype=np.int64)
        converted = convert(cols, row, plan, Errors(), geometry if read_geometry else None)
        start += n
        yield read_batch(
            converted,
            plan,
            opts,
            blank=0,
            rows_read=start,
            rows_total=total,
            bytes_read=None,
            bytes_total=None,
        )
        if n < batch_size:
            break


def _ogr_column(values: Column) -> Column:
    """A column as pyogrio reads it, with "" for the None of a missing text value."""
    if values.dtype.kind == "O":
        values = values.copy()
        values[pd.isna(values)] = ""
    return values


def _layer(path: Path, source: str, mapping: Mapping, fmt: Format) -> str | None:
    """The GeoPackage layer to read: the mapping's, or the only one (None for GeoJSON)."""
    if fmt != "gpkg":
        return None
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(source)]
    except _OGR_ERRORS as e:
        raise ReadError(f"cannot read {path.name} as a GeoPackage: {e}") from None
    if mapping.layer is not None:
        if mapping.layer not in layers:
            raise ReadError(f"no layer {mapping.layer!r} in {path.name}: it has {layers}")
        return mapping.layer
    if len(layers) != 1:
        raise ReadError(f"{path.name} has the layers {layers}: say which one with layer")
    return layers[0]


def _refuse_crs_member(path: Path, gdal_crs: str | None) -> None:
    """A GeoJSON `crs` member (removed by RFC 7946) is refused rather than guessed at."""
    with path.open("rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    before_features = head.split('"features"', 1)[0]
    if _CRS_MEMBER.search(before_features) or gdal_crs not in (None, "EPSG:4326"):
        named = f" ({gdal_crs})" if gdal_crs not in (None, "EPSG:4326") else ""
        raise ReadError(
            f'{path.name} has a top-level "crs" member{named}: RFC 7946 removed it and '
            "GeoJSON is always lon/lat (EPSG:4326). Convert the file to lon/lat, e.g. "
            f"ogr2ogr -t_srs EPSG:4326 converted.geojson {path.name}, or send a GeoPackage"
        )

"""REST bodies: a list of records (our field names, or a mapping's) or a FeatureCollection."""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.core.taxonomy import Taxonomy
from app.ingest.batch import ObjectArray, RawBatch, RowError
from app.ingest.mapping import ISO, Mapping
from app.ingest.readers.columns import Errors, convert, none_if_empty
from app.ingest.readers.plan import (
    NO_ZONE_BODY,
    FloatArray,
    Options,
    ReadError,
    plan_for,
    shipped_taxonomy,
    short,
)
from app.ingest.readers.polisen_json import bad_text, flatten, json_columns
from app.ingest.readers.times import parse_times
from geo.crs import CrsError, parse_crs

RECORD_FIELDS = (
    "source",
    "external_id",
    "category",
    "occurred_from",
    "occurred_to",
    "lon",
    "lat",
    "x",
    "y",
    "crs",
    "location_precision",
    "description",
)
_NUMBER_FIELDS = frozenset({"lon", "lat", "x", "y"})


def read_records(
    objs: Sequence[Any], /, mapping: Mapping | None = None, *, taxonomy: Taxonomy | None = None
) -> RawBatch:
    """A JSON body (a list of objects with our field names, or a mapping's) as a RawBatch."""
    if mapping is not None:
        return _records_with_mapping(objs, mapping, taxonomy or shipped_taxonomy())
    n = len(objs)
    errors = Errors()
    text, numbers = _record_fields(objs, errors)
    times = {}
    for name in ("occurred_from", "occurred_to"):
        times[name], reasons, _ = parse_times(text[name], ISO, None, NO_ZONE_BODY)
        for k in np.flatnonzero(reasons != None):  # noqa: E711 (elementwise)
            errors.add(int(k), name, str(reasons[k]))
    x, y, crs = _record_locations(text, numbers, errors)
    return RawBatch(
        row=np.arange(1, n + 1, dtype=np.int64),
        external_id=none_if_empty(text["external_id"]),
        category=none_if_empty(text["category"]),
        occurred_from=times["occurred_from"],
        occurred_to=times["occurred_to"],
        x=x,
        y=y,
        crs=crs,
        location_precision=none_if_empty(text["location_precision"]),
        description=none_if_empty(text["description"]),
        errors=errors.rows(np.arange(1, n + 1, dtype=np.int64), np.ones(n, dtype=bool)),
        source=none_if_empty(text["source"]),
    )


def _record_fields(
    objs: Sequence[Any], errors: Errors
) -> tuple[dict[str, ObjectArray], dict[str, FloatArray]]:
    """The records' fields as text columns ("" when absent) and number columns (NaN)."""
    n = len(objs)
    text = {name: np.full(n, "", dtype=object) for name in RECORD_FIELDS}
    numbers = {name: np.full(n, np.nan) for name in _NUMBER_FIELDS}
    for i, obj in enumerate(objs):
        if not isinstance(obj, dict):
            errors.add(i, "record", "is not an object of incident fields")
            continue
        for key, value in obj.items():
            if key not in RECORD_FIELDS:
                errors.add(i, str(key), _unknown_field(str(key)))
            elif value is None:
                continue
            elif key in _NUMBER_FIELDS:
                number, problem = _json_number(value)
                if problem is not None:
                    errors.add(i, key, problem)
                numbers[key][i] = number
            elif isinstance(value, str):
                problem = bad_text(value)
                if problem is not None:
                    errors.add(i, key, problem)
                else:
                    text[key][i] = value
            elif key == "external_id" and isinstance(value, int) and not isinstance(value, bool):
                text[key][i] = str(value)
            else:
                errors.add(i, key, "must be a string")
    return text, numbers


@functools.cache
def _unknown_field(key: str) -> str:
    """An unknown field's error, with the closest field name."""
    guess = difflib.get_close_matches(key, RECORD_FIELDS, n=1)
    if guess:
        return f"unknown field (did you mean {guess[0]!r}?)"
    return f"unknown field (the fields are {', '.join(RECORD_FIELDS)})"


def _json_number(value: Any) -> tuple[float, str | None]:
    """A JSON number (or numeric string) as a float, or why it is not a usable one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return np.nan, "must be a number"
    if isinstance(value, str):
        if not value.strip():
            return np.nan, None
        try:
            number = float(value)
        except ValueError:
            return np.nan, f"not a number: {short(value)!r}"
    else:
        try:
            number = float(value)
        except OverflowError:
            return np.nan, "not a finite number"
    if not np.isfinite(number):
        return np.nan, "not a finite number"
    return number, None


def _record_locations(
    text: dict[str, ObjectArray], numbers: dict[str, FloatArray], errors: Errors
) -> tuple[FloatArray, FloatArray, str]:
    """x, y and the one CRS of a body: lon/lat are EPSG:4326, x/y need their crs."""
    n = text["crs"].size
    lonlat = ~np.isnan(numbers["lon"]) | ~np.isnan(numbers["lat"])
    xy = ~np.isnan(numbers["x"]) | ~np.isnan(numbers["y"])
    crs = np.full(n, None, dtype=object)
    canonical: dict[str, str | None] = {}
    for i in range(n):
        given = str(text["crs"][i])
        if lonlat[i] and xy[i]:
            errors.add(i, "location", "give lon and lat, or x and y with crs, not both")
        elif lonlat[i]:
            if given and _canonical_crs(given, canonical) != "EPSG:4326":
                errors.add(i, "crs", "lon and lat are always EPSG:4326: send x and y with a crs")
            crs[i] = "EPSG:4326"
        elif xy[i]:
            if not given:
                errors.add(i, "crs", "missing: x and y need a crs such as EPSG:3006")
            elif _canonical_crs(given, canonical) is None:
                errors.add(i, "crs", f"unknown CRS {short(given)!r}")
            else:
                crs[i] = _canonical_crs(given, canonical)
    located = [c for c in crs if c is not None]
    chosen = Counter(located).most_common(1)[0][0] if located else "EPSG:4326"
    for k in np.flatnonzero(np.array([c is not None and c != chosen for c in crs], dtype=bool)):
        errors.add(int(k), "crs", f"differs from the other records ({chosen}): one CRS per request")
    x = np.where(lonlat, numbers["lon"], numbers["x"])
    y = np.where(lonlat, numbers["lat"], numbers["y"])
    return x, y, str(chosen)


def _canonical_crs(value: str, seen: dict[str, str | None]) -> str | None:
    """A body's crs as EPSG:code when it has one (else pyproj's string); None when unknown."""
    if value not in seen:
        try:
            found = parse_crs(value)
        except CrsError:
            seen[value] = None
        else:
            epsg = found.to_epsg()
            # Not crs_label: a CRS without a code must stay parseable, not become its name.
            seen[value] = f"EPSG:{epsg}" if epsg is not None else found.to_string()
    return seen[value]


def _records_with_mapping(objs: Sequence[Any], mapping: Mapping, taxonomy: Taxonomy) -> RawBatch:
    """A JSON body read through a mapping, as from a file."""
    opts = Options(None, None, None, taxonomy, NO_ZONE_BODY)
    flat = [flatten(o) if isinstance(o, dict) else None for o in objs]
    names = sorted({k for f in flat if f is not None for k in f})
    plan = plan_for(mapping, names, opts)
    errors = Errors()
    cols = json_columns(flat, plan.columns(), errors)
    converted = convert(cols, np.arange(1, len(objs) + 1, dtype=np.int64), plan, errors)
    batch = converted.batch
    if mapping.source is not None:
        batch.source = np.full(len(batch), mapping.source, dtype=object)
    return batch


def read_feature_collection(fc: Any, /) -> RawBatch:
    """A GeoJSON FeatureCollection body (properties with our field names, Point geometry)."""
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection":
        raise ReadError("expected a GeoJSON FeatureCollection")
    if "crs" in fc:
        raise ReadError(
            'the FeatureCollection has a "crs" member: RFC 7946 removed it and GeoJSON is '
            "always lon/lat (EPSG:4326); send lon/lat, or records with x, y and crs"
        )
    features = fc.get("features")
    if not isinstance(features, list):
        raise ReadError('a FeatureCollection needs a "features" list')
    records: list[Any] = []
    feature_errors: list[tuple[int, str, str]] = []
    for i, feature in enumerate(features):
        record, problem = _feature_record(feature)
        records.append(record)
        if problem is not None:
            feature_errors.append((i, *problem))
    batch = read_records(records)
    if feature_errors:
        errors = [RowError(i + 1, f, r) for i, f, r in feature_errors]
        batch.errors = sorted(errors + batch.errors, key=lambda e: e.row)
    return batch


def _feature_record(feature: Any) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """A Feature's properties with its Point as lon/lat, or what is wrong with it."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return {}, ("feature", "is not a GeoJSON Feature")
    properties = feature.get("properties")
    if properties is not None and not isinstance(properties, dict):
        return {}, ("properties", "must be an object")
    record = dict(properties or {})
    geometry = feature.get("geometry")
    if geometry is None:
        return record, None
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        return record, ("geometry", "is not a GeoJSON geometry")
    if geometry["type"] != "Point":
        return record, ("geometry", f"is a {geometry['type']}, not a Point")
    if any(k in record for k in ("lon", "lat", "x", "y", "crs")):
        return record, ("location", "give the location as the geometry or in properties, not both")
    coordinates = geometry.get("coordinates")
    if coordinates == []:
        return record, None
    if not isinstance(coordinates, list) or len(coordinates) not in (2, 3):
        return record, ("geometry", "a Point's coordinates must be [lon, lat]")
    record["lon"], record["lat"] = coordinates[0], coordinates[1]
    return record, None

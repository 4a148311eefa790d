"""Columns to a RawBatch: ids, categories and their rules, times, locations, precision, text.

Every reader turns its input into columns (text, or float64 for coordinates) and hands them
to `convert`, which parses them a column at a time with pandas and numpy. What cannot be
parsed becomes a RowError with the row number a person sees.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from app.ingest.batch import ObjectArray, RawBatch, RowError
from app.ingest.mapping import CategoryRule, TimeColumn, template_parts
from app.ingest.readers.plan import (
    BoolArray,
    Column,
    FloatArray,
    IntArray,
    Options,
    Plan,
    ReadBatch,
    TimeArray,
    short,
)
from app.ingest.readers.times import parse_date_times, parse_periods

_GEOMETRY_NAMES = {
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


class Errors:
    """Row errors by index into the columns being converted, in the order found."""

    def __init__(self) -> None:
        """Start with no errors."""
        self.items: list[tuple[int, str, str, str | None]] = []

    def add(self, index: int, field_name: str, reason: str, value: str | None = None) -> None:
        """Record one row's error and the value at fault."""
        self.items.append((index, field_name, reason, value))

    def add_many(
        self,
        indices: npt.NDArray[np.intp],
        field_name: str,
        reason: str,
        value: str | None = None,
    ) -> None:
        """Record the same error (and value) for several rows."""
        self.items += [(int(i), field_name, reason, value) for i in indices]

    def rows(self, row: IntArray, keep: BoolArray) -> list[RowError]:
        """The errors of the kept rows as RowErrors, by row (stable within a row)."""
        ordered = sorted(self.items, key=lambda e: e[0])
        return [RowError(int(row[i]), f, r, v) for i, f, r, v in ordered if keep[i]]


@dataclass
class Converted:
    """A batch and what converting it counted."""

    batch: RawBatch
    not_incident: Counter[str]
    ambiguous_times: int


def convert(
    cols: dict[str, Column],
    row: IntArray,
    plan: Plan,
    errors: Errors,
    geometry: ObjectArray | None = None,
) -> Converted:
    """Parse the mapped columns of one batch; rows mapped to null categories are left out."""
    m = plan.mapping
    category, skip, not_incident = _categories(_text(cols[m.category.column]), plan, errors)
    category = _category_rules(category, cols, m.category.when)
    time = m.time
    start, start_end, ambiguous = _times(cols, time.start, plan, errors, "occurred_from")
    # A month or a date alone is the period it names: it ends where the period ends.
    end, period_end = start_end, ~np.isnat(start_end)
    ambiguous_end = np.zeros(row.size, dtype=bool)
    if time.end is not None:
        to, to_end, ambiguous_end = _times(cols, time.end, plan, errors, "occurred_to")
        given = ~np.isnat(to)
        end = np.where(given, np.where(np.isnat(to_end), to, to_end), start_end)
        period_end = np.where(given, ~np.isnat(to_end), period_end)
    x, y = _location(cols, plan, errors, geometry)
    keep = ~skip
    batch = RawBatch(
        row=row[keep],
        external_id=_external_ids(cols, plan, x, y)[keep],
        category=category[keep],
        occurred_from=start[keep],
        occurred_to=end[keep],
        x=x[keep],
        y=y[keep],
        crs=plan.crs,
        location_precision=_precision(cols, plan, row.size)[keep],
        description=_description(cols, m.description, row.size)[keep],
        errors=errors.rows(row, keep),
        period_end=period_end[keep],
    )
    repeated_hour = int((ambiguous & keep).sum() + (ambiguous_end & keep).sum())
    return Converted(batch, not_incident, repeated_hour)


def _text(values: Column) -> ObjectArray:
    """Any column as text: str per row, "" when empty (numbers as written, 5.0 as 5)."""
    kind = values.dtype.kind
    if kind == "O":
        return values  # readers give text columns with "" for empty, never None
    if kind == "f":
        return np.array(
            ["" if v != v else str(int(v)) if v.is_integer() else repr(v) for v in values.tolist()],
            dtype=object,
        )
    if kind == "M":
        text = np.datetime_as_string(values)
        return np.where(np.isnat(values), "", text).astype(object)
    if kind == "b":
        return np.where(values, "true", "false").astype(object)
    return values.astype(str).astype(object)


def none_if_empty(values: ObjectArray) -> ObjectArray:
    """Text with None where it is empty."""
    out = values.copy()
    out[values == ""] = None
    return out


def _external_ids(cols: dict[str, Column], plan: Plan, x: FloatArray, y: FloatArray) -> ObjectArray:
    """external_id from the id columns; rows without one get a derived id when the mapping
    says so (`id: {derive: true}`)."""
    spec = plan.mapping.id
    n = x.size
    ids = _ids([_text(cols[c]) for c in spec.columns]) if spec.columns else np.full(n, None, object)
    if plan.derived_ids is not None:
        missing = pd.isna(ids)
        if missing.any():
            texts = [_text(cols[c])[missing] for c in plan.derived_ids.columns]
            ids[missing] = plan.derived_ids.make(texts, x[missing], y[missing])
    return ids


def _ids(parts: list[ObjectArray]) -> ObjectArray:
    """external_id: one column, or several joined with ':' (None when every part is empty)."""
    if len(parts) == 1:
        return none_if_empty(parts[0])
    joined = np.array([":".join(p) for p in zip(*parts, strict=True)], dtype=object)
    empty = np.logical_and.reduce([p == "" for p in parts])
    joined[empty] = None
    return joined


def _categories(
    values: ObjectArray, plan: Plan, errors: Errors
) -> tuple[ObjectArray, BoolArray, Counter[str]]:
    """Map each distinct value once; rows of values mapped to null are marked to be skipped."""
    spec = plan.mapping.category
    codes, uniques = pd.factorize(values)
    out = np.empty(len(uniques), dtype=object)
    skip = np.zeros(len(uniques), dtype=bool)
    bad: list[tuple[int, str]] = []
    for j, value in enumerate(uniques):
        key = str(value).strip()
        if not key or plan.categories is None:
            out[j] = key or None
            continue
        if key in plan.categories:
            out[j] = plan.categories[key]
        elif spec.has_default:
            out[j] = spec.default
        else:
            where = "the taxonomy's polisen mapping" if plan.polisen else "the category map"
            bad.append((j, f"{key!r} is not in {where} (add it to map, or give a default)"))
            continue
        skip[j] = out[j] is None
    not_incident: Counter[str] = Counter()
    if skip.any():
        counts = np.bincount(codes, minlength=len(uniques))
        for k in np.flatnonzero(skip):
            not_incident[str(uniques[k]).strip()] += int(counts[k])
    for value_index, reason in bad:
        value = str(uniques[value_index]).strip()
        errors.add_many(np.flatnonzero(codes == value_index), "category", reason, value)
    return out[codes], skip[codes], not_incident


def _category_rules(
    category: ObjectArray, cols: dict[str, Column], rules: Sequence[CategoryRule]
) -> ObjectArray:
    """Apply the mapping's `category.when` rules; the first rule that applies to a row wins."""
    if not rules:
        return category
    out = category.copy()
    mapped = pd.Series(category, dtype=object)
    decided = np.zeros(len(category), dtype=bool)
    for rule in rules:
        said = pd.Series(_text(cols[rule.column]), dtype=object).str.strip().str.lower()
        hit = said.isin([v.strip().lower() for v in rule.values]).to_numpy(bool)
        hit = hit & ~decided & mapped.notna().to_numpy(bool)
        if rule.only_for is not None:
            codes = mapped.fillna("")
            under = np.zeros(len(category), dtype=bool)
            for code in rule.only_for:
                under |= (codes.eq(code) | codes.str.startswith(code + ".")).to_numpy(bool)
            hit = hit & under
        out[hit] = rule.category
        decided |= hit
    return out


def _times(
    cols: dict[str, Column], spec: TimeColumn, plan: Plan, errors: Errors, name: str
) -> tuple[TimeArray, TimeArray, BoolArray]:
    """Parse a time column (with its time-of-day column, if any) to UTC: the times, the end of
    those that name a period (NaT for instants), and which rows were in a repeated hour."""
    text = _text(cols[spec.column])
    if spec.time_of_day is not None:
        clock = spec.time_of_day
        found = parse_date_times(
            text, _text(cols[clock.column]), spec.format, clock.format, plan.timezone, plan.no_zone
        )
        for i in np.flatnonzero(found.reasons != None):  # noqa: E711 (elementwise)
            errors.add(int(i), name, str(found.reasons[i]), str(found.values[i]))
        return found.start, found.end, found.ambiguous
    codes, uniques = pd.factorize(text)
    values = np.asarray(uniques, dtype=object)
    parsed, ends, reasons, ambiguous = parse_periods(
        values, spec.format, plan.timezone, plan.no_zone
    )
    for j in np.flatnonzero(reasons != None):  # noqa: E711 (elementwise on an object array)
        errors.add_many(np.flatnonzero(codes == j), name, str(reasons[j]), str(values[j]))
    return parsed[codes], ends[codes], ambiguous[codes]


def _location(
    cols: dict[str, Column], plan: Plan, errors: Errors, geometry: ObjectArray | None
) -> tuple[FloatArray, FloatArray]:
    """x and y (NaN when absent) from the plan's kind of location."""
    loc = plan.location
    decimal = plan.mapping.decimal
    if loc.kind == "xy" and loc.x is not None and loc.y is not None:
        return (
            _numbers(cols[loc.x], "x", decimal, errors),
            _numbers(cols[loc.y], "y", decimal, errors),
        )
    if loc.kind == "lonlat" and loc.lon is not None and loc.lat is not None:
        return (
            _numbers(cols[loc.lon], "lon", decimal, errors),
            _numbers(cols[loc.lat], "lat", decimal, errors),
        )
    if loc.kind == "latlon" and loc.latlon is not None:
        return _lat_lon_text(_text(cols[loc.latlon]), errors)
    if loc.kind == "wkt" and loc.wkt is not None:
        text = _text(cols[loc.wkt])
        wkt = text.copy()
        wkt[text == ""] = None
        shapes = shapely.from_wkt(wkt, on_invalid="ignore")
        for i in np.flatnonzero((text != "") & pd.isna(shapes)):
            errors.add(int(i), "geometry", f"not WKT: {short(str(text[i]))!r}", str(text[i]))
        return _points(shapes, errors)
    assert geometry is not None  # the plan chose the geometry only when the input has one
    return _points(shapely.from_wkb(geometry, on_invalid="ignore"), errors)


def _numbers(column: Column, name: str, decimal: str, errors: Errors) -> FloatArray:
    """Coordinates as float64: empty → NaN; text that is not a finite number → a RowError."""
    if column.dtype.kind in "fiu":
        values = column.astype(np.float64)
        bad = np.isinf(values)
        errors.add_many(np.flatnonzero(bad), name, "not a finite number")
        values[bad] = np.nan
        return values
    text = column if decimal == "." else _replace(column, ",", ".")
    empty = np.array([not v.strip() for v in text], dtype=bool)
    try:
        values = np.where(empty, "nan", text).astype(np.float64)
    except ValueError:
        values = np.array([_number_or_nan(v) for v in np.where(empty, "nan", text)])
    bad = ~empty & ~np.isfinite(values)
    for i in np.flatnonzero(bad):
        errors.add(int(i), name, _not_a_number(str(column[i]), decimal), str(column[i]))
    values[bad] = np.nan
    return values


def _replace(values: ObjectArray, old: str, new: str) -> ObjectArray:
    """Replace a substring in every value."""
    return pd.Series(values, dtype=object).str.replace(old, new, regex=False).to_numpy(object)


def _number_or_nan(value: str) -> float:
    """A float, NaN when the text is not a number."""
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _not_a_number(value: str, decimal: str) -> str:
    """Why a value is not a usable coordinate, with a decimal-comma hint."""
    try:
        float(value.replace(",", ".") if decimal == "," else value)
    except ValueError:
        hint = ""
        if decimal == "." and re.fullmatch(r"\s*[+-]?\d+,\d+\s*", value):
            hint = " (a decimal comma? add decimal: ',' to the mapping)"
        return f"not a number: {short(value)!r}{hint}"
    return f"not a finite number: {short(value)!r}"


def _lat_lon_text(text: ObjectArray, errors: Errors) -> tuple[FloatArray, FloatArray]:
    """polisen.se's "lat,lon" strings as (lon, lat)."""
    parts = pd.Series(text, dtype=object).str.partition(",")
    lat_text = parts[0].str.strip().to_numpy(object, copy=True)
    lon_text = parts[2].str.strip().to_numpy(object, copy=True)
    no_comma = (text != "") & (parts[1].to_numpy(object) == "")
    for i in np.flatnonzero(no_comma):
        errors.add(int(i), "location", f"not 'lat,lon': {short(str(text[i]))!r}", str(text[i]))
    lat_text[no_comma] = ""
    lon_text[no_comma] = ""
    lat = _numbers(lat_text, "location", ".", errors)
    lon = _numbers(lon_text, "location", ".", errors)
    return lon, lat


def _points(shapes: ObjectArray, errors: Errors) -> tuple[FloatArray, FloatArray]:
    """Point coordinates; a null or empty geometry is no location, any other type an error."""
    kind = shapely.get_type_id(shapes)
    points = (kind == 0) & ~shapely.is_empty(shapes)
    x = np.full(shapes.size, np.nan)
    y = np.full(shapes.size, np.nan)
    x[points] = shapely.get_x(shapes[points])
    y[points] = shapely.get_y(shapes[points])
    for i in np.flatnonzero(kind > 0):
        name = _GEOMETRY_NAMES.get(int(kind[i]), "geometry")
        errors.add(int(i), "geometry", f"is a {name}, not a Point")
    return x, y


def _precision(cols: dict[str, Column], plan: Plan, n: int) -> ObjectArray:
    """location_precision: a column, a default for every row, or None."""
    spec = plan.mapping.precision
    if spec is None:
        return np.full(n, None, dtype=object)
    if spec.column is None:
        return np.full(n, spec.default, dtype=object)
    values = none_if_empty(_text(cols[spec.column]))
    if spec.default is not None:
        values[pd.isna(values)] = spec.default
    return values


def _description(cols: dict[str, Column], template: str | None, n: int) -> ObjectArray:
    """A column, or a template filled per row (None when every placeholder is empty)."""
    if template is None:
        return np.full(n, None, dtype=object)
    parts = template_parts(template)
    texts = [_text(cols[t]) for t, is_column in parts if is_column]
    if len(parts) == 1:
        return none_if_empty(texts[0])
    pieces = iter(texts)
    columns = [next(pieces) if is_column else itertools.repeat(t) for t, is_column in parts]
    out = np.array(list(map("".join, zip(*columns, strict=False))), dtype=object)  # repeat()s
    out[np.logical_and.reduce([t == "" for t in texts])] = None
    return out


def read_batch(
    converted: Converted,
    plan: Plan,
    opts: Options,
    *,
    blank: int,
    rows_read: int,
    rows_total: int | None,
    bytes_read: int | None,
    bytes_total: int | None,
) -> ReadBatch:
    """A converted batch with what the reader counted, as a ReadBatch."""
    return ReadBatch(
        batch=converted.batch,
        source=opts.source,
        not_incident=converted.not_incident,
        ambiguous_times=converted.ambiguous_times,
        blank_rows=blank,
        rows_read=rows_read,
        rows_total=rows_total,
        bytes_read=bytes_read,
        bytes_total=bytes_total,
        timezone=plan.timezone,
    )

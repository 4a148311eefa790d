"""Readers: files (CSV, GeoJSON, GeoPackage, polisen.se JSON) and REST bodies into RawBatch objects.

Every reader turns its input into columns and hands them to one conversion (`_convert`) that
parses ids, times, categories, locations, precision and descriptions a column at a time with
pandas and numpy. What cannot be parsed becomes a RowError with the row number a person sees;
what makes the whole input unreadable (a missing column, a GeoJSON `crs` member) is a ReadError.

CSV records are cut by us, not by pandas: numpy finds the record ends and counts each record's
fields from the positions of quotes, delimiters and newlines, so a line with too many or too few
fields is reported with its row number (pandas pads short lines silently, and its bad-line
callback needs the slow Python engine). The well-formed records then go through pandas' C
parser, which reads only the mapped columns.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import functools
import gzip
import io
import itertools
import os
import re
import zlib
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import pyogrio
import shapely
from pyogrio import raw as ogr_raw
from pyproj import CRS
from pyproj.exceptions import CRSError

from app.core.errors import InvalidInput
from app.core.taxonomy import Taxonomy, load_taxonomy
from app.ingest.batch import ObjectArray, RawBatch, RowError
from app.ingest.mapping import (
    ISO,
    POLISEN,
    CategoryRule,
    Format,
    LocationSpec,
    Mapping,
    MappingError,
    TimeColumn,
    check_timezone,
    template_parts,
)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
Column = npt.NDArray[Any]  # text (object, "" when empty) or numbers (float64, NaN when empty)

# polisen.se writes "2023-03-25 9:43:15 +01:00": strptime's %H also takes the unpadded hour.
POLISEN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
DEFAULT_BATCH_SIZE = 50_000
NO_ZONE_FILE = "no time zone: give --timezone or an offset"
NO_ZONE_BODY = "needs a time zone offset"
BLOCK_BYTES = 8 << 20  # CSV bytes cut into records at a time
GZIP_INPUT_BYTES = 1 << 20  # compressed bytes handed to zlib at a time
MAX_RECORD_BYTES = 1 << 20  # a longer row is a quote that never closes, not an incident
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
_QUOTE, _NEWLINE, _CR = ord('"'), ord("\n"), ord("\r")
_NAT = np.datetime64("NaT", "us")
_BOM = codecs.BOM_UTF8
# An offset after a time of day: "...T14:30Z", "... 14:30:00+01:00", "...T1430+0100".
_OFFSET = re.compile(r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_CRS_MEMBER = re.compile(r'(?<!\\)"crs"\s*:')
_GEOMETRY_NAMES = {
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


class ReadError(InvalidInput, ValueError):
    """An input that cannot be read at all; the message says what to change."""


def parse_polisen_time(value: str) -> datetime:
    """Parse the feed's "2023-03-25 9:43:15 +01:00" (the hour is not always zero-padded)."""
    return datetime.strptime(value, POLISEN_TIME_FORMAT)


@dataclass
class ReadBatch:
    """One batch of a file as read, with what the reader counted on the way."""

    batch: RawBatch
    source: str | None
    not_incident: Counter[str]
    ambiguous_times: int
    blank_rows: int
    rows_read: int
    rows_total: int | None
    bytes_read: int | None
    bytes_total: int | None
    timezone: str | None = None

    @property
    def warnings(self) -> list[str]:
        """What the reader decided for the user in this batch, in words."""
        return _warnings(self.ambiguous_times, self.blank_rows, self.timezone)


@dataclass
class ReadTotals:
    """What the batches of a file add up to."""

    rows_read: int = 0
    not_incident: Counter[str] = field(default_factory=Counter)
    ambiguous_times: int = 0
    blank_rows: int = 0
    timezone: str | None = None

    def add(self, read: ReadBatch) -> None:
        """Count one more batch."""
        self.rows_read = read.rows_read
        self.not_incident.update(read.not_incident)
        self.ambiguous_times += read.ambiguous_times
        self.blank_rows += read.blank_rows
        self.timezone = read.timezone

    @property
    def warnings(self) -> list[str]:
        """What the reader decided for the user in the whole file, in words."""
        return _warnings(self.ambiguous_times, self.blank_rows, self.timezone)


def _warnings(ambiguous: int, blank: int, timezone: str | None) -> list[str]:
    out = []
    if ambiguous:
        times = "time" if ambiguous == 1 else "times"
        out.append(
            f"{ambiguous} {times} in the repeated hour when summer time ends in {timezone} "
            f"{'was' if ambiguous == 1 else 'were'} read as summer time (the first of the two)"
        )
    if blank:
        out.append(f"{blank} empty {'row was' if blank == 1 else 'rows were'} skipped")
    return out


@dataclass(frozen=True)
class _Options:
    """What the caller decides over the mapping (the CLI's --source, --timezone, --crs)."""

    source: str | None
    timezone: str | None
    crs: str | None
    taxonomy: Taxonomy
    no_zone: str


def read_batches(
    path: Path,
    mapping: Mapping,
    *,
    source_override: str | None = None,
    timezone_override: str | None = None,
    crs_override: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    taxonomy: Taxonomy | None = None,
) -> Iterator[ReadBatch]:
    """Read a file batch by batch (at most batch_size rows each) with bounded memory."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    path = Path(path)
    if not path.is_file():
        raise ReadError(f"no file {str(path)!r}")
    opts = _Options(
        source=source_override or mapping.source,
        timezone=None if timezone_override is None else _zone_name(timezone_override),
        crs=None if crs_override is None else _crs_name(crs_override),
        taxonomy=taxonomy or _shipped_taxonomy(),
        no_zone=NO_ZONE_FILE,
    )
    fmt = mapping.format_for(path)
    _check_options(mapping, fmt)
    if fmt == "csv":
        yield from _read_csv(path, mapping, opts, batch_size)
    elif fmt == "polisen-json":
        yield from _read_json_file(path, mapping, opts, batch_size)
    else:
        yield from _read_ogr(path, mapping, fmt, opts, batch_size)


@functools.cache
def _shipped_taxonomy() -> Taxonomy:
    return load_taxonomy()


def _zone_name(value: str) -> str:
    try:
        return check_timezone(value)
    except ValueError as e:
        raise ReadError(str(e)) from None


def _crs_name(value: str) -> str:
    try:
        CRS.from_user_input(value)
    except CRSError:
        raise ReadError(f"unknown CRS {value!r}: use a code such as EPSG:3006") from None
    return value


def _check_options(mapping: Mapping, fmt: Format) -> None:
    given = mapping.model_fields_set
    csv_options = sorted(given & {"delimiter", "encoding", "decimal"})
    if fmt != "csv" and csv_options:
        raise MappingError(f"{', '.join(csv_options)}: for CSV files only, and this is {fmt}")
    if fmt != "gpkg" and "layer" in given:
        raise MappingError(f"layer: for GeoPackage files only, and this is {fmt}")


# --- the plan: a mapping resolved against the columns of one input -------------------------


@dataclass(frozen=True)
class _Plan:
    """A mapping resolved against one input: the location used, its CRS, zone and categories."""

    mapping: Mapping
    location: LocationSpec
    crs: str
    timezone: str | None
    categories: dict[str, str | None] | None
    polisen: bool
    no_zone: str

    @property
    def coordinate_columns(self) -> list[str]:
        """Columns read only as numbers (x/y or lon/lat), which a CSV can parse as floats."""
        if self.location.kind not in ("xy", "lonlat"):
            return []
        others = set(self.mapping.field_columns())
        return [c for c in self.location.columns if c not in others]

    def columns(self) -> list[str]:
        """The columns this plan reads."""
        return list(dict.fromkeys(self.mapping.field_columns() + self.location.columns))


def _plan(
    mapping: Mapping,
    columns: Sequence[str],
    opts: _Options,
    *,
    file_crs: str | None = None,
    has_geometry: bool = False,
    default_geometry_crs: str | None = None,
) -> _Plan:
    """Choose the location alternative whose columns exist and check every other column."""
    present = set(columns)
    location = next(
        (
            loc
            for loc in mapping.location
            if (loc.kind == "geometry" and has_geometry)
            or (loc.kind != "geometry" and all(c in present for c in loc.columns))
        ),
        None,
    )
    if location is None:
        wanted = " or ".join(
            "a geometry (only GeoJSON and GeoPackage have one: give x/y, lon/lat, wkt or "
            "latlon under location)"
            if loc.kind == "geometry"
            else "columns " + " and ".join(repr(c) for c in loc.columns)
            for loc in mapping.location
        )
        raise ReadError(f"no location: the input has no {wanted}; {_columns_note(columns)}")
    for name in mapping.field_columns():
        if name not in present:
            raise ReadError(f"the input has no column {name!r}; {_columns_note(columns, name)}")
    crs = opts.crs or location.crs
    if crs is None:
        if location.kind in ("lonlat", "latlon"):
            crs = "EPSG:4326"
        elif location.kind == "geometry":
            crs = default_geometry_crs or file_crs
        if crs is None:
            what = "the layer" if location.kind == "geometry" else f"{location.kind} coordinates"
            raise ReadError(
                f"no CRS for {what}: add crs (e.g. EPSG:3006) under location or pass --crs"
            )
    categories: dict[str, str | None] | None = None
    spec = mapping.category
    if spec.map == POLISEN:
        categories = {}
        for key, code in opts.taxonomy.polisen.items():
            categories.setdefault(key.strip(), code)
    elif isinstance(spec.map, dict):
        categories = dict(spec.map)
    if categories is not None:
        targets = set(categories.values()) | ({spec.default} if spec.has_default else set())
        _known_codes("category.map", targets, opts.taxonomy)
    for n, rule in enumerate(spec.when):
        _known_codes(f"category.when[{n}]", {rule.category, *(rule.only_for or [])}, opts.taxonomy)
    return _Plan(
        mapping=mapping,
        location=location,
        crs=crs,
        timezone=opts.timezone or mapping.time.timezone,
        categories=categories,
        polisen=spec.map == POLISEN,
        no_zone=opts.no_zone,
    )


def _known_codes(where: str, codes: set[str | None], taxonomy: Taxonomy) -> None:
    unknown = sorted(c for c in codes if c is not None and c not in taxonomy.by_code)
    if unknown:
        raise MappingError(
            f"{where}: {', '.join(map(repr, unknown))} "
            f"{'is not a category code' if len(unknown) == 1 else 'are not category codes'} "
            "of the taxonomy (data/categories.yaml)"
        )


def _columns_note(columns: Sequence[str], name: str | None = None) -> str:
    guess = difflib.get_close_matches(name, list(columns), n=1) if name else []
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    shown = ", ".join(repr(c) for c in list(columns)[:40])
    more = ", ..." if len(columns) > 40 else ""
    return f"{hint}its columns are {shown}{more}"


# --- columns to a RawBatch ------------------------------------------------------------------


class _Errors:
    """Row errors by index into the columns being converted, in the order found."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, str]] = []

    def add(self, index: int, field_name: str, reason: str) -> None:
        """Record one row's error."""
        self.items.append((index, field_name, reason))

    def add_many(self, indices: npt.NDArray[np.intp], field_name: str, reason: str) -> None:
        """Record the same error for several rows."""
        self.items += [(int(i), field_name, reason) for i in indices]

    def rows(self, row: IntArray, keep: BoolArray) -> list[RowError]:
        """The errors of the kept rows as RowErrors, by row (stable within a row)."""
        ordered = sorted(self.items, key=lambda e: e[0])
        return [RowError(int(row[i]), f, r) for i, f, r in ordered if keep[i]]


@dataclass
class _Converted:
    """A batch and what converting it counted."""

    batch: RawBatch
    not_incident: Counter[str]
    ambiguous_times: int


def _convert(
    cols: dict[str, Column],
    row: IntArray,
    plan: _Plan,
    errors: _Errors,
    geometry: ObjectArray | None = None,
) -> _Converted:
    """Parse the mapped columns of one batch; rows mapped to null categories are left out."""
    m = plan.mapping
    category, skip, not_incident = _categories(_text(cols[m.category.column]), plan, errors)
    category = _category_rules(category, cols, m.category.when)
    time = m.time
    start, ambiguous = _times(cols[time.start.column], time.start, plan, errors, "occurred_from")
    end: TimeArray = np.full(row.size, _NAT)
    ambiguous_end = np.zeros(row.size, dtype=bool)
    if time.end is not None:
        end, ambiguous_end = _times(cols[time.end.column], time.end, plan, errors, "occurred_to")
    x, y = _location(cols, plan, errors, geometry)
    keep = ~skip
    batch = RawBatch(
        row=row[keep],
        external_id=_ids([_text(cols[c]) for c in m.id])[keep],
        category=category[keep],
        occurred_from=start[keep],
        occurred_to=end[keep],
        x=x[keep],
        y=y[keep],
        crs=plan.crs,
        location_precision=_precision(cols, plan, row.size)[keep],
        description=_description(cols, m.description, row.size)[keep],
        errors=errors.rows(row, keep),
    )
    repeated_hour = int((ambiguous & keep).sum() + (ambiguous_end & keep).sum())
    return _Converted(batch, not_incident, repeated_hour)


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


def _none_if_empty(values: ObjectArray) -> ObjectArray:
    out = values.copy()
    out[values == ""] = None
    return out


def _ids(parts: list[ObjectArray]) -> ObjectArray:
    """external_id: one column, or several joined with ':' (None when every part is empty)."""
    if len(parts) == 1:
        return _none_if_empty(parts[0])
    joined = np.array([":".join(p) for p in zip(*parts, strict=True)], dtype=object)
    empty = np.logical_and.reduce([p == "" for p in parts])
    joined[empty] = None
    return joined


def _categories(
    values: ObjectArray, plan: _Plan, errors: _Errors
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
        errors.add_many(np.flatnonzero(codes == value_index), "category", reason)
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
    column: Column, spec: TimeColumn, plan: _Plan, errors: _Errors, name: str
) -> tuple[TimeArray, BoolArray]:
    """Parse a time column to UTC; return the times and which rows were in a repeated hour."""
    codes, uniques = pd.factorize(_text(column))
    parsed, reasons, ambiguous = _parse_times(
        np.asarray(uniques, dtype=object), spec.format, plan.timezone, plan.no_zone
    )
    for j in np.flatnonzero(reasons != None):  # noqa: E711 (elementwise on an object array)
        errors.add_many(np.flatnonzero(codes == j), name, str(reasons[j]))
    return parsed[codes], ambiguous[codes]


def _parse_times(
    values: ObjectArray, fmt: str, timezone: str | None, no_zone: str
) -> tuple[TimeArray, ObjectArray, BoolArray]:
    """Distinct time strings to UTC datetime64[us]; an error reason per value that fails."""
    n = values.size
    out = np.full(n, _NAT)
    reasons = np.full(n, None, dtype=object)
    ambiguous = np.zeros(n, dtype=bool)
    given = np.array([bool(v.strip()) for v in values], dtype=bool)
    if fmt == ISO:
        aware = given & np.array([_OFFSET.search(v) is not None for v in values], dtype=bool)
        pattern = "ISO8601"
    elif fmt == POLISEN:
        values, aware, pattern = _pad_polisen_hours(values), given, POLISEN_TIME_FORMAT
    else:
        aware = given if "%z" in fmt else np.zeros(n, dtype=bool)
        pattern = fmt
    naive = given & ~aware
    if aware.any():
        out[aware] = _read_times(values[aware], pattern, utc=True)
    if naive.any():
        wall = _read_times(values[naive], pattern, utc=False)
        if timezone is None:
            reasons[np.flatnonzero(naive)[~np.isnat(wall)]] = no_zone
        else:
            out[naive], reasons_naive, ambiguous[naive] = _localise(wall, values[naive], timezone)
            reasons[naive] = reasons_naive
    failed = given & np.isnat(out) & (reasons == None)  # noqa: E711 (elementwise)
    for i in np.flatnonzero(failed):
        reasons[i] = _not_a_time(str(values[i]), fmt)
    return out, reasons, ambiguous


def _pad_polisen_hours(values: ObjectArray) -> ObjectArray:
    """Pad polisen's unpadded hours ("2023-03-25 9:43:15 +01:00") so the layout is fixed."""
    unpadded = np.array([len(v) > 12 and v[12] == ":" for v in values], dtype=bool)
    if not unpadded.any():
        return values
    out = values.copy()
    out[unpadded] = [f"{v[:11]}0{v[11:]}" for v in values[unpadded]]
    return out


def _read_times(values: ObjectArray, pattern: str, utc: bool) -> TimeArray:
    """Parse times: UTC when utc (offsets given), else as written; NaT where they do not parse.

    Values that fit a fixed-width pattern exactly are read by numpy, the others by pandas.
    """
    times: TimeArray = np.full(values.size, _NAT)
    done = np.zeros(values.size, dtype=bool)
    layout = _fixed_layout(pattern)
    if layout is not None:
        times, done = _read_fixed_width(values, layout)
    if not done.all():
        times[~done] = _pandas_times(values[~done], pattern, utc)
    return times


def _pandas_times(values: ObjectArray, pattern: str, utc: bool) -> TimeArray:
    """pandas' parse; a zone name ("12:00 UTC") where none may be is NaT, not a wall time."""
    # pandas reads "now" and "today" as the clock's time whatever the format: not a record's.
    relative = np.array([v.strip().lower() in ("now", "today") for v in values], dtype=bool)
    if relative.any():
        times = np.full(values.size, _NAT)
        times[~relative] = _pandas_times(values[~relative], pattern, utc)
        return times
    try:
        parsed = pd.to_datetime(values, format=pattern, utc=utc, errors="coerce")
        return _utc_micros(parsed, utc)
    except ValueError:
        # Naive and zoned values mixed in one call make pandas raise: parse them one by one.
        return np.array([_pandas_time(v, pattern, utc) for v in values], dtype="datetime64[us]")


def _pandas_time(value: str, pattern: str, utc: bool) -> np.datetime64:
    try:
        time = pd.to_datetime(value, format=pattern, utc=utc)
    except (ValueError, OverflowError):
        return _NAT
    if pd.isna(time) or (not utc and time.tzinfo is not None):
        return _NAT
    return np.datetime64(time.tz_convert(None) if utc else time, "us")


@dataclass(frozen=True)
class _FixedLayout:
    """Where each directive of a zero-padded strptime pattern sits, and the literal characters.

    %z is the "+01:00" form here; "+0100" and "Z" are left to pandas.
    """

    width: int
    fields: dict[str, int]  # directive letter -> offset
    literals: list[tuple[int, int]]  # (offset, byte)


_FIXED_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "I": 2, "M": 2, "S": 2, "p": 2, "z": 6}


def _fixed_layout(pattern: str) -> _FixedLayout | None:
    """The layout of a pattern made of fixed-width directives only, else None."""
    fields: dict[str, int] = {}
    literals: list[tuple[int, int]] = []
    at = i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%":
            if i + 1 == len(pattern):
                return None
            directive = pattern[i + 1]
            i += 2
            if directive == "%":
                literals.append((at, ord("%")))
                at += 1
                continue
            if directive not in _FIXED_WIDTHS or directive in fields:
                return None
            fields[directive] = at
            at += _FIXED_WIDTHS[directive]
            continue
        if not char.isascii() or (char.isspace() and char != " "):
            return None
        literals.append((at, ord(char)))
        at += 1
        i += 1
    complete = {"Y", "m", "d"} <= fields.keys()
    clock = "H" in fields or ("I" in fields and "p" in fields)
    if not complete or ("I" in fields) != ("p" in fields) or ("H" in fields and "I" in fields):
        return None
    if not clock and fields.keys() & {"M", "S"}:
        return None
    return _FixedLayout(at, fields, literals)


def _read_fixed_width(values: ObjectArray, layout: _FixedLayout) -> tuple[TimeArray, BoolArray]:
    """Parse the values that fit the layout exactly; say which did (pandas reads the others)."""
    n, width = values.size, layout.width
    wall = np.full(n, _NAT)
    try:
        raw = values.astype(f"S{width + 1}")
    except UnicodeEncodeError:
        return wall, np.zeros(n, dtype=bool)
    grid = raw.view(np.uint8).reshape(n, width + 1)
    ok = (grid[:, width] == 0) & (grid[:, width - 1] != 0)  # exactly `width` characters
    for position, byte in layout.literals:
        ok &= grid[:, position] == byte

    def number(directive: str) -> npt.NDArray[np.int64]:
        nonlocal ok
        start = layout.fields[directive]
        digits = grid[:, start : start + _FIXED_WIDTHS[directive]].astype(np.int64) - ord("0")
        ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
        return digits @ (10 ** np.arange(digits.shape[1] - 1, -1, -1))

    year, month, day = number("Y"), number("m"), number("d")
    zero = np.zeros(n, dtype=np.int64)
    minute = number("M") if "M" in layout.fields else zero
    second = number("S") if "S" in layout.fields else zero
    if "I" in layout.fields:
        hour12 = number("I")
        at = layout.fields["p"]
        half = grid[:, at] & 0xDF  # upper case
        ok &= ((half == ord("A")) | (half == ord("P"))) & ((grid[:, at + 1] & 0xDF) == ord("M"))
        ok &= (hour12 >= 1) & (hour12 <= 12)
        hour = hour12 % 12 + np.where(half == ord("P"), 12, 0)
    else:
        hour = number("H") if "H" in layout.fields else zero
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    dates = months.astype("datetime64[D]") + np.where(ok, day - 1, 0)
    ok &= dates.astype("datetime64[M]") == months  # no 31 April
    if "z" in layout.fields:
        at = layout.fields["z"]
        sign = grid[:, at]
        ok &= ((sign == ord("+")) | (sign == ord("-"))) & (grid[:, at + 3] == ord(":"))
        digits = grid[:, [at + 1, at + 2, at + 4, at + 5]].astype(np.int64) - ord("0")
        ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
        offset = (digits[:, 0] * 10 + digits[:, 1]) * 60 + digits[:, 2] * 10 + digits[:, 3]
        ok &= (offset < 24 * 60) & (digits[:, 2] < 6)
        minute = minute - np.where(sign == ord("-"), -offset, offset)  # to UTC
    micros = ((hour * 60 + minute) * 60 + second) * 1_000_000
    wall[ok] = dates[ok].astype("datetime64[us]") + micros[ok].astype("timedelta64[us]")
    return wall, ok


def _localise(
    wall: TimeArray, values: ObjectArray, timezone: str
) -> tuple[TimeArray, ObjectArray, BoolArray]:
    """Wall-clock times in a zone to UTC; the repeated autumn hour is read as summer time."""
    n = wall.size
    local = pd.DatetimeIndex(wall)
    reasons = np.full(n, None, dtype=object)
    strict = local.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    out = _utc_micros(strict)
    unsure = np.isnat(out) & ~np.isnat(wall)
    ambiguous = np.zeros(n, dtype=bool)
    if unsure.any():
        # pandas says True for "summer time" per value: the first of the two 02:30 in October.
        second = local[unsure].tz_localize(
            timezone, ambiguous=np.ones(int(unsure.sum()), dtype=bool), nonexistent="NaT"
        )
        resolved = _utc_micros(second)
        idx = np.flatnonzero(unsure)
        out[idx] = resolved
        ambiguous[idx] = ~np.isnat(resolved)
        for i in idx[np.isnat(resolved)]:
            reasons[i] = f"{values[i]!r} does not exist in {timezone} (DST change)"
    return out, reasons, ambiguous


def _utc_micros(times: Any, utc: bool = True) -> TimeArray:
    """datetime64[us] from pandas times: UTC ones without their zone; zoned ones when not utc
    (a zone name where only wall-clock times are expected) as NaT."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        if not utc:
            return np.full(len(index), _NAT)
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("us").to_numpy(copy=True)


def _not_a_time(value: str, fmt: str) -> str:
    shown = _short(value)
    if fmt == ISO:
        return f"{shown!r} is not an ISO 8601 time such as 2026-03-01T14:30:00+01:00"
    if fmt == POLISEN:
        return f"{shown!r} is not a polisen.se time such as 2023-03-25 9:43:15 +01:00"
    return f"{shown!r} does not match the time format {fmt!r}"


def _location(
    cols: dict[str, Column], plan: _Plan, errors: _Errors, geometry: ObjectArray | None
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
            errors.add(int(i), "geometry", f"not WKT: {_short(str(text[i]))!r}")
        return _points(shapes, errors)
    assert geometry is not None  # the plan chose the geometry only when the input has one
    return _points(shapely.from_wkb(geometry, on_invalid="ignore"), errors)


def _numbers(column: Column, name: str, decimal: str, errors: _Errors) -> FloatArray:
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
        errors.add(int(i), name, _not_a_number(str(column[i]), decimal))
    values[bad] = np.nan
    return values


def _replace(values: ObjectArray, old: str, new: str) -> ObjectArray:
    return pd.Series(values, dtype=object).str.replace(old, new, regex=False).to_numpy(object)


def _number_or_nan(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _not_a_number(value: str, decimal: str) -> str:
    try:
        float(value.replace(",", ".") if decimal == "," else value)
    except ValueError:
        hint = ""
        if decimal == "." and re.fullmatch(r"\s*[+-]?\d+,\d+\s*", value):
            hint = " (a decimal comma? add decimal: ',' to the mapping)"
        return f"not a number: {_short(value)!r}{hint}"
    return f"not a finite number: {_short(value)!r}"


def _lat_lon_text(text: ObjectArray, errors: _Errors) -> tuple[FloatArray, FloatArray]:
    """polisen.se's "lat,lon" strings as (lon, lat)."""
    parts = pd.Series(text, dtype=object).str.partition(",")
    lat_text = parts[0].str.strip().to_numpy(object, copy=True)
    lon_text = parts[2].str.strip().to_numpy(object, copy=True)
    no_comma = (text != "") & (parts[1].to_numpy(object) == "")
    for i in np.flatnonzero(no_comma):
        errors.add(int(i), "location", f"not 'lat,lon': {_short(str(text[i]))!r}")
    lat_text[no_comma] = ""
    lon_text[no_comma] = ""
    lat = _numbers(lat_text, "location", ".", errors)
    lon = _numbers(lon_text, "location", ".", errors)
    return lon, lat


def _points(shapes: ObjectArray, errors: _Errors) -> tuple[FloatArray, FloatArray]:
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


def _precision(cols: dict[str, Column], plan: _Plan, n: int) -> ObjectArray:
    spec = plan.mapping.precision
    if spec is None:
        return np.full(n, None, dtype=object)
    if spec.column is None:
        return np.full(n, spec.default, dtype=object)
    values = _none_if_empty(_text(cols[spec.column]))
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
        return _none_if_empty(texts[0])
    pieces = iter(texts)
    columns = [next(pieces) if is_column else itertools.repeat(t) for t, is_column in parts]
    out = np.array(list(map("".join, zip(*columns, strict=False))), dtype=object)  # repeat()s
    out[np.logical_and.reduce([t == "" for t in texts])] = None
    return out


def _short(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."


def _read_batch(
    converted: _Converted,
    plan: _Plan,
    opts: _Options,
    *,
    blank: int,
    rows_read: int,
    rows_total: int | None,
    bytes_read: int | None,
    bytes_total: int | None,
) -> ReadBatch:
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


# --- CSV ------------------------------------------------------------------------------------


class _ByteStream:
    """A file's content as UTF-8 blocks: gunzipped and transcoded as needed, BOM removed.

    A worker thread reads and gunzips the next block while the caller parses this one: zlib
    releases the GIL, so the two overlap on a second core.
    """

    def __init__(self, path: Path, encoding: str) -> None:
        self._file = path.open("rb")
        self.total = os.fstat(self._file.fileno()).st_size
        self._gzipped = self._file.read(2) == b"\x1f\x8b"
        self._file.seek(0)
        self._encoding = encoding
        self.position = 0  # bytes of the file (compressed, when it is) read so far
        self.blocks: Generator[bytes, None, None] = self._blocks()

    def __enter__(self) -> _ByteStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.blocks.close()  # stops the worker thread before the file closes under it
        self._file.close()

    def _blocks(self) -> Generator[bytes, None, None]:
        """Yield the content in blocks of at most BLOCK_BYTES (more when transcoded)."""
        decoder = None
        if self._encoding not in ("utf-8", "ascii"):
            decoder = codecs.getincrementaldecoder(self._encoding)()
        first = True
        for raw in _prefetched(self._raw_blocks()):
            block = raw if decoder is None else self._transcode(decoder, raw, final=not raw)
            if first and block:
                block = block.removeprefix(_BOM)
                first = False
            if block:
                yield block
            if not raw:
                return

    def _transcode(self, decoder: codecs.IncrementalDecoder, raw: bytes, final: bool) -> bytes:
        try:
            return decoder.decode(raw, final=final).encode("utf-8")
        except UnicodeDecodeError as e:
            raise ReadError(
                f"the file is not valid {self._encoding}: {e.reason} "
                "(set encoding in the mapping to the file's encoding)"
            ) from None

    def _raw_blocks(self) -> Iterator[bytes]:
        """The file's bytes, gunzipped; an empty block at the end."""
        if not self._gzipped:
            while block := self._file.read(BLOCK_BYTES):
                self.position += len(block)
                yield block
            yield b""
            return
        inflate = zlib.decompressobj(wbits=31)
        member_open = False
        try:
            while chunk := self._file.read(GZIP_INPUT_BYTES):
                self.position += len(chunk)
                while chunk:
                    member_open = True
                    if block := inflate.decompress(chunk, BLOCK_BYTES):
                        yield block
                    if inflate.eof:  # one gzip member ends; another may follow (cat a.gz b.gz)
                        chunk = inflate.unused_data
                        inflate = zlib.decompressobj(wbits=31)
                        member_open = False
                    else:
                        chunk = inflate.unconsumed_tail
            if member_open:
                if rest := inflate.flush():
                    yield rest
                if not inflate.eof:
                    raise ReadError("the gzip file is cut short")
        except zlib.error as e:
            raise ReadError(f"the gzip file is damaged: {e}") from None
        yield b""


def _prefetched(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Yield the blocks while a worker thread produces the next one."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(next, blocks, None)
        while (block := pending.result()) is not None:
            pending = worker.submit(next, blocks, None)
            yield block


def _first_record_end(data: bytes) -> int:
    """The offset of the newline that ends the first record, -1 if there is none yet."""
    arr = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    quotes = np.flatnonzero(arr == _QUOTE)
    outside = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    return int(outside[0]) if outside.size else -1


def _header(blocks: Iterator[bytes], delimiter: str | None) -> tuple[list[str], str, bytes]:
    """Read the header record: column names, the delimiter (sniffed) and the bytes after it."""
    data = b""
    end = -1
    while end < 0:
        block = next(blocks, None)
        if block is None:
            break
        data += block
        end = _first_record_end(data)
        if end < 0 and len(data) > MAX_RECORD_BYTES:
            raise ReadError("the header line does not end within 1 MiB: is this a CSV file?")
    line, rest = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
    try:
        text = line.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        raise ReadError(
            "the header line is not UTF-8: set encoding in the mapping (cp1252 for a file "
            "saved by Excel on Windows, latin-1 for older systems)"
        ) from None
    if not text.strip():
        raise ReadError("the first line is empty: it must name the columns")
    if delimiter is None:
        widths = {d: len(next(csv.reader([text], delimiter=d))) for d in ",;"}
        delimiter = max(widths, key=lambda d: (widths[d], d == ","))
    names = [name.strip() for name in next(csv.reader([text], delimiter=delimiter))]
    return names, delimiter, rest


@dataclass
class _Records:
    """Complete CSV records: their bytes, where each ends and how many fields each has.

    `fields` is 0 for a record whose quoted field never closes (the end of the file came
    first); `python` says the records were cut by Python's csv module (quotes that numpy's
    parity rule cannot follow), so they are parsed by it too.
    """

    data: bytes
    ends: IntArray
    fields: IntArray
    blank: BoolArray
    python: bool
    row: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.ends.size)

    @property
    def starts(self) -> IntArray:
        """Where each record starts."""
        return np.concatenate([np.zeros(1, dtype=np.int64), self.ends[:-1]])

    def split(self, k: int) -> tuple[_Records, _Records]:
        """The first k records and the rest."""
        cut = int(self.ends[k - 1])
        head = _Records(
            self.data[:cut], self.ends[:k], self.fields[:k], self.blank[:k], self.python
        )
        tail = _Records(
            self.data[cut:], self.ends[k:] - cut, self.fields[k:], self.blank[k:], self.python
        )
        head.row, tail.row = self.row[:k], self.row[k:]
        return head, tail

    @staticmethod
    def join(parts: list[_Records]) -> _Records:
        """Records one after the other."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [len(p.data) for p in parts[:-1]])
        joined = _Records(
            b"".join(p.data for p in parts),
            np.concatenate([p.ends + o for p, o in zip(parts, offsets, strict=True)]),
            np.concatenate([p.fields for p in parts]),
            np.concatenate([p.blank for p in parts]),
            any(p.python for p in parts),
        )
        joined.row = np.concatenate([p.row for p in parts])
        return joined


def _no_records(python: bool = False) -> _Records:
    empty = np.zeros(0, dtype=np.int64)
    return _Records(b"", empty, empty, np.zeros(0, dtype=bool), python)


def _cut(data: bytes, delimiter: str, final: bool) -> _Records:
    """The complete records at the start of data (all of it when final and well quoted)."""
    arr = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(arr == _NEWLINE)
    if newlines.size == 0:
        return _no_records()
    quotes = np.flatnonzero(arr[: newlines[-1]] == _QUOTE)
    delim = ord(delimiter)
    if quotes.size and not _regular_quotes(arr, quotes, delim):
        return _cut_python(data, delimiter, final)
    # A newline ends a record only outside quotes: after an even number of quote characters.
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0].astype(np.int64) + 1
    if ends.size == 0:
        return _no_records()
    size = int(ends[-1])
    quotes = quotes[quotes < size]
    starts = np.concatenate([np.zeros(1, dtype=np.int64), ends[:-1]])
    delims = np.flatnonzero(arr[:size] == delim)
    count = np.diff(np.searchsorted(delims, ends), prepend=0).astype(np.int64)
    if quotes.size:
        opens, closes = quotes[0::2], quotes[1::2]
        quoted = np.searchsorted(delims, closes) - np.searchsorted(delims, opens)
        record = np.searchsorted(ends, opens, side="right")
        count -= np.bincount(record, weights=quoted, minlength=ends.size).astype(np.int64)
    crlf = (ends - 2 >= starts) & (arr[np.maximum(ends - 2, 0)] == _CR)
    content = ends - 1 - starts - crlf
    # Nothing but delimiters (";;;;" from a spreadsheet) or an empty line.
    blank = content == count
    return _Records(data[:size], ends, count + 1, blank, python=False)


def _regular_quotes(arr: npt.NDArray[np.uint8], quotes: npt.NDArray[np.intp], delim: int) -> bool:
    """Whether every quote opens a field, closes one or is doubled (then parity is exact).

    The quotes given all come before a newline, so a last opening quote may stay unpaired (its
    field goes on in the next block).
    """
    opens, closes = quotes[0::2], quotes[1::2]
    before = arr[np.maximum(opens - 1, 0)]
    after = arr[closes + 1]
    previous_close = np.concatenate([[-2], closes])[: opens.size]
    next_open = np.concatenate([opens[1:], [-1]])[: closes.size]
    escaped = opens == previous_close + 1  # the second quote of a doubled ""
    opens_ok = (opens == 0) | (before == delim) | (before == _NEWLINE) | escaped
    closes_ok = (after == delim) | (after == _NEWLINE) | (after == _CR) | (closes + 1 == next_open)
    return bool(opens_ok.all() and closes_ok.all())


def _lines(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    lines = [p + b"\n" for p in pieces[:-1]]
    return [*lines, pieces[-1]] if pieces[-1] else lines


def _cut_python(data: bytes, delimiter: str, final: bool) -> _Records:
    """Cut records with Python's csv module, which follows stray quotes as pandas does."""
    lines = _lines(data)
    offsets = np.cumsum([0] + [len(line) for line in lines])
    consumed = 0

    def feed() -> Iterator[str]:
        nonlocal consumed
        for line in lines:
            consumed += 1
            yield line.decode("utf-8", "surrogateescape")

    ends: list[int] = []
    fields: list[int] = []
    blank: list[bool] = []
    try:
        for record in csv.reader(feed(), delimiter=delimiter, strict=False):
            ends.append(int(offsets[consumed]))
            fields.append(len(record))
            blank.append(not any(record))
    except csv.Error as e:
        raise ReadError(f"the CSV cannot be read after byte {offsets[consumed - 1]}: {e}") from None
    if not final and ends:
        # The last record may go on in the next block: cut it again from there.
        ends, fields, blank = ends[:-1], fields[:-1], blank[:-1]
    if not ends:
        return _no_records(python=True)
    size = ends[-1]
    return _Records(
        data[:size],
        np.array(ends, dtype=np.int64),
        np.array(fields, dtype=np.int64),
        np.array(blank, dtype=bool),
        python=True,
    )


@dataclass(frozen=True)
class _CsvLayout:
    """The header and which of its columns the plan reads (and which as numbers)."""

    names: list[str]
    delimiter: str
    used: list[tuple[str, int]]
    numeric: frozenset[int]
    decimal: str


def _csv_layout(names: list[str], delimiter: str, plan: _Plan) -> _CsvLayout:
    used = []
    for name in plan.columns():
        at = [i for i, n in enumerate(names) if n == name]
        if len(at) > 1:
            raise ReadError(f"the column {name!r} appears {len(at)} times in the header")
        used.append((name, at[0]))
    numeric = frozenset(i for name, i in used if name in plan.coordinate_columns)
    decimal = plan.mapping.decimal
    if decimal == delimiter:
        raise ReadError(f"the delimiter is {delimiter!r}, so the decimal mark cannot be too")
    return _CsvLayout(names, delimiter, used, numeric, decimal)


def _read_csv(path: Path, mapping: Mapping, opts: _Options, batch_size: int) -> Iterator[ReadBatch]:
    with _ByteStream(path, mapping.encoding) as stream:
        blocks = stream.blocks
        names, delimiter, tail = _header(blocks, mapping.delimiter)
        plan = _plan(mapping, names, opts)
        layout = _csv_layout(names, delimiter, plan)
        pending: list[_Records] = []
        waiting = 0
        next_row = 1
        final = False
        while not final:
            block = next(blocks, None)
            final = block is None
            data = tail + block if block is not None else tail
            if final and data and not data.endswith(b"\n"):
                data += b"\n"
            records = _cut(data, delimiter, final)
            tail = data[len(records.data) :]
            if final and tail:
                unclosed = _Records(
                    tail, np.array([len(tail)]), np.zeros(1, np.int64), np.zeros(1, bool), False
                )
                records = _Records.join([records, unclosed]) if len(records) else unclosed
                tail = b""
            elif len(tail) > MAX_RECORD_BYTES:
                raise ReadError(
                    f"row {next_row + len(records)} does not end within 1 MiB: a quoted field "
                    'is probably not closed (check the " characters in that row)'
                )
            records.row = np.arange(next_row, next_row + len(records), dtype=np.int64)
            next_row += len(records)
            if len(records):
                pending.append(records)
                waiting += len(records)
            while waiting >= batch_size or (final and waiting):
                batch = _take(pending, min(batch_size, waiting))
                waiting -= len(batch)
                converted, blank = _csv_batch(batch, layout, plan)
                yield _read_batch(
                    converted,
                    plan,
                    opts,
                    blank=blank,
                    rows_read=int(batch.row[-1]),
                    rows_total=None,
                    bytes_read=stream.position,
                    bytes_total=stream.total,
                )


def _take(pending: list[_Records], n: int) -> _Records:
    """Remove the first n records from the pending pieces and return them as one."""
    out: list[_Records] = []
    while n > 0:
        first = pending[0]
        if len(first) <= n:
            out.append(pending.pop(0))
            n -= len(first)
        else:
            head, pending[0] = first.split(n)
            out.append(head)
            n = 0
    return _Records.join(out)


def _csv_batch(records: _Records, layout: _CsvLayout, plan: _Plan) -> tuple[_Converted, int]:
    """Parse one batch of records: malformed ones become row errors, blank ones are skipped."""
    keep = ~records.blank
    ncols = len(layout.names)
    starts, ends = records.starts, records.ends
    nul = np.zeros(len(records), dtype=bool)
    if b"\x00" in records.data:
        at = np.flatnonzero(np.frombuffer(records.data, np.uint8) == 0)
        nul[np.searchsorted(ends, at, side="right")] = True
    wrong = keep & (records.fields != ncols)
    bad = wrong | (keep & nul)
    good = keep & ~bad
    errors = _Errors()
    position = np.cumsum(keep) - 1
    for i in np.flatnonzero(bad):
        errors.add(int(position[i]), "record", _malformed(int(records.fields[i]), ncols, nul[i]))
    if good.all():
        data = records.data
    else:
        view = memoryview(records.data)
        data = b"".join(view[s:e] for s, e in zip(starts[good], ends[good], strict=True))
    count = int(good.sum())
    parsed = _parse_records(data, count, layout, records.python)
    if bad.any():
        parsed = {name: _spread(values, good[keep]) for name, values in parsed.items()}
    converted = _convert(parsed, records.row[keep], plan, errors)
    return converted, int(records.blank.sum())


def _malformed(fields: int, expected: int, nul: bool) -> str:
    if nul:
        return "contains a NUL byte: is the file UTF-16? save it as UTF-8"
    if fields == 0:
        return 'a quoted field is not closed (a " is missing): the rest of the file is in this row'
    if fields > expected:
        return (
            f"has {fields} fields where the header has {expected} (a delimiter inside a value "
            "that is not in quotes?)"
        )
    return (
        f"has {fields} {'field' if fields == 1 else 'fields'} where the header has {expected} "
        "(a line break inside a value that is not in quotes, or a cut line?)"
    )


def _spread(values: Column, at: BoolArray) -> Column:
    """Values of the good rows placed among placeholder rows (empty text, NaN)."""
    out: Column
    if values.dtype.kind == "f":
        out = np.full(at.size, np.nan)
    else:
        out = np.full(at.size, "", dtype=object)
    out[at] = values
    return out


def _parse_records(data: bytes, count: int, layout: _CsvLayout, python: bool) -> dict[str, Column]:
    """The used columns of well-formed records: pandas' C parser, or the csv module."""
    if count and not python:
        parsed = _parse_with_pandas(data, layout, layout.numeric)
        if parsed is None and layout.numeric:
            parsed = _parse_with_pandas(data, layout, frozenset())
        if parsed is not None and all(v.size == count for v in parsed.values()):
            return parsed
    return _parse_with_csv(data, count, layout)


def _parse_with_pandas(
    data: bytes, layout: _CsvLayout, numeric: frozenset[int]
) -> dict[str, Column] | None:
    """None when a number column holds text (then read it as text to name the rows)."""
    used = [i for _, i in layout.used]
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=layout.delimiter,
            header=None,
            names=list(range(len(layout.names))),
            usecols=used,
            dtype={i: np.float64 if i in numeric else str for i in used},
            na_values={i: ["", "\r"] for i in numeric},
            keep_default_na=False,
            index_col=False,
            lineterminator="\n",
            quotechar='"',
            decimal=layout.decimal,
            encoding="utf-8",
            engine="c",
        )
    except UnicodeDecodeError as e:
        raise _not_utf8(data, e) from None
    except ValueError:  # text in a number column, or a record pandas splits otherwise than we do
        return None
    last = len(layout.names) - 1
    out: dict[str, Column] = {}
    for name, i in layout.used:
        series = frame[i]
        if i in numeric:
            out[name] = series.to_numpy(np.float64)
            continue
        if i == last and b"\r" in data:
            # lineterminator="\n" keeps a CRLF file's "\r" at the end of the last field.
            series = series.str.removesuffix("\r")
        out[name] = series.to_numpy(object)  # no NA: keep_default_na=False reads "" as ""
    return out


def _parse_with_csv(data: bytes, count: int, layout: _CsvLayout) -> dict[str, Column]:
    try:
        lines = [line.decode("utf-8") for line in _lines(data)]
    except UnicodeDecodeError as e:
        raise _not_utf8(data, e) from None
    try:
        rows = list(csv.reader(lines, delimiter=layout.delimiter, strict=False))
    except csv.Error as e:
        raise ReadError(f"the CSV cannot be read: {e}") from None
    if len(rows) != count:
        raise ReadError(f"the CSV cannot be cut into rows consistently ({len(rows)} ≠ {count})")
    return {
        name: np.array([r[i] if i < len(r) else "" for r in rows], dtype=object)
        for name, i in layout.used
    }


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> ReadError:
    try:
        data.decode("utf-8")
        where = ""
    except UnicodeDecodeError as e:
        where = f" (near {data[max(e.start - 20, 0) : e.start + 1]!r})"
    return ReadError(
        f"the file is not valid UTF-8{where}: set encoding in the mapping (cp1252 for a file "
        f"saved by Excel on Windows, latin-1 for older systems); {error.reason}"
    )


# --- GeoJSON and GeoPackage -----------------------------------------------------------------


def _read_ogr(
    path: Path, mapping: Mapping, fmt: Format, opts: _Options, batch_size: int
) -> Iterator[ReadBatch]:
    # DATE_AS_STRING keeps GeoJSON times as written (GDAL would otherwise parse some itself).
    open_options: dict[str, Any] = {"DATE_AS_STRING": "YES"} if fmt == "geojson" else {}
    layer = _layer(path, mapping, fmt)
    try:
        info = pyogrio.read_info(path, layer=layer, **open_options)
    except pyogrio.errors.DataSourceError as e:
        raise ReadError(f"cannot read {path.name} as {fmt}: {e}") from None
    if fmt == "geojson":
        _refuse_crs_member(path, info.get("crs"))
    names = [str(f) for f in info["fields"]]
    plan = _plan(
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
        meta, _, geometry, data = ogr_raw.read(
            path,
            layer=layer,
            columns=columns,
            read_geometry=read_geometry,
            skip_features=start,
            max_features=batch_size,
            datetime_as_string=True,
            **open_options,
        )
        n = len(data[0]) if data else 0
        if n == 0:
            break
        fields = zip(meta["fields"], data, strict=True)
        cols = {str(name): _ogr_column(values) for name, values in fields}
        row = np.arange(start + 1, start + n + 1, dtype=np.int64)
        converted = _convert(cols, row, plan, _Errors(), geometry if read_geometry else None)
        start += n
        yield _read_batch(
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


def _layer(path: Path, mapping: Mapping, fmt: Format) -> str | None:
    if fmt != "gpkg":
        return None
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as e:
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


# --- JSON: the polisen.se file and REST bodies ----------------------------------------------


def _read_json_file(
    path: Path, mapping: Mapping, opts: _Options, batch_size: int
) -> Iterator[ReadBatch]:
    # The polisen.se API answers with at most a few tens of MB: read whole, cut into batches.
    with path.open("rb") as f:
        content = f.read()
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    try:
        objs = orjson.loads(content)
    except orjson.JSONDecodeError as e:
        raise ReadError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(objs, list):
        raise ReadError(f"{path.name} must hold a JSON array of objects")
    flat = [_flatten(o) if isinstance(o, dict) else None for o in objs]
    names = sorted({k for f in flat if f is not None for k in f})
    plan = _plan(mapping, names, opts)
    columns = plan.columns()
    for start in range(0, len(flat), batch_size):
        part = flat[start : start + batch_size]
        errors = _Errors()
        cols = _json_columns(part, columns, errors)
        row = np.arange(start + 1, start + len(part) + 1, dtype=np.int64)
        yield _read_batch(
            _convert(cols, row, plan, errors),
            plan,
            opts,
            blank=0,
            rows_read=start + len(part),
            rows_total=len(flat),
            bytes_read=None,
            bytes_total=None,
        )


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted keys: {"location": {"gps": ...}} → "location.gps"."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _json_columns(
    objs: list[dict[str, Any] | None], columns: list[str], errors: _Errors
) -> dict[str, Column]:
    """Text columns from JSON objects; values that are not text or numbers are row errors."""
    cols: dict[str, Column] = {c: np.full(len(objs), "", dtype=object) for c in columns}
    for i, obj in enumerate(objs):
        if obj is None:
            errors.add(i, "record", "is not a JSON object")
            continue
        for name in columns:
            value = obj.get(name)
            if value is None:
                continue
            text, problem = _json_text(value)
            if problem is not None:
                errors.add(i, name, problem)
            else:
                cols[name][i] = text
    return cols


def _json_text(value: Any) -> tuple[str, str | None]:
    """A JSON value as text, or why it cannot be one."""
    if isinstance(value, str):
        return value, _bad_text(value)
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        return repr(value), None
    return "", f"is {'a list' if isinstance(value, list) else 'an object'}, not a value"


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None


def read_records(
    objs: Sequence[Any], /, mapping: Mapping | None = None, *, taxonomy: Taxonomy | None = None
) -> RawBatch:
    """A JSON body (a list of objects with our field names, or a mapping's) as a RawBatch."""
    if mapping is not None:
        return _records_with_mapping(objs, mapping, taxonomy or _shipped_taxonomy())
    n = len(objs)
    errors = _Errors()
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
                problem = _bad_text(value)
                if problem is not None:
                    errors.add(i, key, problem)
                else:
                    text[key][i] = value
            elif key == "external_id" and isinstance(value, int) and not isinstance(value, bool):
                text[key][i] = str(value)
            else:
                errors.add(i, key, "must be a string")
    times = {}
    for name in ("occurred_from", "occurred_to"):
        times[name], reasons, _ = _parse_times(text[name], ISO, None, NO_ZONE_BODY)
        for k in np.flatnonzero(reasons != None):  # noqa: E711 (elementwise)
            errors.add(int(k), name, str(reasons[k]))
    x, y, crs = _record_locations(text, numbers, errors)
    return RawBatch(
        row=np.arange(1, n + 1, dtype=np.int64),
        external_id=_none_if_empty(text["external_id"]),
        category=_none_if_empty(text["category"]),
        occurred_from=times["occurred_from"],
        occurred_to=times["occurred_to"],
        x=x,
        y=y,
        crs=crs,
        location_precision=_none_if_empty(text["location_precision"]),
        description=_none_if_empty(text["description"]),
        errors=errors.rows(np.arange(1, n + 1, dtype=np.int64), np.ones(n, dtype=bool)),
        source=_none_if_empty(text["source"]),
    )


@functools.cache
def _unknown_field(key: str) -> str:
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
            return np.nan, f"not a number: {_short(value)!r}"
    else:
        try:
            number = float(value)
        except OverflowError:
            return np.nan, "not a finite number"
    if not np.isfinite(number):
        return np.nan, "not a finite number"
    return number, None


def _record_locations(
    text: dict[str, ObjectArray], numbers: dict[str, FloatArray], errors: _Errors
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
                errors.add(i, "crs", f"unknown CRS {_short(given)!r}")
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
    if value not in seen:
        try:
            found = CRS.from_user_input(value)
            epsg = found.to_epsg()
            seen[value] = f"EPSG:{epsg}" if epsg is not None else found.to_string()
        except CRSError:
            seen[value] = None
    return seen[value]


def _records_with_mapping(objs: Sequence[Any], mapping: Mapping, taxonomy: Taxonomy) -> RawBatch:
    opts = _Options(None, None, None, taxonomy, NO_ZONE_BODY)
    flat = [_flatten(o) if isinstance(o, dict) else None for o in objs]
    names = sorted({k for f in flat if f is not None for k in f})
    plan = _plan(mapping, names, opts)
    errors = _Errors()
    cols = _json_columns(flat, plan.columns(), errors)
    converted = _convert(cols, np.arange(1, len(objs) + 1, dtype=np.int64), plan, errors)
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

"""What a read is asked for and what it gives back: options, the plan of one input, batches.

The plan is a mapping resolved against the columns of one input: which location alternative
is used, its CRS, the time zone and the category map, with every mapped column checked to
exist. ReadError, ReadBatch and ReadTotals, the array types and `short` are shared by the
other reader modules, which all import this one.
"""

from __future__ import annotations

import difflib
import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.errors import InvalidInput
from app.core.taxonomy import Taxonomy, load_taxonomy
from app.ingest.batch import RawBatch
from app.ingest.mapping import (
    POLISEN,
    Format,
    LocationSpec,
    Mapping,
    MappingError,
    check_timezone,
)
from app.ingest.readers.ids import DerivedIds
from geo.crs import CrsError, parse_crs

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
Column = npt.NDArray[Any]  # text (object, "" when empty) or numbers (float64, NaN when empty)

DEFAULT_BATCH_SIZE = 50_000
NO_ZONE_FILE = "no time zone: give --timezone or an offset"
NO_ZONE_BODY = "needs a time zone offset"


class ReadError(InvalidInput, ValueError):
    """An input that cannot be read at all; the message says what to change."""


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
    """The repeated-hour and blank-row counts in words."""
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
class Options:
    """What the caller decides over the mapping (the CLI's --source, --timezone, --crs)."""

    source: str | None
    timezone: str | None
    crs: str | None
    taxonomy: Taxonomy
    no_zone: str
    default_timezone: str | None = None  # when neither the caller nor the mapping names one


@functools.cache
def shipped_taxonomy() -> Taxonomy:
    """The taxonomy of data/categories.yaml, loaded once."""
    return load_taxonomy()


def zone_name(value: str) -> str:
    """A --timezone override if it is a known zone, else a ReadError."""
    try:
        return check_timezone(value)
    except ValueError as e:
        raise ReadError(str(e)) from None


def crs_name(value: str) -> str:
    """A --crs override as given if it is a known CRS, else a ReadError."""
    try:
        parse_crs(value)
    except CrsError as e:
        raise ReadError(str(e)) from None
    return value


def check_options(mapping: Mapping, fmt: Format) -> None:
    """Refuse mapping options that do not apply to the format (a layer for a CSV...)."""
    given = mapping.model_fields_set
    csv_options = sorted(given & {"delimiter", "encoding", "decimal"})
    if fmt != "csv" and csv_options:
        raise MappingError(f"{', '.join(csv_options)}: for CSV files only, and this is {fmt}")
    if fmt != "gpkg" and "layer" in given:
        raise MappingError(f"layer: for GeoPackage files only, and this is {fmt}")


@dataclass(frozen=True)
class Plan:
    """A mapping resolved against one input: the location used, its CRS, zone and categories."""

    mapping: Mapping
    location: LocationSpec
    crs: str
    timezone: str | None
    categories: dict[str, str | None] | None
    polisen: bool
    no_zone: str
    derived_ids: DerivedIds | None = None  # for rows without an id, when the mapping says so

    @property
    def coordinate_columns(self) -> list[str]:
        """Columns read only as numbers (x/y or lon/lat), which a CSV can parse as floats."""
        return _coordinate_columns(self.mapping, self.location)

    def columns(self) -> list[str]:
        """The columns this plan reads."""
        return list(dict.fromkeys(self.mapping.field_columns() + self.location.columns))


def plan_for(
    mapping: Mapping,
    columns: Sequence[str],
    opts: Options,
    *,
    file_crs: str | None = None,
    has_geometry: bool = False,
    default_geometry_crs: str | None = None,
) -> Plan:
    """Choose the location alternative whose columns exist and check every other column."""
    present = set(columns)
    location = _location(mapping, columns, has_geometry)
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
    return Plan(
        mapping=mapping,
        location=location,
        crs=crs,
        timezone=opts.timezone or mapping.time.timezone or opts.default_timezone,
        categories=_categories(mapping, opts.taxonomy),
        polisen=mapping.category.map == POLISEN,
        no_zone=opts.no_zone,
        derived_ids=_derived_ids(mapping, location),
    )


def _coordinate_columns(mapping: Mapping, location: LocationSpec) -> list[str]:
    """The x/y or lon/lat columns that nothing else reads."""
    if location.kind not in ("xy", "lonlat"):
        return []
    others = set(mapping.field_columns())
    return [c for c in location.columns if c not in others]


def _derived_ids(mapping: Mapping, location: LocationSpec) -> DerivedIds | None:
    """What derives the ids of rows without one: their mapped columns but the id and the
    coordinates (which count as parsed numbers)."""
    if not mapping.id.derive:
        return None
    skipped = set(mapping.id.columns) | set(_coordinate_columns(mapping, location))
    names = dict.fromkeys(mapping.field_columns() + location.columns)
    return DerivedIds(sorted(c for c in names if c not in skipped))


def _location(mapping: Mapping, columns: Sequence[str], has_geometry: bool) -> LocationSpec:
    """The first location alternative the input has, else a ReadError naming them all."""
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
        # A geometry is worth naming only when it is the one way the mapping gives.
        named = [loc for loc in mapping.location if loc.kind != "geometry"] or mapping.location
        wanted = " or ".join(
            "geometry (only GeoJSON and GeoPackage have one: give x/y, lon/lat, wkt or "
            "latlon under location)"
            if loc.kind == "geometry"
            else "columns " + " and ".join(repr(c) for c in loc.columns)
            for loc in named
        )
        raise ReadError(f"no location: the input has no {wanted}; {_columns_note(columns)}")
    return location


def _categories(mapping: Mapping, taxonomy: Taxonomy) -> dict[str, str | None] | None:
    """The category map (the taxonomy's for polisen), its codes checked against the taxonomy."""
    categories: dict[str, str | None] | None = None
    spec = mapping.category
    if spec.map == POLISEN:
        categories = {}
        for key, code in taxonomy.polisen.items():
            categories.setdefault(key.strip(), code)
    elif isinstance(spec.map, dict):
        categories = dict(spec.map)
    origin = mapping.origin
    if isinstance(spec.map, dict):
        said = {f"{value!r} maps to {code!r}": code for value, code in spec.map.items()}
        _known_codes(origin, "category.map", said, taxonomy)
    if spec.has_default:
        _known_codes(origin, "category", {f"default {spec.default!r}": spec.default}, taxonomy)
    for n, rule in enumerate(spec.when):
        said = {f"category {rule.category!r}": rule.category}
        said |= {f"for {code!r}": code for code in rule.only_for or []}
        _known_codes(origin, f"category.when[{n}]", said, taxonomy)
    return categories


def _known_codes(origin: str, where: str, said: dict[str, str | None], taxonomy: Taxonomy) -> None:
    """Refuse category codes the taxonomy does not have, naming the mapping file and, for the
    map, the source values that map to them (`said`: how each code is written, to its code)."""
    unknown = [
        text for text, code in said.items() if code is not None and code not in taxonomy.by_code
    ]
    if unknown:
        codes = "not a category code" if len(unknown) == 1 else "not category codes"
        raise MappingError(
            f"{origin}: {where}: {'; '.join(unknown)}: {codes} of the taxonomy "
            "(data/categories.yaml)"
        )


def _columns_note(columns: Sequence[str], name: str | None = None) -> str:
    """The input's columns (the first 40), with the closest to a missing name first."""
    guess = difflib.get_close_matches(name, list(columns), n=1) if name else []
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    shown = ", ".join(repr(c) for c in list(columns)[:40])
    more = ", ..." if len(columns) > 40 else ""
    return f"{hint}its columns are {shown}{more}"


def short(value: str) -> str:
    """A value cut to 60 characters for a message."""
    return value if len(value) <= 60 else value[:57] + "..."

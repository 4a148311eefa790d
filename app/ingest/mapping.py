"""Mapping files: which column of an agency's export is which incident field, in YAML.

A mapping lets any export be read without code: the CSV of a kommun's reporting app, the
polisen.se archive, a GeoPackage from a GIS, the Chicago data portal. data/mappings/README.md
documents the format for the people who write them; the presets live next to it.
"""

from __future__ import annotations

import codecs
import difflib
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.core import MAPPINGS_DIR, preset_names
from app.core.errors import InvalidInput
from app.core.taxonomy import _UniqueKeyLoader  # the taxonomy's loader: a duplicate key is an error
from app.core.vocabulary import PRECISIONS
from geo.crs import CrsError, parse_crs

Format = Literal["csv", "geojson", "gpkg", "polisen-json"]

ISO = "iso"
POLISEN = "polisen"
_SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".txt": "csv",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class MappingError(InvalidInput, ValueError):
    """A mapping that cannot be used; the message names the key and says what to write."""


class _Model(BaseModel):
    """A part of a mapping: unknown keys are an error (a typo must not be ignored)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )


class _Column(_Model):
    """A part of a mapping that a column name alone may stand for (`time: Datum`)."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value


class TimeOfDay(_Column):
    """A second column with the time of day of a date column: iso (13, 13:30, 13:30:15) or a
    strptime pattern of hours, minutes and seconds such as %H%M."""

    column: str = Field(min_length=1)
    format: str = ISO

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return check_time_of_day_format(value)


class TimeColumn(_Model):
    """One time column and how its text is written: iso, polisen or a strptime pattern; with
    `time_of_day`, the column holds the date and another column the time of day."""

    column: str = Field(min_length=1)
    format: str = ISO
    time_of_day: TimeOfDay | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return check_time_format(value)


class TimeSpec(_Column):
    """When it happened: one column, or `from` and optionally `to`; the zone for naive times."""

    column: str | None = Field(default=None, min_length=1)
    format: str = ISO
    time_of_day: TimeOfDay | None = None
    from_: TimeColumn | None = Field(default=None, alias="from")
    to: TimeColumn | None = None
    timezone: str | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return check_time_format(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @model_validator(mode="after")
    def _one_way(self) -> TimeSpec:
        if (self.column is None) == (self.from_ is None):
            raise ValueError("give either column (and format) or from (and optionally to)")
        if self.to is not None and self.from_ is None:
            raise ValueError("'to' needs 'from'")
        for key in ("format", "time_of_day"):
            if self.from_ is not None and key in self.model_fields_set:
                raise ValueError(f"with from/to, give each its own {key}")
        return self

    @property
    def start(self) -> TimeColumn:
        """The column of occurred_from."""
        if self.from_ is not None:
            return self.from_
        assert self.column is not None  # the validator guarantees one of the two
        return TimeColumn(column=self.column, format=self.format, time_of_day=self.time_of_day)

    @property
    def end(self) -> TimeColumn | None:
        """The column of occurred_to, if the data has one."""
        return self.to


class IdSpec(_Model):
    """Each record's identifier: a column, or columns joined with ':'; with `derive`, rows
    without one (every row, when no column is named) get one derived from their content."""

    columns: list[str] = Field(default_factory=list, alias="column")
    derive: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None:
            raise ValueError(
                "write id: {derive: true} when the file has no identifier (null is not a column)"
            )
        return {"column": value} if isinstance(value, str | list) else value

    @field_validator("columns", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("columns")
    @classmethod
    def _named(cls, value: list[str]) -> list[str]:
        if any(not name for name in value):
            raise ValueError("a column name cannot be empty")
        return value

    @model_validator(mode="after")
    def _something(self) -> IdSpec:
        if not self.columns and not self.derive:
            raise ValueError(
                "name the id column (or columns), or write derive: true when the file has none"
            )
        return self


class CategoryRule(_Model):
    """A second column that changes the category of some rows, e.g. a "domestic" flag.

    The rule applies to rows whose `column` holds one of the values in `is` (compared without
    surrounding spaces and case) and, when `for` is given, whose category from the map is one
    of those codes or below one of them; it sets `category`. The first rule that applies wins.
    """

    column: str = Field(min_length=1)
    values: list[str] = Field(alias="is", min_length=1)
    category: str = Field(min_length=1)
    only_for: list[str] | None = Field(default=None, alias="for", min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        if any(item is None for item in items):
            raise ValueError("an empty value cannot be matched; give the text the column holds")
        # YAML reads true/false/yes/no without quotes as booleans: take them as written.
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in items]

    @field_validator("only_for", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class CategorySpec(_Column):
    """The category column, how its values become taxonomy codes, and rules on other columns."""

    column: str = Field(min_length=1)
    map: dict[str, str | None] | Literal["polisen"] | None = None
    default: str | None = None
    when: list[CategoryRule] = Field(default_factory=list)

    @field_validator("map", mode="before")
    @classmethod
    def _value_map(cls, value: Any) -> Any:
        if value is None or value == POLISEN:
            return value
        if not isinstance(value, dict):
            raise ValueError("must be polisen or a mapping from values to category codes")
        out: dict[str, str | None] = {}
        for key, code in value.items():
            if isinstance(key, bool) or key is None:
                raise ValueError(
                    f"the key {key!r} is how YAML reads yes/no/true/false/null without quotes: "
                    "put the value in quotes"
                )
            if code is not None and not isinstance(code, str):
                raise ValueError(f"{key!r} maps to {code!r}: give a category code or null")
            text = str(key).strip()  # values are compared stripped, so keys are too
            if text in out and out[text] != code:
                raise ValueError(f"{text!r} is mapped twice, to {out[text]!r} and to {code!r}")
            out[text] = code
        return out

    @model_validator(mode="after")
    def _default_needs_map(self) -> CategorySpec:
        if "default" in self.model_fields_set and self.map is None:
            raise ValueError("'default' only applies together with 'map'")
        return self

    @property
    def has_default(self) -> bool:
        """Whether values missing from the map have a fallback (a code, or null = skip them)."""
        return "default" in self.model_fields_set


LocationKind = Literal["xy", "lonlat", "wkt", "latlon", "geometry"]


class LocationSpec(_Model):
    """Where it happened: x/y, lon/lat, a WKT column, a "lat,lon" column or the geometry."""

    x: str | None = None
    y: str | None = None
    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None
    latlon: str | None = None
    crs: str | None = None

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        return None if value is None else check_crs(value)

    @model_validator(mode="after")
    def _one_kind(self) -> LocationSpec:
        pairs = {"x": self.x, "y": self.y, "lon": self.lon, "lat": self.lat}
        for a, b in (("x", "y"), ("lon", "lat")):
            if (pairs[a] is None) != (pairs[b] is None):
                raise ValueError(f"give both {a} and {b}")
        given = [k for k in ("x", "lon", "wkt", "latlon") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                "give one of x/y, lon/lat, wkt or latlon (or none of them to use the geometry "
                "of a GeoJSON or GeoPackage)"
            )
        return self

    @property
    def kind(self) -> LocationKind:
        """Which of the ways of giving a location this is."""
        if self.x is not None:
            return "xy"
        if self.lon is not None:
            return "lonlat"
        if self.wkt is not None:
            return "wkt"
        if self.latlon is not None:
            return "latlon"
        return "geometry"

    @property
    def columns(self) -> list[str]:
        """The columns this location reads (none for the geometry)."""
        names = (self.x, self.y, self.lon, self.lat, self.wkt, self.latlon)
        return [c for c in names if c is not None]


class PrecisionSpec(_Model):
    """location_precision: a column, a constant (`default` alone), or a column with a default."""

    column: str | None = Field(default=None, min_length=1)
    default: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"default": value} if isinstance(value, str) else value

    @field_validator("default")
    @classmethod
    def _known_precision(cls, value: str | None) -> str | None:
        if value is not None and value not in PRECISIONS:
            raise ValueError(f"{value!r} is not one of {', '.join(PRECISIONS)}")
        return value

    @model_validator(mode="after")
    def _something(self) -> PrecisionSpec:
        if self.column is None and self.default is None:
            raise ValueError("give a column, a value or both (column and default)")
        return self


class Mapping(_Model):
    """A whole mapping file: the format, its options and where each field comes from."""

    format: Format | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    decimal: Literal[".", ","] = "."
    layer: str | None = None
    source: str | None = Field(default=None, min_length=1)
    id: IdSpec
    time: TimeSpec
    category: CategorySpec
    location: list[LocationSpec] = Field(default_factory=lambda: [LocationSpec()], min_length=1)
    precision: PrecisionSpec | None = None
    description: str | None = Field(default=None, min_length=1)

    _origin: str = PrivateAttr(default="the mapping")

    @field_validator("location", mode="before")
    @classmethod
    def _alternatives(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError("must be one character (not a quote or a line break), e.g. ';'")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (try utf-8, cp1252 or latin-1)") from None

    @field_validator("description")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is not None:
            template_parts(value)
        return value

    @model_validator(mode="after")
    def _decimal_is_not_the_delimiter(self) -> Mapping:
        if self.decimal == self.delimiter:
            raise ValueError("decimal and delimiter cannot be the same character")
        return self

    @property
    def origin(self) -> str:
        """Where the mapping was read from (its file), for messages."""
        return self._origin

    def field_columns(self) -> list[str]:
        """The columns read for everything but the location."""
        names = list(self.id.columns)
        for t in (self.time.start, self.time.end):
            if t is not None:
                names.append(t.column)
                names += [t.time_of_day.column] if t.time_of_day is not None else []
        names.append(self.category.column)
        names += [rule.column for rule in self.category.when]
        if self.precision is not None and self.precision.column is not None:
            names.append(self.precision.column)
        names += description_columns(self.description)
        return list(dict.fromkeys(names))

    def columns(self) -> list[str]:
        """Every column the mapping reads, whichever location alternative applies."""
        names = self.field_columns() + [c for loc in self.location for c in loc.columns]
        return list(dict.fromkeys(names))

    def format_for(self, path: Path) -> Format:
        """The file format: as given, else from the file's suffix (.csv.gz counts as .csv)."""
        if self.format is not None:
            return self.format
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes.pop()
        if suffixes and suffixes[-1] in _SUFFIX_FORMATS:
            return _SUFFIX_FORMATS[suffixes[-1]]
        raise MappingError(
            f"cannot tell the format of {path.name} from its suffix: add format: csv, geojson, "
            "gpkg or polisen-json to the mapping"
        )


def check_time_format(value: str) -> str:
    """Return a time format if it is iso, polisen or a usable strptime pattern."""
    if value in (ISO, POLISEN):
        return value
    if "%" not in value:
        raise ValueError(
            f"{value!r} is not a time format: use iso, polisen or a strptime pattern such as "
            "'%d/%m/%Y %H:%M'"
        )
    sample = datetime(2024, 12, 31, 23, 59, 58).astimezone()
    try:
        # A pattern that cannot read back what it writes would reject every row.
        datetime.strptime(sample.strftime(value), value)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a usable strptime pattern: {e}") from None
    return value


def check_time_of_day_format(value: str) -> str:
    """Return a time-of-day format if it is iso or a strptime pattern of the clock only."""
    if value == ISO:
        return value
    if "%" not in value:
        raise ValueError(
            f"{value!r} is not a time-of-day format: use iso (13, 13:30 or 13:30:15) or a "
            "strptime pattern such as '%H%M'"
        )
    if re.search(r"%[^HIMSpf%]", value):
        raise ValueError(f"{value!r}: a time of day has only hours, minutes and seconds (%H %M %S)")
    return check_time_format(value)


def check_timezone(value: str) -> str:
    """Return an IANA time zone name if it is known (Europe/Stockholm, America/Chicago...)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as Europe/Stockholm"
        ) from None
    return value


def check_crs(value: str) -> str:
    """Return a CRS as given if it is known (EPSG:3006, EPSG:4326...)."""
    try:
        parse_crs(value)
    except CrsError as e:
        raise ValueError(str(e)) from None  # "unknown CRS '...': use a code such as EPSG:3006"
    return value


def template_parts(template: str) -> list[tuple[str, bool]]:
    """Split a description into (text, is_column) parts: "{A}: {B}" or a bare column name."""
    if "{" not in template and "}" not in template:
        return [(template, True)]
    parts: list[tuple[str, bool]] = []
    literal = ""
    at = 0
    for m in _PLACEHOLDER.finditer(template):
        literal += template[at : m.start()]
        at = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
        elif m.group(1) is None:
            raise ValueError(f"unmatched {token!r} in {template!r} (write {token * 2} for one)")
        elif not m.group(1).strip():
            raise ValueError(f"an empty placeholder {{}} in {template!r}")
        else:
            if literal:
                parts.append((literal, False))
            literal = ""
            parts.append((m.group(1), True))
    literal += template[at:]
    if literal:
        parts.append((literal, False))
    return parts


def description_columns(template: str | None) -> list[str]:
    """The columns a description (a column name or a template) reads."""
    if template is None:
        return []
    return [text for text, is_column in template_parts(template) if is_column]


def load_mapping(name_or_path: str | Path) -> Mapping:
    """Read a mapping file, or a preset by name (est, polisen-csv, polisen-json, chicago)."""
    path = Path(name_or_path)
    if not path.is_file():
        preset = MAPPINGS_DIR / f"{name_or_path}.yaml"
        if isinstance(name_or_path, Path) or not preset.is_file():
            raise MappingError(
                f"no mapping file {str(name_or_path)!r} and no preset of that name "
                f"(presets: {', '.join(preset_names())})"
            )
        path = preset
        origin = f"data/mappings/{preset.name}"  # the preset as its README names it
    else:
        origin = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MappingError(f"{origin}: not readable YAML: {e}") from None
    return read_mapping(text, origin)


def read_mapping(text: str, origin: str) -> Mapping:
    """Read the YAML text of a mapping file (an upload, say); `origin` names it in messages."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except (yaml.YAMLError, ValueError) as e:
        raise MappingError(f"{origin}: not readable YAML: {e}") from None
    return parse_mapping(raw, origin)


def parse_mapping(raw: Any, origin: str = "the mapping") -> Mapping:
    """Validate a parsed YAML document as a mapping; MappingError says what is wrong where."""
    if not isinstance(raw, dict):
        raise MappingError(f"{origin}: a mapping is a YAML mapping of keys (id, time, ...)")
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as e:
        raise MappingError(f"{origin}: " + "; ".join(_explain(err) for err in e.errors())) from None
    mapping._origin = origin
    return mapping


_MODELS = (
    Mapping,
    IdSpec,
    TimeSpec,
    TimeColumn,
    TimeOfDay,
    CategorySpec,
    LocationSpec,
    PrecisionSpec,
)
_KNOWN_KEYS = sorted({f.alias or n for m in _MODELS for n, f in m.model_fields.items()})


def _explain(error: Any) -> str:
    """One pydantic error as a sentence: where (dotted key path) and what to do."""
    where = ""
    for part in error["loc"]:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    where = where or "the mapping"
    if error["type"] == "extra_forbidden":
        guess = difflib.get_close_matches(str(error["loc"][-1]), _KNOWN_KEYS, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return f"unknown key {where!r}{hint}"
    if error["type"] == "missing":
        if where == "id":
            return (
                "id is missing: name the column of each record's identifier, or write "
                "id: {derive: true} when the file has none"
            )
        return f"{where} is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"

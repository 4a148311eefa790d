"""The query parameters of /ogc, read by hand from the query string.

OGC API – Features answers an unknown or unreadable parameter with 400 (except `f=json`, which
clients send), so the routes declare their parameters in the OpenAPI document only and read
them here, naming the parameter in every refusal.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from math import isfinite
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import shapely
from starlette.datastructures import QueryParams

from app.api.ogc.collections import Collection, Property
from app.core.errors import InvalidParameter
from app.core.vocabulary import Role
from geo.crs import (
    CRS84,
    LONLAT,
    CrsLike,
    crs_uri,
    is_geographic,
    north_first,
    transform_geometries,
)
from geo.geojson import COORDINATE_DECIMALS, METRE_DECIMALS

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TRS_GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
DEFAULT_LIMIT = 100
FORMATS = ("json", "geojson")
ITEMS_PARAMETERS = (
    "f",
    "limit",
    "cursor",
    "bbox",
    "bbox-crs",
    "datetime",
    "crs",
    "filter",
    "filter-lang",
    "filter-crs",
    "sortby",
)
WEEK_PATTERN = r"^\d{4}-(W(0[1-9]|[1-4]\d|5[0-3])|T[1-3])$"


@dataclass(frozen=True)
class Crs:
    """A CRS the API offers: its URI, its code for geo.crs, and how coordinates are written."""

    uri: str
    code: CrsLike

    @property
    def north_first(self) -> bool:
        """Whether its authority writes the northing (latitude) first."""
        return self.code != CRS84 and north_first(self.code)

    @property
    def decimals(self) -> int:
        """Decimals of written coordinates: 7 for degrees, 3 (a millimetre) for metres."""
        return COORDINATE_DECIMALS if is_geographic(self.code) else METRE_DECIMALS

    @property
    def transform_code(self) -> CrsLike:
        """What geo.crs transforms to (x first): CRS84 and EPSG:4326 are the same numbers."""
        return LONLAT if self.code == CRS84 else self.code


def offered_crs(srid: int) -> tuple[Crs, ...]:
    """The CRS every collection offers: CRS84 (the default), EPSG:4326 and the storage CRS."""
    return (Crs(CRS84_URI, CRS84), Crs(crs_uri(LONLAT), LONLAT), Crs(crs_uri(srid), srid))


def read_crs(name: str, value: str | None, srid: int) -> Crs:
    """The CRS a parameter names (CRS84 when it is not given), or a 400 naming the choices."""
    offered = offered_crs(srid)
    if value is None:
        return offered[0]
    wanted = value.strip().strip("<>")
    for crs in offered:
        if wanted == crs.uri:
            return crs
    choices = ", ".join(c.uri for c in offered)
    raise InvalidParameter(f"{name} must be one of {choices}; not {value!r}")


def single(params: QueryParams, name: str) -> str | None:
    """The one value of a parameter, or None; a parameter given twice is refused."""
    values = params.getlist(name)
    if len(values) > 1:
        raise InvalidParameter(f"give {name} once, not {len(values)} times")
    return values[0] if values else None


def refuse_unknown(params: QueryParams, known: Iterable[str]) -> None:
    """Refuse a parameter the route does not take, naming it and the ones it does."""
    allowed = set(known)
    for name in params:
        if name not in allowed:
            listed = ", ".join(sorted(allowed))
            raise InvalidParameter(f"unknown parameter {name!r}; this URL takes {listed}")


def read_format(params: QueryParams, formats: tuple[str, ...] = FORMATS) -> None:
    """Accept f=json (or the route's other names for JSON); other formats are not served."""
    value = single(params, "f")
    if value is not None and value not in formats:
        raise InvalidParameter(f"f must be {' or '.join(formats)}; not {value!r}")


def read_limit(value: str | None, maximum: int) -> int:
    """The page size: DEFAULT_LIMIT when not given, clamped to the maximum."""
    if value is None:
        return min(DEFAULT_LIMIT, maximum)
    try:
        limit = int(value)
    except ValueError:
        raise InvalidParameter(f"limit must be a whole number; not {value!r}") from None
    if limit < 1:
        raise InvalidParameter("limit must be at least 1")
    return min(limit, maximum)


def read_numbers(name: str, value: str, counts: tuple[int, ...]) -> list[float]:
    """Comma-separated finite numbers, as many as one of `counts`."""
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidParameter(
            f"{name} must be numbers separated by commas; not {value!r}"
        ) from None
    if len(numbers) not in counts or not all(isfinite(n) for n in numbers):
        wanted = " or ".join(str(c) for c in counts)
        raise InvalidParameter(f"{name} must be {wanted} finite numbers; got {value!r}")
    return numbers


def read_bbox(value: str | None, crs: Crs, srid: int) -> shapely.Geometry | None:
    """The bbox (in bbox-crs, in its axis order; 4 or 6 numbers) as a polygon in storage CRS."""
    if value is None:
        return None
    numbers = read_numbers("bbox", value, (4, 6))
    low, high = (numbers[0:2], numbers[2:4]) if len(numbers) == 4 else (numbers[0:2], numbers[3:5])
    if crs.north_first:
        low, high = low[::-1], high[::-1]
    (minx, miny), (maxx, maxy) = low, high
    if is_geographic(crs.code):
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise InvalidParameter("bbox must hold longitudes within ±180 and latitudes ±90")
        if minx > maxx:
            raise InvalidParameter("bbox across the antimeridian is not served here")
    if minx > maxx or miny > maxy:
        raise InvalidParameter("bbox must give the lower corner before the upper one")
    return to_storage(shapely.box(minx, miny, maxx, maxy), crs, srid, "bbox")


def to_storage(geometry: shapely.Geometry, crs: Crs, srid: int, name: str) -> shapely.Geometry:
    """A geometry of a request (x first) in the storage CRS; edges densified on the way.

    Straight edges in one CRS are curves in another: each edge gets up to 64 points, so the
    polygon stays close to the curve and small enough to test every row against.
    """
    minx, miny, maxx, maxy = shapely.bounds(geometry)
    step = max(maxx - minx, maxy - miny) / 64 or 1.0
    dense = shapely.segmentize(geometry, step) if crs.code != srid else geometry
    moved = transform_geometries(dense, crs.transform_code, srid)
    if not bool(shapely.is_valid(moved)) or not all(
        isfinite(v) for v in shapely.get_coordinates(moved).ravel()
    ):
        raise InvalidParameter(f"{name} lies outside what {crs.uri} can express here")
    return moved


Interval = tuple[datetime | None, datetime | None]


def read_datetime(value: str | None, timezone: str) -> Interval | None:
    """An instant, a date (its local day) or an interval a/b with '..' or '' for an open end."""
    if value is None:
        return None
    if "/" not in value:
        return _instant(value, timezone)
    first, _, last = value.partition("/")
    if "/" in last:
        raise InvalidParameter(f"datetime is an instant or one interval a/b; not {value!r}")
    start: datetime | None = None if first in ("", "..") else _instant(first, timezone)[0]
    end: datetime | None = None if last in ("", "..") else _instant(last, timezone)[1]
    if start is not None and end is not None and start > end:
        raise InvalidParameter("datetime must start before it ends")
    return start, end


def _instant(text: str, timezone: str) -> tuple[datetime, datetime]:
    """The first and last instant a date-time or date names (a date: its day in `timezone`)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
            return start, start + timedelta(days=1) - timedelta(microseconds=1)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"datetime must be RFC 3339 (2026-11-18T12:00:00Z), a date or an interval; not {text!r}"
        ) from None
    if when.tzinfo is None:
        raise InvalidParameter(f"datetime {text!r} needs a time zone (Z or +01:00)")
    return when, when


def read_sortby(
    value: str | None, sortable: Mapping[str, Property]
) -> tuple[tuple[str, bool], ...]:
    """sortby=+name,-other as (name, descending) pairs of sortable properties."""
    if value is None:
        return ()
    keys = []
    for part in value.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-").strip()
        if name not in sortable:
            listed = ", ".join(sorted(sortable))
            raise InvalidParameter(f"sortby: cannot sort on {name!r}; sortable are {listed}")
        keys.append((name, descending))
    return tuple(keys)


def read_value(prop: Property, text: str, parameter: str) -> Any:
    """A value given for a property as text, as its type (a 400 names the parameter)."""
    try:
        if prop.type == "integer":
            return int(text)
        if prop.type == "number":
            number = float(text)
            if not isfinite(number):
                raise ValueError
            return number
        if prop.type == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if prop.type == "date-time":
            when = datetime.fromisoformat(text)
            if when.tzinfo is None:
                raise ValueError
            return when
    except ValueError:
        raise InvalidParameter(f"{parameter} must be a {prop.type}; not {text!r}") from None
    if prop.type == "object":
        raise InvalidParameter(f"{parameter} holds an object and cannot be compared")
    if prop.enum and text not in prop.enum:
        raise InvalidParameter(f"{parameter} must be one of {', '.join(prop.enum)}; not {text!r}")
    return text


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, going back, before) the sort values of a row."""

    values: tuple[Any, ...]
    forward: bool = True

    def encode(self) -> str:
        """The opaque value of the cursor parameter."""
        raw = orjson.dumps({"v": list(self.values), "f": self.forward}, default=str)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(value: str | None, types: list[str]) -> Cursor | None:
    """The cursor of a next or prev link, its values read back as the sort keys' types."""
    if value is None:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        values, forward = raw["v"], raw["f"]
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError
        typed = tuple(
            datetime.fromisoformat(v) if t == "date-time" and v is not None else v
            for v, t in zip(values, types, strict=True)
        )
        return Cursor(typed, bool(forward))
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidParameter(
            "cursor must be the value of a next or prev link, with the same sortby"
        ) from None


@dataclass(frozen=True)
class ItemsQuery:
    """What a request for items asks: the page, the filters, the CRS of the answer."""

    limit: int
    crs: Crs
    bbox: shapely.Geometry | None = None  # in the storage CRS
    datetime: Interval | None = None
    filter: str | None = None
    filter_crs: Crs | None = None
    sortby: tuple[tuple[str, bool], ...] = ()
    cursor: str | None = None
    equals: dict[str, Any] = field(default_factory=dict)


def read_items_query(
    params: QueryParams,
    collection: Collection,
    role: Role,
    srid: int,
    timezone: str,
    max_limit: int,
) -> ItemsQuery:
    """Read and check every parameter of a request for items."""
    queryables = {p.name: p for p in collection.queryables(role)}
    refuse_unknown(params, (*ITEMS_PARAMETERS, *queryables))
    read_format(params)
    lang = single(params, "filter-lang")
    if lang is not None and lang != "cql2-text":
        raise InvalidParameter(f"filter-lang must be cql2-text; not {lang!r}")
    bbox_crs = read_crs("bbox-crs", single(params, "bbox-crs"), srid)
    equals = {}
    for name, prop in queryables.items():
        text = single(params, name)
        if text is not None:
            equals[name] = read_value(prop, text, name)
    week = equals.get("week")
    if week is not None and not re.match(WEEK_PATTERN, week):
        raise InvalidParameter(
            f"week must be an ISO week (2026-W47) or a tertial (2026-T3); not {week!r}"
        )
    sortable = {p.name: p for p in queryables.values() if p.sortable}
    return ItemsQuery(
        limit=read_limit(single(params, "limit"), max_limit),
        crs=read_crs("crs", single(params, "crs"), srid),
        bbox=read_bbox(single(params, "bbox"), bbox_crs, srid),
        datetime=read_datetime(single(params, "datetime"), timezone),
        filter=single(params, "filter"),
        filter_crs=read_crs("filter-crs", single(params, "filter-crs"), srid),
        sortby=read_sortby(single(params, "sortby"), sortable),
        cursor=single(params, "cursor"),
        equals=equals,
    )

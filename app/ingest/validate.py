"""Validation: a RawBatch in, storable rows in the storage CRS and per-row rejections out.

Every check names the row and the field. Checks run on whole columns (numpy) so the bulk path
validates a batch at once; only free text is looked at row by row.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import shapely

from app.core.errors import InvalidInput
from app.core.vocabulary import PRECISIONS
from app.db.deployment import Place
from app.ingest.batch import RawBatch, RowError
from app.ingest.screening import Screened, screen_text
from geo.crs import CrsError, is_geographic, to_lonlat, transform

MAX_ID = 128
MAX_SOURCE = 64
MAX_TEXT = 4000


DefaultLocation = Place  # where records fall back to (a kommun centroid), as validated


@dataclass(frozen=True)
class IngestContext:
    """What validation needs to know about the deployment."""

    srid: int
    accepted_area: shapely.Geometry
    categories: frozenset[str]
    now: datetime
    default_locations: tuple[DefaultLocation, ...] = ()
    default_tolerance_m: float = 25.0
    max_clock_skew: timedelta = timedelta(minutes=5)


@dataclass
class Validated:
    """The rows that passed, as columns in the storage CRS, plus rejections and notes."""

    row: npt.NDArray[np.int64]
    source: npt.NDArray[np.object_]
    external_id: npt.NDArray[np.object_]
    category: npt.NDArray[np.object_]
    occurred_from: npt.NDArray[np.datetime64]
    occurred_to: npt.NDArray[np.datetime64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    location_precision: npt.NDArray[np.object_]
    description: npt.NDArray[np.object_]
    rejected: list[RowError] = field(default_factory=list)
    masked: dict[int, str] = field(default_factory=dict)
    masked_counts: Counter[str] = field(default_factory=Counter)
    at_default_location: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return int(self.row.size)


class _Rejections:
    """Collects the first error of each row (one clear reason beats a list of consequences)."""

    def __init__(self, rows: npt.NDArray[np.int64]) -> None:
        self.rows = rows
        self.bad = np.zeros(rows.size, dtype=bool)
        self.errors: list[RowError] = []

    def add(
        self,
        mask: npt.NDArray[np.bool_],
        field_name: str,
        reason: str | Callable[[int], str],
        value: Callable[[int], str | None] | None = None,
    ) -> None:
        """Reject the rows in mask not rejected yet; reason and the value at fault may depend
        on the row's index."""
        new = np.asarray(mask, dtype=bool) & ~self.bad  # an empty list comes as float64
        for i in np.flatnonzero(new):
            text = reason(int(i)) if callable(reason) else reason
            shown = value(int(i)) if value is not None else None
            self.errors.append(RowError(int(self.rows[i]), field_name, text, shown))
        self.bad |= new


def _text_at(values: npt.NDArray[np.object_]) -> Callable[[int], str | None]:
    """The value of row i as text, for a rejection."""
    return lambda i: None if values[i] is None else str(values[i])


def _time_at(values: npt.NDArray[np.datetime64]) -> Callable[[int], str | None]:
    """The time of row i in ISO 8601 (UTC), for a rejection."""
    return lambda i: None if np.isnat(values[i]) else f"{values[i]}Z"


def _is_blank(values: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    return np.array([v is None or (isinstance(v, str) and not v.strip()) for v in values], bool)


def validate(batch: RawBatch, ctx: IngestContext, source: str | None = None) -> Validated:
    """Check every row of a batch; return the rows that can be stored and why the others cannot.

    `source` names the rows whose batch gives none (a file import's --source).
    """
    rej = _Rejections(batch.row)
    by_row = {int(r): i for i, r in enumerate(batch.row)}
    for e in batch.errors:
        i = by_row.get(e.row)
        if i is not None and not rej.bad[i]:
            rej.errors.append(e)
            rej.bad[i] = True

    sources = (
        np.full(len(batch), source, dtype=object) if batch.source is None else batch.source.copy()
    )
    if source is not None:
        sources[_is_blank(sources)] = source
    rej.add(_is_blank(sources), "source", "missing")
    long_source = np.array([isinstance(v, str) and len(v) > MAX_SOURCE for v in sources])
    rej.add(long_source, "source", f"longer than {MAX_SOURCE} characters", _text_at(sources))
    rej.add(_is_blank(batch.external_id), "external_id", "missing")
    too_long = np.array([isinstance(v, str) and len(v) > MAX_ID for v in batch.external_id])
    rej.add(
        too_long, "external_id", f"longer than {MAX_ID} characters", _text_at(batch.external_id)
    )

    rej.add(_is_blank(batch.category), "category", "missing")
    unknown = np.array([isinstance(c, str) and c not in ctx.categories for c in batch.category])
    rej.add(
        unknown,
        "category",
        lambda i: f"unknown category {batch.category[i]!r}",
        _text_at(batch.category),
    )

    occurred_to = _check_times(batch, ctx, rej)
    x, y = _check_location(batch, ctx, rej)

    precision = np.array(
        [p if isinstance(p, str) and p else "exact" for p in batch.location_precision], object
    )
    bad_precision = np.array([p not in PRECISIONS for p in precision])
    rej.add(
        bad_precision,
        "location_precision",
        lambda i: f"{precision[i]!r} is not one of {', '.join(sorted(PRECISIONS))}",
        _text_at(precision),
    )

    description, masked, masked_counts = _check_text(batch, rej)
    keep = ~rej.bad
    at_default = _mark_default_locations(x, y, precision, keep, ctx)
    return Validated(
        row=batch.row[keep],
        source=sources[keep],
        external_id=batch.external_id[keep],
        category=batch.category[keep],
        occurred_from=batch.occurred_from[keep],
        occurred_to=occurred_to[keep],
        x=x[keep],
        y=y[keep],
        location_precision=precision[keep],
        description=description[keep],
        rejected=sorted(rej.errors, key=lambda e: e.row),
        masked_counts=masked_counts,
        at_default_location=at_default,
        masked={int(batch.row[i]): m for i, m in masked.items() if keep[i]},
    )


def _check_times(
    batch: RawBatch, ctx: IngestContext, rej: _Rejections
) -> npt.NDArray[np.datetime64]:
    """Check the times; return occurred_to, where a period still running (this month, today)
    ends now."""
    start, end = batch.occurred_from, batch.occurred_to
    now = np.datetime64(ctx.now.replace(tzinfo=None), "us")
    if batch.period_end is not None:
        end = np.where(batch.period_end & (end > now), now, end)
    rej.add(np.isnat(start), "occurred_from", "missing")
    limit = np.datetime64((ctx.now + ctx.max_clock_skew).replace(tzinfo=None), "us")
    future = "lies in the future"
    rej.add(~np.isnat(start) & (start > limit), "occurred_from", future, _time_at(start))
    rej.add(~np.isnat(end) & (end > limit), "occurred_to", future, _time_at(end))
    before = ~np.isnat(end) & ~np.isnat(start) & (end < start)
    rej.add(before, "occurred_to", "is before occurred_from", _time_at(end))
    return end


def _to_storage(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], crs: str, srid: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    try:
        return transform(x, y, crs, srid)
    except CrsError as exc:
        raise InvalidInput(str(exc)) from None


def _check_location(
    batch: RawBatch, ctx: IngestContext, rej: _Rejections
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    bx, by = batch.x.astype(np.float64), batch.y.astype(np.float64)
    missing = np.isnan(bx) | np.isnan(by)
    rej.add(missing, "location", "no location (coordinates are missing)")
    finite = np.isfinite(bx) & np.isfinite(by)

    def point(i: int) -> str:
        return f"{float(bx[i])!r}, {float(by[i])!r}"

    rej.add(~missing & ~finite, "location", "coordinates are not finite numbers", point)
    ok = finite & ~rej.bad
    x = np.full(bx.size, np.nan)
    y = np.full(by.size, np.nan)
    if ok.any():
        x[ok], y[ok] = _to_storage(bx[ok], by[ok], batch.crs, ctx.srid)
    inside = np.zeros(bx.size, dtype=bool)
    usable = ok & np.isfinite(x) & np.isfinite(y)
    inside[usable] = shapely.contains_xy(ctx.accepted_area, x[usable], y[usable])
    outside = ok & ~inside
    if outside.any():
        sx = np.full(bx.size, np.nan)
        sy = np.full(by.size, np.nan)
        sx[outside], sy[outside] = _to_storage(by[outside], bx[outside], batch.crs, ctx.srid)
        swapped = np.zeros(bx.size, dtype=bool)
        good = outside & np.isfinite(sx) & np.isfinite(sy)
        swapped[good] = shapely.contains_xy(ctx.accepted_area, sx[good], sy[good])
        geographic = is_geographic(batch.crs)
        names = ("longitude", "latitude") if geographic else ("x", "y")
        extent = describe_extent(ctx.accepted_area, ctx.srid)
        extent = f" (it lies within {extent})" if extent else ""

        def reason(i: int) -> str:
            if swapped[i]:
                return (
                    f"{names[1]} and {names[0]} look swapped: ({names[0]}={by[i]}, "
                    f"{names[1]}={bx[i]}) lies inside the accepted extent; send them the other "
                    "way round"
                )
            return f"({bx[i]}, {by[i]}) in {batch.crs} lies outside the accepted extent{extent}"

        rej.add(outside, "location", reason, point)
    return x, y


def _check_text(
    batch: RawBatch, rej: _Rejections
) -> tuple[npt.NDArray[np.object_], dict[int, str], Counter[str]]:
    out = np.empty(len(batch), dtype=object)
    masked: dict[int, str] = {}
    counts: Counter[str] = Counter()
    screened_before: dict[str, Screened] = {}  # feeds repeat texts ("THEFT: $500 AND UNDER")
    for i, value in enumerate(batch.description):
        if value is None:
            out[i] = None
            continue
        if "\x00" in value:
            rej.add(_one(i, len(batch)), "description", "contains a NUL byte")
            continue
        if not value.isascii():  # ASCII text is valid UTF-8 and already NFC
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                rej.add(_one(i, len(batch)), "description", "contains a lone surrogate (not UTF-8)")
                continue
            value = unicodedata.normalize("NFC", value)
        text = value.strip()
        if not text:
            rej.add(_one(i, len(batch)), "description", "is empty: leave the field out instead")
            continue
        if len(text) > MAX_TEXT:
            rej.add(_one(i, len(batch)), "description", f"longer than {MAX_TEXT} characters")
            continue
        screened = screened_before.get(text)
        if screened is None:
            screened = screened_before[text] = screen_text(text)
        if screened.personal_numbers or screened.plates:
            counts["personnummer"] += screened.personal_numbers
            counts["registreringsnummer"] += screened.plates
            masked[i] = screened.text
        out[i] = screened.text
    return out, masked, counts


def _one(i: int, n: int) -> npt.NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    mask[i] = True
    return mask


def _mark_default_locations(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    precision: npt.NDArray[np.object_],
    keep: npt.NDArray[np.bool_],
    ctx: IngestContext,
) -> Counter[str]:
    """Mark rows lying on a default location as area_centroid; count them by place."""
    found: Counter[str] = Counter()
    for place in ctx.default_locations:
        near = keep & (np.hypot(x - place.x, y - place.y) <= ctx.default_tolerance_m)
        near &= precision != "area_centroid"
        if near.any():
            precision[near] = "area_centroid"
            found[place.name] += int(near.sum())
    return found


SHARED_POINTS_SHOWN = 10


def describe(
    masked_counts: Counter[str],
    at_default_location: Counter[str],
    shared_points: list[tuple[float, float, int]],
    at_least: int,
) -> list[str]:
    """Return the notes a person reads after an import: what was masked, marked and suspicious
    (points shared by `at_least` records: the busiest SHARED_POINTS_SHOWN of them)."""
    notes = []
    pnr, plates = masked_counts["personnummer"], masked_counts["registreringsnummer"]
    if pnr:
        what = "personal identity number was" if pnr == 1 else "personal identity numbers were"
        notes.append(f"{pnr} {what} masked in free text")
    if plates:
        what = "registration number was" if plates == 1 else "registration numbers were"
        notes.append(f"{plates} vehicle {what} masked in free text")
    for name, count in sorted(at_default_location.items(), key=lambda kv: (-kv[1], kv[0])):
        notes.append(
            f"{count} {'record' if count == 1 else 'records'} at {name}, marked area_centroid"
        )
    if len(shared_points) == 1:
        lon, lat, count = shared_points[0]
        notes.append(
            f"warning: {count} records share the point lon {lon:.5f}, lat {lat:.5f}; kept as "
            "they are (a repeat victim is possible), check that it is not a default location"
        )
    elif shared_points:
        n, shown = len(shared_points), shared_points[:SHARED_POINTS_SHOWN]
        busiest = "; ".join(_shared(p) for p in shown)
        more = f"; and {n - len(shown)} more" if n > len(shown) else ""
        notes.append(
            f"warning: {n} points are each shared by {at_least} or more records; kept as they "
            "are (a repeat victim is possible), check that none is a default location. "
            f"The busiest: {busiest}{more}"
        )
    return notes


def shared_point_details(shared_points: list[tuple[float, float, int]]) -> list[str]:
    """Every shared point on a line of its own, for the notes file."""
    return [f"shared point: {_shared(p)}" for p in shared_points]


def _shared(point: tuple[float, float, int]) -> str:
    lon, lat, count = point
    return f"{count} records at lon {lon:.5f}, lat {lat:.5f}"


def describe_extent(area: shapely.Geometry, srid: int) -> str:
    """The accepted area in words: the lon/lat box around it."""
    # Points every 10 km along the edges: a straight edge in metres is curved in lon/lat.
    xy = shapely.get_coordinates(shapely.segmentize(area, 10_000.0))
    if not len(xy):
        return ""
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], srid)
    return (
        f"lon {np.nanmin(lon):.2f} to {np.nanmax(lon):.2f}, "
        f"lat {np.nanmin(lat):.2f} to {np.nanmax(lat):.2f}"
    )

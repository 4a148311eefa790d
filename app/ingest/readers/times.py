"""Times: the polisen.se feed's format, strptime patterns read a column at a time, to UTC.

Distinct strings are parsed once: values that fit a zero-padded fixed-width pattern exactly
are read by numpy, the others by pandas; wall-clock times are localised in the plan's zone,
the repeated autumn hour read as summer time.

A value that names a period rather than an instant (a month such as 2018-07, a date, a year)
gives the period's start and its end (the local midnight that ends it); so does a date whose
time-of-day column is empty. A date and a time of day in two columns are combined into one
wall-clock time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.ingest.batch import ObjectArray
from app.ingest.mapping import ISO, POLISEN
from app.ingest.readers.plan import BoolArray, TimeArray, short

# polisen.se writes "2023-03-25 9:43:15 +01:00": strptime's %H also takes the unpadded hour.
POLISEN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
NAT = np.datetime64("NaT", "us")
# An offset after a time of day: "...T14:30Z", "... 14:30:00+01:00", "...T1430+0100".
_OFFSET = re.compile(r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_FIXED_WIDTHS = {"Y": 4, "m": 2, "d": 2, "H": 2, "I": 2, "M": 2, "S": 2, "p": 2, "z": 6}
Period = Literal["day", "month", "year"]
_PERIOD_STEPS: dict[Period, pd.DateOffset] = {
    "day": pd.DateOffset(days=1),
    "month": pd.DateOffset(months=1),
    "year": pd.DateOffset(years=1),
}
# ISO 8601 values that name a period: 2018, 2018-07, 2018-07-05 or 20180705.
_ISO_PERIODS: tuple[tuple[re.Pattern[str], Period], ...] = (
    (re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*"), "day"),
    (re.compile(r"\s*\d{8}\s*"), "day"),
    (re.compile(r"\s*\d{4}-\d{2}\s*"), "month"),
    (re.compile(r"\s*\d{4}\s*"), "year"),
)
# The date at the start of an ISO 8601 value, whatever follows it (a time, an offset).
_ISO_DATE = re.compile(r"\s*(\d{4})-?(\d{2})-?(\d{2})(?:[T ]|\s*$)")
_ISO_TIME_OF_DAY = re.compile(r"\s*(\d{1,2})(?::(\d{2})(?::(\d{2}))?)?\s*")


def parse_polisen_time(value: str) -> datetime:
    """Parse the feed's "2023-03-25 9:43:15 +01:00" (the hour is not always zero-padded)."""
    return datetime.strptime(value, POLISEN_TIME_FORMAT)


def parse_times(
    values: ObjectArray, fmt: str, timezone: str | None, no_zone: str
) -> tuple[TimeArray, ObjectArray, BoolArray]:
    """Distinct time strings to UTC datetime64[us]; an error reason per value that fails."""
    n = values.size
    out = np.full(n, NAT)
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
    times: TimeArray = np.full(values.size, NAT)
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
        times = np.full(values.size, NAT)
        times[~relative] = _pandas_times(values[~relative], pattern, utc)
        return times
    try:
        parsed = pd.to_datetime(values, format=pattern, utc=utc, errors="coerce")
        return _utc_micros(parsed, utc)
    except ValueError:
        # Naive and zoned values mixed in one call make pandas raise: parse them one by one.
        return np.array([_pandas_time(v, pattern, utc) for v in values], dtype="datetime64[us]")


def _pandas_time(value: str, pattern: str, utc: bool) -> np.datetime64:
    """One value parsed by pandas, NaT when it does not parse."""
    try:
        time = pd.to_datetime(value, format=pattern, utc=utc)
    except (ValueError, OverflowError):
        return NAT
    if pd.isna(time) or (not utc and time.tzinfo is not None):
        return NAT
    return np.datetime64(time.tz_convert(None) if utc else time, "us")


@dataclass(frozen=True)
class _FixedLayout:
    """Where each directive of a zero-padded strptime pattern sits, and the literal characters.

    %z is the "+01:00" form here; "+0100" and "Z" are left to pandas.
    """

    width: int
    fields: dict[str, int]  # directive letter -> offset
    literals: list[tuple[int, int]]  # (offset, byte)


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
    wall = np.full(n, NAT)
    try:
        raw = values.astype(f"S{width + 1}")
    except UnicodeEncodeError:
        return wall, np.zeros(n, dtype=bool)
    grid = raw.view(np.uint8).reshape(n, width + 1)
    ok = (grid[:, width] == 0) & (grid[:, width - 1] != 0)  # exactly `width` characters
    for position, byte in layout.literals:
        ok &= grid[:, position] == byte

    def number(directive: str) -> npt.NDArray[np.int64]:
        """The digits of a directive as numbers; rows with other characters fail."""
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
            return np.full(len(index), NAT)
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("us").to_numpy(copy=True)


def _not_a_time(value: str, fmt: str) -> str:
    """Why a value is not a time of the format, with an example."""
    shown = short(value)
    if fmt == ISO:
        return f"{shown!r} is not an ISO 8601 time such as 2026-03-01T14:30:00+01:00"
    if fmt == POLISEN:
        return f"{shown!r} is not a polisen.se time such as 2023-03-25 9:43:15 +01:00"
    return f"{shown!r} does not match the time format {fmt!r}"


def pattern_period(fmt: str) -> Period | None:
    """The period a strptime pattern without a clock names (a date: day), None for instants."""
    if re.search(r"%[HIMSpXcTRrz]", fmt):
        return None
    if re.search(r"%[djaAuwUWV]", fmt):
        return "day"
    if re.search(r"%[mbB]", fmt):
        return "month"
    return "year"


def parse_periods(
    values: ObjectArray, fmt: str, timezone: str | None, no_zone: str
) -> tuple[TimeArray, TimeArray, ObjectArray, BoolArray]:
    """Times as `parse_times`, plus the end of each value that names a period (NaT otherwise)."""
    start, reasons, ambiguous = parse_times(values, fmt, timezone, no_zone)
    periods = np.full(values.size, None, dtype=object)
    if fmt == ISO:
        for i, value in enumerate(values):
            periods[i] = next((p for pat, p in _ISO_PERIODS if pat.fullmatch(value)), None)
    elif fmt != POLISEN:
        periods[:] = pattern_period(fmt)
    ends: TimeArray = np.full(values.size, NAT)
    if timezone is not None:
        ends = period_ends(start, periods, timezone)
    return start, ends, reasons, ambiguous


def period_ends(start: TimeArray, periods: ObjectArray, timezone: str) -> TimeArray:
    """The UTC end of each period (the local midnight after it) from its UTC start."""
    ends = np.full(start.size, NAT)
    for period, step in _PERIOD_STEPS.items():
        chosen = (periods == period) & ~np.isnat(start)
        if not chosen.any():
            continue
        local = pd.DatetimeIndex(start[chosen]).tz_localize("UTC").tz_convert(timezone)
        wall = local.tz_localize(None) + step
        # A midnight skipped by a clock change (in a few zones) ends the period an hour later.
        summer = np.ones(len(wall), dtype=bool)
        ends[chosen] = _utc_micros(
            wall.tz_localize(timezone, ambiguous=summer, nonexistent="shift_forward")
        )
    return ends


@dataclass
class DateTimes:
    """A date column and a time-of-day column combined: UTC times, the end of the day where
    the time of day is empty, the reason and value of each row that fails, the repeated hour."""

    start: TimeArray
    end: TimeArray
    reasons: ObjectArray
    values: ObjectArray
    ambiguous: BoolArray


def parse_date_times(
    dates: ObjectArray,
    times: ObjectArray,
    date_format: str,
    time_format: str,
    timezone: str | None,
    no_zone: str,
) -> DateTimes:
    """Combine a date column (its own time of day and offset, if written, are ignored) and a
    time-of-day column into wall-clock times in `timezone`; an empty time of day is the day."""
    n = dates.size
    reasons = np.full(n, None, dtype=object)
    shown = np.full(n, None, dtype=object)
    day_codes, day_values = pd.factorize(dates)
    days, day_reasons = _each(
        np.asarray(day_values, dtype=object),
        lambda v: _date(v, date_format),
        lambda v: _not_a_date(v, date_format),
        np.datetime64("NaT", "D"),
    )
    time_codes, time_values = pd.factorize(times)
    clock, clock_reasons = _each(
        np.asarray(time_values, dtype=object),
        lambda v: _time_of_day(v, time_format),
        lambda v: _not_a_time_of_day(v, time_format),
        np.timedelta64("NaT", "us"),
    )
    day, since_midnight = days[day_codes], clock[time_codes]
    bad_day = day_reasons[day_codes] != None  # noqa: E711 (elementwise)
    bad_clock = (clock_reasons[time_codes] != None) & ~bad_day  # noqa: E711
    reasons[bad_day], shown[bad_day] = day_reasons[day_codes][bad_day], dates[bad_day]
    reasons[bad_clock], shown[bad_clock] = clock_reasons[time_codes][bad_clock], times[bad_clock]
    whole_day = np.isnat(since_midnight) & ~bad_clock
    wall = day.astype("datetime64[us]") + np.where(
        whole_day, np.timedelta64(0, "us"), since_midnight
    )
    wall[bad_clock] = NAT
    start = np.full(n, NAT)
    ambiguous = np.zeros(n, dtype=bool)
    written = np.array(
        [f"{d.strip()} {t.strip()}".strip() for d, t in zip(dates, times, strict=True)],
        dtype=object,
    )
    usable = ~np.isnat(wall)
    if timezone is None:
        reasons[usable], shown[usable] = no_zone, written[usable]
    elif usable.any():
        start[usable], local_reasons, ambiguous[usable] = _localise(
            wall[usable], written[usable], timezone
        )
        failed = local_reasons != None  # noqa: E711
        idx = np.flatnonzero(usable)[failed]
        reasons[idx], shown[idx] = local_reasons[failed], written[idx]
    periods = np.full(n, None, dtype=object)
    periods[whole_day & ~np.isnat(start)] = "day"
    end = period_ends(start, periods, timezone) if timezone is not None else np.full(n, NAT)
    return DateTimes(start, end, reasons, shown, ambiguous)


def _each(
    values: ObjectArray,
    parse: Callable[[str], Any],
    why: Callable[[str], str],
    empty: np.datetime64 | np.timedelta64,
) -> tuple[npt.NDArray[Any], ObjectArray]:
    """Distinct texts parsed one by one (`empty` where blank or unparsed), and why not."""
    out = np.full(values.size, empty)
    reasons = np.full(values.size, None, dtype=object)
    for i, value in enumerate(values):
        if not value.strip():
            continue
        found = parse(value)
        if found is None:
            reasons[i] = why(value)
        else:
            out[i] = found
    return out, reasons


def _date(value: str, fmt: str) -> date | None:
    """The date a value writes first, None when it is not one."""
    try:
        if fmt == ISO:
            m = _ISO_DATE.match(value)
            return None if m is None else date(*(int(g) for g in m.groups()))
        if fmt == POLISEN:
            return parse_polisen_time(value.strip()).date()
        return datetime.strptime(value.strip(), fmt).date()
    except ValueError:
        return None


def _time_of_day(value: str, fmt: str) -> timedelta | None:
    """A time of day as time since midnight, None when it is not one."""
    if fmt != ISO:
        try:
            clock = datetime.strptime(value.strip(), fmt)
        except ValueError:
            return None
        return timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second)
    m = _ISO_TIME_OF_DAY.fullmatch(value)
    if m is None:
        return None
    hour, minute, second = (int(g) if g else 0 for g in m.groups())
    if hour > 23 or minute > 59 or second > 59:
        return None
    return timedelta(hours=hour, minutes=minute, seconds=second)


def _not_a_date(value: str, fmt: str) -> str:
    """Why a value is not a date of the format."""
    shown = short(value)
    if fmt == ISO:
        return f"{shown!r} is not a date such as 2026-03-01"
    return f"{shown!r} does not match the date format {fmt!r}"


def _not_a_time_of_day(value: str, fmt: str) -> str:
    """Why a value is not a time of day, with a hint for 4-digit clock times."""
    shown = short(value)
    if fmt != ISO:
        return f"{shown!r} does not match the time-of-day format {fmt!r}"
    hint = (
        " (for 2215 as 22:15, give format: '%H%M')" if re.fullmatch(r"\s*\d{3,4}\s*", value) else ""
    )
    return f"{shown!r} is not a time of day such as 13, 13:30 or 13:30:15{hint}"

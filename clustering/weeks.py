"""Monday-based local weeks: the one week clock of the hotspot methods.

A week runs from Monday 00:00 to the next Monday 00:00 local time in a time zone, so a week with
a daylight-saving change lasts 167 or 169 hours and is still one week; these are the weeks of
ISO 8601. Weeks are numbered from week 0, which starts on Monday 5 January 1970 (local), so
consecutive weeks have consecutive numbers whatever the zone. Timezone-aware times are converted
to the zone; naive times are taken as UTC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]

DEFAULT_TZ = "Europe/Stockholm"
# Week 0 starts on Monday 5 January 1970; week numbers count Mondays from there.
EPOCH_MONDAY = np.datetime64("1970-01-05", "D")


def local_days(times: Any, tz: str) -> IntArray:
    """Return each time's local calendar day in tz, as days since Monday 1970-01-05."""
    stamps = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    if stamps.hasnans:
        raise ValueError("times contain missing values")
    local = stamps.tz_convert(tz).tz_localize(None)
    days = local.to_numpy().astype("datetime64[D]") - EPOCH_MONDAY
    return days.astype(np.int64)


def local_day_of(value: Any, tz: str) -> int:
    """Return the local calendar day of one date or instant, as days since Monday 1970-01-05.

    A naive value ("2017-07-01", a date) is a local date in tz; an aware one is converted to tz.
    """
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"{value!r} is no date")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(tz).tz_localize(None)
    return int((stamp.normalize() - pd.Timestamp(EPOCH_MONDAY)).days)


def week_numbers(times: Any, tz: str) -> IntArray:
    """Return each time's Monday-based week number in tz (week 0 starts Monday 1970-01-05)."""
    return local_days(times, tz) // 7


def week_start(week: int) -> pd.Timestamp:
    """Return the local date (a naive Timestamp) of the Monday that starts week number `week`."""
    return pd.Timestamp(EPOCH_MONDAY + np.timedelta64(7 * int(week), "D"))


def week_starts(weeks: Any, tz: str) -> pd.DatetimeIndex:
    """Return the local Monday 00:00 that starts each numbered week, timezone-aware in tz."""
    days = EPOCH_MONDAY + 7 * np.asarray(weeks, dtype=np.int64)
    naive = pd.DatetimeIndex(days.astype("datetime64[ns]"))
    # In zones that change clocks at midnight a Monday 00:00 may not exist or occur twice; the
    # week then starts at the first instant of that Monday.
    return naive.tz_localize(
        tz, nonexistent="shift_forward", ambiguous=np.ones(len(naive), dtype=bool)
    )


def week_label(week: int) -> str:
    """Return the ISO 8601 label of a week number, e.g. '2017-W14'."""
    year, number, _ = week_start(week).isocalendar()
    return f"{year}-W{number:02d}"

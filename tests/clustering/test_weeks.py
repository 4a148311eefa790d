"""The one week clock: Monday-based local weeks, checked against Python's own ISO calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from clustering.weeks import DEFAULT_TZ, week_label, week_numbers, week_start, week_starts

ZONES = ("Europe/Stockholm", "America/Chicago")
MONDAY = pd.Timestamp("2026-01-05", tz="UTC")  # week number 2922, ISO 2026-W02


def random_instants(n: int, seed: int) -> list[datetime]:
    """n UTC instants spread over 1960-2040, whole seconds."""
    lo = int(datetime(1960, 1, 1, tzinfo=UTC).timestamp())
    hi = int(datetime(2040, 1, 1, tzinfo=UTC).timestamp())
    seconds = np.random.default_rng(seed).integers(lo, hi, n)
    return [datetime.fromtimestamp(int(s), UTC) for s in seconds]


def iso_label(local: datetime) -> str:
    """The ISO 8601 week of a local time, by Python's datetime.isocalendar()."""
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


@pytest.mark.parametrize("tz", ZONES)
def test_week_labels_match_python_isocalendar_for_random_instants(tz: str) -> None:
    instants = random_instants(3000, seed=len(tz))
    weeks = week_numbers(instants, tz)
    expected = [iso_label(t.astimezone(ZoneInfo(tz))) for t in instants]
    assert [week_label(w) for w in weeks] == expected


@pytest.mark.parametrize("tz", ZONES)
def test_week_start_is_the_local_monday_of_each_instant(tz: str) -> None:
    instants = random_instants(500, seed=7)
    weeks = week_numbers(instants, tz)
    for instant, week in zip(instants, weeks, strict=True):
        local = instant.astimezone(ZoneInfo(tz)).date()
        monday = local - timedelta(days=local.weekday())
        assert week_start(week).date() == monday
        assert week_start(week).isocalendar()[2] == 1
        assert week_start(week) == pd.Timestamp(monday)


def test_week_zero_starts_on_monday_5_january_1970() -> None:
    assert week_start(0) == pd.Timestamp("1970-01-05")
    assert week_numbers(["1970-01-05T00:00:00Z", "1970-01-04T23:59:59Z"], "UTC").tolist() == [0, -1]
    assert week_label(0) == "1970-W02"


@pytest.mark.parametrize(
    "sunday",
    [
        "2017-03-12",  # Chicago springs forward that Sunday at 02:00
        "2017-11-05",  # and falls back that Sunday at 02:00
        "2017-06-18",  # an ordinary summer Sunday
    ],
)
def test_chicago_sunday_2330_and_monday_0030_are_different_weeks(sunday: str) -> None:
    chicago = ZoneInfo("America/Chicago")
    day = datetime.fromisoformat(sunday)
    late_sunday = (day + timedelta(hours=23, minutes=30)).replace(tzinfo=chicago)
    early_monday = (day + timedelta(days=1, minutes=30)).replace(tzinfo=chicago)
    # Both are Monday in UTC: only the local clock tells the weeks apart.
    assert late_sunday.astimezone(UTC).date() == early_monday.astimezone(UTC).date()
    sun, mon = week_numbers([late_sunday, early_monday], "America/Chicago")
    assert mon == sun + 1
    assert week_start(mon).date() == early_monday.date()


def test_week_numbers_are_monday_based_in_stockholm_time() -> None:
    # Sunday 29 March 2026 23:30 in Stockholm (summer time) is 21:30 UTC; 22:30 UTC is Monday.
    times = pd.to_datetime(["2026-03-29 21:30Z", "2026-03-29 22:30Z"])
    weeks = week_numbers(times, tz="Europe/Stockholm")
    assert weeks[1] == weeks[0] + 1
    assert [week_label(w) for w in weeks] == ["2026-W13", "2026-W14"]
    assert week_numbers(pd.DatetimeIndex([MONDAY]), tz="UTC").tolist() == [2922]


def test_naive_times_are_taken_as_utc() -> None:
    naive = np.array(["2026-03-29T22:30", "2026-10-25T00:30"], dtype="datetime64[s]")
    aware = pd.DatetimeIndex(naive).tz_localize("UTC")
    assert (week_numbers(naive, DEFAULT_TZ) == week_numbers(aware, DEFAULT_TZ)).all()


def test_missing_times_are_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        week_numbers(["2026-01-05", None], DEFAULT_TZ)


@pytest.mark.parametrize("tz", ZONES)
def test_week_starts_are_local_mondays_at_midnight_across_dst(tz: str) -> None:
    weeks = np.arange(week_numbers(["2017-01-02T12:00Z"], tz)[0], 2922)  # 2017 to 2026
    starts = week_starts(weeks, tz)
    assert str(starts.tz) == tz
    assert (starts.day_of_week == 0).all() and (starts.hour == 0).all()
    assert [s.tz_localize(None) for s in starts] == [week_start(w) for w in weeks]
    hours = set(np.diff(starts.tz_convert("UTC")) / pd.Timedelta(hours=1))
    assert hours == {167.0, 168.0, 169.0}
    assert week_numbers(starts, tz).tolist() == weeks.tolist()

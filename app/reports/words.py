"""The report's Swedish: periods, numbers, shown counts and what the change tests allow saying.

A change is called "ökning utöver slumpen" (or "minskning utöver slumpen") only when its test,
after the correction for every comparison of the run (Benjamini–Hochberg, app.runs.figures),
says so; otherwise the words are "ingen förändring utöver slumpen", whatever the counts look
like. A percentage is never given alone, and only beside counts of at least PERCENT_FROM on
both sides: on small counts a percentage mostly measures chance.

In a viewer's report every count is a shown count; one below the privacy k (a shown 0 means
"none or fewer than k") reads "< k", never a number.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.runs.recompute import RunPeriod

PERCENT_FROM = 20
WEEKDAYS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
MONTHS = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)
# What each comparison of a group's figures is against, for a week's and a tertial's run.
BASELINES = {
    "week": {
        "previous_period": "förra veckan",
        "same_period_last_year": "samma vecka i fjol",
        "baseline_mean": "snittet för de 12 veckorna före",
    },
    "tertial": {
        "previous_period": "tertialen före",
        "same_period_last_year": "samma tertial i fjol",
        "baseline_mean": "snittet för de tre tertialen före",
    },
}
SHORT_BASELINES = {
    "week": {**BASELINES["week"], "baseline_mean": "snittet"},
    "tertial": {**BASELINES["tertial"], "baseline_mean": "snittet"},
}
# The column heads of the figures table.
HEADS = {
    "week": ("Denna vecka", "Förra veckan", "Samma vecka i fjol", "Snitt 12 veckor"),
    "tertial": ("Denna tertial", "Tertialen före", "Samma tertial i fjol", "Snitt tre tertial"),
}
METHODS = {
    "dbscan": "Hotspotar (DBSCAN)",
    "kde": "Täthet (kärnuppskattning)",
    "density": "Täthet (kärnuppskattning)",
    "gistar": "Getis-Ord Gi*",
    "emerging": "Trendanalys (emerging hot spots)",
    "forecast": "Prognos",
}


def period_title(period: RunPeriod) -> str:
    """2026-W48 as "vecka 48 2026", 2026-T3 as "tertial 3 2026"."""
    if period.kind == "tertial":
        return f"tertial {(period.first_day.month - 1) // 4 + 1} {period.first_day.year}"
    year, week, _ = period.first_day.isocalendar()
    return f"vecka {week} {year}"


def day_span(first: date, end: date) -> str:
    """The days from `first` up to `end` (exclusive): "23–29 november 2026"."""
    last = end - timedelta(days=1)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {MONTHS[last.month - 1]} {last.year}"
    if first.year == last.year:
        return (
            f"{first.day} {MONTHS[first.month - 1]}–{last.day} {MONTHS[last.month - 1]} {last.year}"
        )
    return f"{day(first)}–{day(last)}"


def day(value: date) -> str:
    """A day in words: 30 november 2026."""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def moment(value: datetime | None, tz: str) -> str:
    """An instant in the deployment's time zone: 30 november 2026 kl. 03.42."""
    if value is None:
        return "–"
    local = value.astimezone(ZoneInfo(tz))
    return f"{day(local.date())} kl. {local:%H.%M}"


def number(value: float, decimals: int = 0) -> str:
    """A number the Swedish way: 1 234 and 4,5 (a narrow no-break space between thousands)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",")


def count(value: float | None, k: int, viewer: bool, decimals: int = 0) -> str:
    """A count for the audience: exact for analysts; shown, never below k, for viewers."""
    if value is None:
        return "–"
    if viewer and value < k:
        return f"< {k}"
    return number(value, decimals)


def change(test: dict[str, Any]) -> str:
    """What a change test allows saying: a rise or fall beyond chance, or neither."""
    if test.get("significant") and test.get("direction") == "up":
        return "ökning utöver slumpen"
    if test.get("significant") and test.get("direction") == "down":
        return "minskning utöver slumpen"
    return "ingen förändring utöver slumpen"


def percent(this: float, baseline: float, k: int, viewer: bool) -> str:
    """The change in per cent, " (+38 %)", when both counts are large enough; else ""."""
    if this < max(PERCENT_FROM, k if viewer else 0) or baseline < PERCENT_FROM:
        return ""
    value = round(100 * (this - baseline) / baseline)
    return f" ({'+' if value > 0 else '−'}{abs(value)} %)" if value else ""


def changes(figure: Any, kind: str, k: int, viewer: bool) -> str:
    """A group's changes beyond chance in one line: "ökning utöver slumpen mot förra veckan
    och snittet (+38 %)", or "ingen förändring utöver slumpen"."""
    baselines = {
        "previous_period": figure.previous,
        "same_period_last_year": figure.last_year,
        "baseline_mean": figure.mean,
    }
    said = []
    for direction in ("up", "down"):
        against = [
            SHORT_BASELINES[kind][name] + percent(figure.this, value, k, viewer)
            for name, value in baselines.items()
            if figure.tests.get(name, {}).get("significant")
            and figure.tests[name].get("direction") == direction
        ]
        if against:
            word = change({"significant": True, "direction": direction})
            said.append(f"{word} mot {listed(against)}")
    return "; ".join(said) or change({})


def listed(items: list[str]) -> str:
    """Items the Swedish way: "a, b och c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " och " + items[-1]


def share(value: float | None) -> str:
    """A share in per cent: 0.234 as "23 %"."""
    return "–" if value is None else f"{round(100 * value)} %"


def weekday_hour(weekday: int | None, hour: int | None) -> str:
    """The busiest weekday and hour: "fredag, 22–23"."""
    if weekday is None or hour is None:
        return "–"
    return f"{WEEKDAYS[weekday]}, {hour:02d}–{(hour + 1) % 24:02d}"

"""The area figures of a run: counts per category group against three baselines, tested.

For each group: this week, last week, the same ISO week last year and the mean of the 12 weeks
before this week. The three comparisons of every group of one run are tested together
(clustering.change: the exact test for two single weeks, the variance-stabilised score against
the 12-week mean, Benjamini–Hochberg over them all), so a run of 8 groups makes 24 tests and
flags a change only when it stands out of all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from clustering.change import Change, Comparison, change_tests

BASELINE_WEEKS = 12
COMPARISONS = ("mean_12_weeks", "last_week", "same_week_last_year")


@dataclass(frozen=True)
class GroupCounts:
    """One group's counts: this week, last week, the same week last year, the 12 before."""

    group: str
    this_week: int
    last_week: int
    same_week_last_year: int
    previous_12: tuple[int, ...]

    @property
    def mean_12_weeks(self) -> float:
        """The mean of the 12 weeks before this week."""
        return sum(self.previous_12) / len(self.previous_12)


def same_week_last_year(monday: date) -> date:
    """The Monday of the same ISO week a year earlier (week 53 falls back to week 52)."""
    year, week, _ = monday.isocalendar()
    try:
        return date.fromisocalendar(year - 1, week, 1)
    except ValueError:
        return date.fromisocalendar(year - 1, 52, 1)


def figure_mondays(monday: date) -> dict[str, list[date]]:
    """The Mondays each figure counts: this week, last week, last year, the 12 before."""
    return {
        "this_week": [monday],
        "last_week": [monday - timedelta(7)],
        "same_week_last_year": [same_week_last_year(monday)],
        "previous_12": [monday - timedelta(7 * k) for k in range(BASELINE_WEEKS, 0, -1)],
    }


def tested(groups: list[GroupCounts]) -> list[dict[str, Any]]:
    """Each group's figures with its three change tests, corrected over all of them."""
    rows = []
    for g in groups:
        rows += [
            Comparison(g.this_week, g.mean_12_weeks, "mean"),
            Comparison(g.this_week, g.last_week, "count"),
            Comparison(g.this_week, g.same_week_last_year, "count"),
        ]
    changes = change_tests(rows)
    out = []
    for i, g in enumerate(groups):
        tests = {
            name: _test(c) for name, c in zip(COMPARISONS, changes[3 * i : 3 * i + 3], strict=True)
        }
        out.append(
            {
                "group_code": g.group,
                "this_week": g.this_week,
                "last_week": g.last_week,
                "same_week_last_year": g.same_week_last_year,
                "mean_12_weeks": g.mean_12_weeks,
                "tests": tests,
            }
        )
    return out


def _test(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "baseline": change.baseline,
        "direction": change.direction,
        "z": _finite(change.z),
        "p": change.p,
        "p_adjusted": change.p_adjusted,
        "significant": change.significant,
    }


def _finite(value: float) -> float | None:
    """JSON has no infinity: an overwhelming change is stored as the largest z shown."""
    if value != value:  # NaN
        return None
    return max(-99.0, min(99.0, value))

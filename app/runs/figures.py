"""The area figures of a run: counts per category group against three baselines, tested.

For each group, a week's run compares its week with last week, the same ISO week last year and
the mean of the 12 weeks before; a tertial's run compares its tertial with the tertial before,
the same tertial last year and the mean of the three tertials before (the year before). The
three comparisons of every group of one run are tested together (clustering.change: the exact
test for two single periods, the exact Poisson test against the mean, Benjamini–Hochberg over
them all), so a run of 8 groups makes 24 tests and flags a change only when it stands out of
all of them. (The columns of est.area_figure are named for the week: this_week, last_week,
same_week_last_year, mean_12_weeks; a tertial's run stores its own periods in them.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.access.privacy import Period, period_of
from clustering.change import Change, Comparison, change_tests

BASELINE_WEEKS = 12
BASELINE_TERTIALS = 3
COMPARISONS = ("baseline_mean", "previous_period", "same_period_last_year")


@dataclass(frozen=True)
class GroupCounts:
    """One group's counts: this period, the one before, the same one last year, the baseline."""

    group: str
    this_period: int
    previous_period: int
    same_period_last_year: int
    baseline: tuple[int, ...]

    @property
    def baseline_mean(self) -> float:
        """The mean of the baseline periods."""
        return sum(self.baseline) / len(self.baseline)


def same_period_last_year(period: Period) -> Period:
    """The same ISO week a year earlier (week 53 falls back to week 52), or the same tertial."""
    if period.kind == "tertial":
        return period_of("tertial", period.first_day.replace(year=period.first_day.year - 1))
    year, week, _ = period.first_day.isocalendar()
    try:
        monday = period.first_day.fromisocalendar(year - 1, week, 1)
    except ValueError:
        monday = period.first_day.fromisocalendar(year - 1, 52, 1)
    return period_of("week", monday)


def previous(period: Period) -> Period:
    """The period of the same kind just before."""
    return period_of(period.kind, period.first_day - timedelta(days=1))


def figure_periods(period: Period) -> dict[str, list[Period]]:
    """The periods each figure counts: this one, the one before, last year's, the baseline."""
    count = BASELINE_TERTIALS if period.kind == "tertial" else BASELINE_WEEKS
    baseline = [previous(period)]
    while len(baseline) < count:
        baseline.append(previous(baseline[-1]))
    return {
        "this_period": [period],
        "previous_period": [previous(period)],
        "same_period_last_year": [same_period_last_year(period)],
        "baseline": baseline[::-1],
    }


def tested(groups: list[GroupCounts]) -> list[dict[str, Any]]:
    """Each group's figures with its three change tests, corrected over all of them."""
    rows = []
    for g in groups:
        rows += [
            Comparison(g.this_period, g.baseline_mean, "mean"),
            Comparison(g.this_period, g.previous_period, "count"),
            Comparison(g.this_period, g.same_period_last_year, "count"),
        ]
    changes = change_tests(rows)
    out = []
    for i, g in enumerate(groups):
        three = changes[3 * i : 3 * i + 3]
        tests = {name: _test(c) for name, c in zip(COMPARISONS, three, strict=True)}
        out.append(
            {
                "group_code": g.group,
                "this_week": g.this_period,
                "last_week": g.previous_period,
                "same_week_last_year": g.same_period_last_year,
                "mean_12_weeks": g.baseline_mean,
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

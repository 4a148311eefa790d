"""Choosing the forecast method and its parameters by backtest, on past weeks only.

The search space is fixed here, not tuned to any data: every grid method of the forecast layer
(clustering.forecast) at three settings of its main parameter, each with the training windows
TRAINING_WINDOWS_WEEKS (how many weeks before a forecast week it learns from; for prospective
hotspotting its `weeks`). DBSCAN is not a candidate: it flags polygons whose area is not the
coverage share, so its PAI cannot be ranked against the cells' (and the forecast layer is cells).

`ForecastChoice` is nested: with `before` (a local date, the first test week's Monday) every
incident from that day on is dropped first, and each candidate is backtested on the last
`selection_weeks` whole weeks before it, trained on the weeks before each of those. A
candidate is eligible when it could be scored on every selection week the baseline (naive
counts over 12 weeks) was scored on; a training window that does not fit in the data before
the selection weeks makes it ineligible, and the table says so. The eligible ones are ranked by
mean PAI over the selection weeks, then mean PEI* (the documented secondary score), then their
order in the search space: the baseline first, then simpler methods and shorter windows. The
best is chosen when the paired bootstrap interval of its weekly PAI minus the baseline's
(clustering.evaluation) lies above zero; otherwise the baseline is kept: the past has not shown
that anything beats counting, which at small counts is the honest answer.

`score_choice` then scores the chosen setting once on the test weeks, next to the baseline and
every method at its fixed default, and the paired difference of each from the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from clustering.evaluation import (
    POLYGON_METHODS,
    SUMMARY_COLUMNS,
    Backtest,
    PairedDifference,
    cell_forecast,
    paired_difference,
)
from clustering.forecast import FORECAST_METHODS, ForecastMethod
from clustering.params import Estimator
from clustering.weeks import DEFAULT_TZ, local_day_of, local_days, week_label, week_start
from geo.points import as_xy

TRAINING_WINDOWS_WEEKS = (6, 12, 18, 26, 52)
# Three settings of each method's main parameter (Backtest parameter names).
SEARCH_GRID: dict[str, tuple[str, tuple[float, ...]] | None] = {
    "naive": None,
    "blend": ("blend_short_weight", (0.25, 0.5, 0.75)),
    "kde": ("kde_bandwidth_m", (300.0, 500.0, 800.0)),
    "gistar": ("gistar_distance_band_m", (300.0, 500.0, 800.0)),
    "prospective": ("prospective_bandwidth_m", (250.0, 500.0, 800.0)),
    "learned": ("learned_max_leaf_nodes", (7, 15, 31)),
}
# What a label shows of each method's main parameter.
_LABELS: dict[str, tuple[str, str]] = {
    "blend": ("blend_short_weight", "short weight {:g}"),
    "kde": ("kde_bandwidth_m", "{:g} m"),
    "gistar": ("gistar_distance_band_m", "band {:g} m"),
    "prospective": ("prospective_bandwidth_m", "{:g} m"),
    "learned": ("learned_max_leaf_nodes", "{:g} leaves"),
    "dbscan": ("dbscan_eps_m", "eps {:g} m"),
}
TABLE_COLUMNS = ("method", "train_weeks", *SUMMARY_COLUMNS, "eligible", "note")


@dataclass(frozen=True)
class Candidate:
    """One method at one setting: its training window and Backtest parameters."""

    method: str
    train_weeks: int
    params: tuple[tuple[str, Any], ...] = ()

    def backtest_params(self) -> dict[str, Any]:
        """The Backtest parameters that score this candidate alone."""
        params: dict[str, Any] = {"methods": (self.method,), "train_weeks": self.train_weeks}
        if self.method == "prospective":
            params["prospective_weeks"] = self.train_weeks
        return params | dict(self.params)

    def backtest(self, **common: Any) -> Backtest:
        """A Backtest of this candidate with the common parameters (coverage, cells, weeks…)."""
        return Backtest(**common, **self.backtest_params())

    @property
    def label(self) -> str:
        """How tables name it, e.g. 'kde 500 m, 12 weeks'."""
        if self.method == "random":
            return "random"
        if self.method not in _LABELS:
            return f"{self.method} {self.train_weeks} weeks"
        name, text = _LABELS[self.method]
        value = getattr(self.backtest(), name)
        return f"{self.method} {text.format(value)}, {self.train_weeks} weeks"

    def forecast_params(self, cell_size_m: float) -> dict[str, Any]:
        """The clustering.forecast.CellForecast parameters a run uses for this candidate."""
        if self.method not in FORECAST_METHODS:
            raise ValueError(f"{self.method} is no forecast method of a run")
        method: ForecastMethod = self.method
        bt = self.backtest(cell_size_m=cell_size_m)
        return cell_forecast(bt, method, self.train_weeks).method_params()


BASELINE = Candidate("naive", 12)


def search_space(methods: Sequence[str] = FORECAST_METHODS) -> list[Candidate]:
    """Every candidate of the fixed search space for the given methods, in ranking order."""
    unknown = [m for m in methods if m not in SEARCH_GRID]
    if unknown:
        raise ValueError(f"cannot choose among {unknown}; use some of {', '.join(SEARCH_GRID)}")
    out = []
    for method in SEARCH_GRID:
        if method not in methods:
            continue
        grid = SEARCH_GRID[method]
        settings = [()] if grid is None else [((grid[0], v),) for v in grid[1]]
        for weeks in TRAINING_WINDOWS_WEEKS:
            out += [Candidate(method, weeks, tuple(s)) for s in settings]
    return out


def fixed_candidates() -> list[Candidate]:
    """Every method at its Backtest default, over 12 weeks (prospective: its 8), and random."""
    out = [Candidate(m, 8 if m == "prospective" else 12) for m in FORECAST_METHODS]
    return [*out, Candidate("dbscan", 12), Candidate("random", 12)]


@dataclass
class Scored:
    """Candidates backtested on the same weeks: per week (results) and per candidate (table)."""

    results: pd.DataFrame  # Backtest.results_ rows, `method` holding the candidate's label
    table: pd.DataFrame  # index label; TABLE_COLUMNS
    test_weeks: list[int] = field(default_factory=list)


def backtest_candidates(
    candidates: Sequence[Candidate],
    points: Any,
    times: Any,
    *,
    area: shapely.Geometry | None = None,
    categories: Any = None,
    study_points: Any = None,
    **common: Any,
) -> Scored:
    """Backtest each candidate alone with the common parameters; one refused is noted, not raised.

    A candidate is eligible when it was scored on every test week the protocol allows; one
    whose training window leaves it fewer weeks, or whose parameters its method refuses, is not.
    """
    frames, rows, weeks_seen = [], [], set()
    for candidate in candidates:
        row: dict[str, Any] = {"method": candidate.method, "train_weeks": candidate.train_weeks}
        try:
            bt = candidate.backtest(**common).fit(
                points, times, area=area, categories=categories, study_points=study_points
            )
        except ValueError as exc:
            rows.append(row | _empty_summary() | {"eligible": False, "note": str(exc)})
            continue
        weeks_seen.update(bt.test_weeks_)
        frames.append(bt.results_.assign(method=candidate.label, test_week=bt.test_weeks_))
        summary = bt.summary_.iloc[0].to_dict()
        notes = bt.results_.loc[~bt.results_["evaluable"].astype(bool), "note"]
        note = "; ".join(sorted(set(notes))) if len(notes) else ""
        rows.append(row | summary | {"eligible": True, "note": note, "_weeks": bt.test_weeks_})
    labels = [c.label for c in candidates]
    table = pd.DataFrame(rows, index=pd.Index(labels, name="candidate"))
    all_weeks = sorted(weeks_seen)
    if "_weeks" in table:
        short = table["_weeks"].map(lambda w: isinstance(w, list) and len(w) < len(all_weeks))
        table.loc[short, "eligible"] = False
        table.loc[short, "note"] = table.loc[short].apply(
            lambda r: (
                f"its {r['train_weeks']} training weeks leave only {len(r['_weeks'])} of "
                f"the {len(all_weeks)} test weeks"
            ),
            axis=1,
        )
    table = table.reindex(columns=list(TABLE_COLUMNS))
    table["weeks_evaluated"] = table["weeks_evaluated"].fillna(0).astype(np.int64)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Scored(results, table, all_weeks)


def _empty_summary() -> dict[str, Any]:
    return dict.fromkeys(SUMMARY_COLUMNS, np.nan) | {"weeks_evaluated": 0}


class ForecastChoice(Estimator):
    """Choose the forecast method and parameters on past weeks only (see the module docstring).

    Parameters: coverage and cell_size_m, as the forecast layer flags; tz, whose Mondays start
    the weeks; before, a local date: nothing from it on is used (None: all the data);
    selection_weeks, the whole weeks before it every candidate is scored on; methods, the
    forecast methods searched; confidence and n_resamples of the paired bootstrap; seed.

    Learned by `fit`: table_ (one row per candidate, index label, columns TABLE_COLUMNS and rank),
    results_ (per candidate and selection week), best_ (the best eligible Candidate), chosen_
    (best_, or the baseline when the past cannot tell them apart), baseline_, difference_
    (PairedDifference of best_ minus baseline in PAI), selection_weeks_ and reason_ (in words).
    """

    table_: pd.DataFrame
    results_: pd.DataFrame
    best_: Candidate
    chosen_: Candidate
    baseline_: Candidate
    difference_: PairedDifference
    selection_weeks_: list[int]
    reason_: str

    def __init__(
        self,
        *,
        coverage: float = 0.05,
        cell_size_m: float = 150.0,
        tz: str = DEFAULT_TZ,
        before: Any = None,
        selection_weeks: int = 8,
        methods: Sequence[str] = FORECAST_METHODS,
        confidence: float = 0.95,
        n_resamples: int = 2000,
        seed: int = 0,
    ) -> None:
        self.coverage = coverage
        self.cell_size_m = cell_size_m
        self.tz = tz
        self.before = before
        self.selection_weeks = selection_weeks
        self.methods = methods
        self.confidence = confidence
        self.n_resamples = n_resamples
        self.seed = seed

    def fit(
        self,
        points: Any,
        times: Any,
        area: shapely.Geometry | None = None,
        categories: Any = None,
        study_points: Any = None,
        study_times: Any = None,
    ) -> ForecastChoice:
        """Backtest the search space on the selection weeks and choose; return self.

        study_points (with study_times) stand for the study area when there is no `area` and
        the points are a subset (Backtest.fit); those from `before` on are left out too.
        """
        xy = as_xy(points)
        days = local_days(times, self.tz)
        cats = None if categories is None else np.asarray(categories, dtype=object)
        past = np.ones(len(xy), dtype=bool)
        if self.before is not None:
            past = days < local_day_of(self.before, self.tz)
        if not past.any():
            raise ValueError(f"no incident before {self.before}: nothing to choose from")
        end_week = (int(days[past].max()) + 1) // 7  # the Monday after the last whole week
        first = end_week - int(self.selection_weeks)
        times_past = pd.DatetimeIndex(pd.to_datetime(times, utc=True))[past]
        common = {
            "coverage": self.coverage,
            "cell_size_m": self.cell_size_m,
            "tz": self.tz,
            "test_from": str(week_start(first).date()),
            "test_to": str(week_start(end_week).date()),
            "seed": self.seed,
        }
        study_xy = None
        if study_points is not None:
            study_days = local_days(study_times, self.tz)
            study_xy = as_xy(study_points)
            if self.before is not None:
                study_xy = study_xy[study_days < local_day_of(self.before, self.tz)]
        space = [BASELINE, *(c for c in search_space(self.methods) if c != BASELINE)]
        scored = backtest_candidates(
            space,
            xy[past],
            times_past,
            area=area,
            categories=None if cats is None else cats[past],
            study_points=study_xy,
            **common,
        )
        self._choose(scored, space)
        return self

    def _choose(self, scored: Scored, space: list[Candidate]) -> None:
        table, results = scored.table, scored.results
        baseline = BASELINE.label
        if not table.loc[baseline, "eligible"]:
            raise ValueError(
                f"the baseline ({baseline}) cannot be scored on {self.selection_weeks} weeks "
                f"before {self.before or 'the end'}: {table.loc[baseline, 'note']}; the choice "
                f"needs at least {BASELINE.train_weeks + self.selection_weeks} whole weeks"
            )
        base_rows = results[(results["method"] == baseline) & results["evaluable"].astype(bool)]
        base_weeks = set(base_rows["week_start"])
        for label in table.index[table["eligible"].astype(bool)]:
            mine = results[(results["method"] == label) & results["evaluable"].astype(bool)]
            missing = base_weeks - set(mine["week_start"])
            if missing:
                table.loc[label, "eligible"] = False
                table.loc[label, "note"] = (
                    f"not scored on {len(missing)} of the {len(base_weeks)} weeks; "
                    + str(table.loc[label, "note"])
                ).rstrip("; ")
        order = {c.label: i for i, c in enumerate(space)}
        eligible = table[table["eligible"].astype(bool)]
        ranked = sorted(
            eligible.index,
            key=lambda label: (
                -float(eligible.loc[label, "pai"]),
                -np.nan_to_num(float(eligible.loc[label, "pei_star"]), nan=-np.inf),
                order[label],
            ),
        )
        table["rank"] = pd.Series(range(1, len(ranked) + 1), index=ranked, dtype="Int64")
        by_label = {c.label: c for c in space}
        self.best_ = by_label[ranked[0]]
        self.baseline_ = BASELINE
        self.difference_ = paired_difference(
            results,
            self.best_.label,
            baseline,
            confidence=self.confidence,
            n_resamples=self.n_resamples,
            seed=self.seed,
        )
        sure = self.best_ == BASELINE or self.difference_.low > 0
        self.chosen_ = self.best_ if sure else BASELINE
        self.table_ = table.sort_values("rank", na_position="last")
        self.results_ = results
        self.selection_weeks_ = scored.test_weeks
        self.reason_ = self._reason(sure, len(base_weeks))

    def _reason(self, sure: bool, n_weeks: int) -> str:
        best, base = self.best_.label, BASELINE.label
        d = self.difference_
        pais = self.table_["pai"]
        weeks = f"the {n_weeks} selection weeks {self._span()}"
        if self.best_ == BASELINE:
            return f"{base} scored best on {weeks} (PAI {pais[base]:.2f})"
        interval = (
            f"{d.mean:+.2f} (paired {d.confidence:.0%} interval {d.low:+.2f} to {d.high:+.2f})"
        )
        if sure:
            return (
                f"{best}: PAI {pais[best]:.2f} against {pais[base]:.2f} for {base} on {weeks}, "
                f"{interval}"
            )
        return (
            f"kept {base}: the best, {best}, was {interval} in PAI on {weeks}; too close to "
            "tell apart"
        )

    def _span(self) -> str:
        weeks = self.selection_weeks_
        return f"({week_label(weeks[0])} to {week_label(weeks[-1])})" if weeks else ""


@dataclass
class ChoiceTest:
    """The chosen setting scored once on the test weeks, next to fixed settings."""

    results: pd.DataFrame  # per row label and test week
    table: pd.DataFrame  # index label: TABLE_COLUMNS, role, pai_minus_baseline, low, high
    test_weeks: list[int]


def score_choice(
    chosen: Candidate,
    points: Any,
    times: Any,
    *,
    test_from: Any,
    test_to: Any = None,
    area: shapely.Geometry | None = None,
    categories: Any = None,
    study_points: Any = None,
    fixed: Sequence[Candidate] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    **common: Any,
) -> ChoiceTest:
    """Score the chosen candidate, the baseline and the fixed ones on the test weeks.

    Every one is trained on the weeks before each test week (all of them past the choice's
    data); the paired difference from the baseline is over the weeks both were scored on.
    Polygon methods (DBSCAN) are marked: their coverage is their own.
    """
    others = [c for c in (fixed if fixed is not None else fixed_candidates()) if c != chosen]
    if BASELINE not in others and chosen != BASELINE:
        others.insert(0, BASELINE)
    scored = backtest_candidates(
        [chosen, *others],
        points,
        times,
        area=area,
        categories=categories,
        study_points=study_points,
        test_from=test_from,
        test_to=test_to,
        **common,
    )
    table = scored.table
    table.insert(0, "role", "fixed")
    table.loc[chosen.label, "role"] = "chosen"
    table.loc[table["method"].isin(POLYGON_METHODS), "role"] = "polygons, own coverage"
    for label in table.index:
        d = paired_difference(
            scored.results,
            label,
            BASELINE.label,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=int(common.get("seed", 0)),
        )
        table.loc[label, ["pai_minus_baseline", "low", "high"]] = [d.mean, d.low, d.high]
    return ChoiceTest(scored.results, table, scored.test_weeks)

"""`est evaluate`: which forecast catches next week's incidents, measured on a file's past.

Without --choose it backtests the methods at the parameters given; with --choose it searches
methods and parameters on the weeks before --test-from only, scores the choice once on the test
weeks and can write it as a profile file for `est profiles import` (app.runs.evaluate).
Weeks are counted in the file's time zone: --week-timezone, else the mapping's, else
EST_TIMEZONE.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.common import area_polygon, console, fail, parse_date, read_file_points, reported

if TYPE_CHECKING:
    import pandas as pd

    from app.runs.evaluate import Chosen, Evaluation, Selection
    from clustering.choice import ChoiceTest

# Options that set a Backtest parameter when given (the option's name with _ for -).
_METHOD_OPTIONS = (
    "blend_short_weeks",
    "blend_short_weight",
    "kde_bandwidth_m",
    "kde_kernel",
    "gistar_distance_band_m",
    "gistar_min_incidents",
    "dbscan_eps_m",
    "dbscan_min_samples",
    "prospective_bandwidth_m",
    "prospective_weeks",
    "learned_max_leaf_nodes",
    "learned_retrain_weeks",
)
BASELINE_LABEL = "naive 12 weeks"  # clustering.choice.BASELINE
TOP_CANDIDATES = 12  # rows of the choice printed (choice.csv has them all)
METRICS = ["hit_rate", "pai", "pei_star", "coverage", "weeks_evaluated"]
VERSUS = ["pai_minus_baseline", "low", "high"]
# Short headers, so that the tables fit a terminal; the CSV files keep the column names.
HEADERS = {
    "hit_rate": "hit rate",
    "pei_star": "pei*",
    "coverage": "cover",
    "weeks_evaluated": "weeks",
    "pai_minus_naive": "pai − naive",
    "pai_minus_baseline": "pai − naive 12",
}


def evaluate(
    path: Annotated[Path, typer.Argument(help="Incidents: CSV, GeoJSON or GeoPackage.")],
    mapping: Annotated[str, typer.Option(help="A mapping file or a preset.")] = "est",
    area: Annotated[
        Path | None, typer.Option(help="Study area polygon file; default: cells with incidents.")
    ] = None,
    area_crs: Annotated[
        str | None, typer.Option(help="CRS of the area file, when its .prj is empty or wrong.")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help="Only this category (CODE, or CODE.* with its children).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Only this category group, e.g. andts.")] = None,
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: naive, blend, kde, gistar, dbscan, prospective, learned, "
            "random; default all (with --choose: the forecast methods)."
        ),
    ] = None,
    train_weeks: Annotated[int, typer.Option(min=1, help="Weeks before each test week.")] = 12,
    test_weeks: Annotated[int, typer.Option(min=1, help="Weeks forecast each time.")] = 1,
    step_weeks: Annotated[int, typer.Option(min=1, help="Test every n-th week.")] = 1,
    coverage: Annotated[float, typer.Option(min=0.001, max=1.0, help="Share of area.")] = 0.05,
    cell_size_m: Annotated[float, typer.Option(min=10, help="Grid cell, metres.")] = 150.0,
    test_from: Annotated[
        str | None,
        typer.Option(help="First test week: the Monday on or after this date (local)."),
    ] = None,
    test_to: Annotated[
        str | None, typer.Option(help="Test weeks end by this date (local, exclusive).")
    ] = None,
    blend_short_weeks: Annotated[
        int | None, typer.Option(min=1, help="Blend: the short window, weeks (default 4).")
    ] = None,
    blend_short_weight: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Blend: weight of the short window (default 0.5)."),
    ] = None,
    kde_bandwidth_m: Annotated[
        float | None, typer.Option(min=1, help="KDE: bandwidth, metres (default 400).")
    ] = None,
    kde_kernel: Annotated[
        str | None, typer.Option(help="KDE: quartic (default) or gaussian.")
    ] = None,
    gistar_distance_band_m: Annotated[
        float | None,
        typer.Option("--gistar-band-m", min=1, help="Gi*: distance band, metres (default 400)."),
    ] = None,
    gistar_min_incidents: Annotated[
        int | None, typer.Option(min=1, help="Gi*: fewest incidents to test (default 30).")
    ] = None,
    dbscan_eps_m: Annotated[
        float | None, typer.Option(min=1, help="DBSCAN: eps, metres (default 150).")
    ] = None,
    dbscan_min_samples: Annotated[
        int | None, typer.Option(min=2, help="DBSCAN: core size (default: from the data).")
    ] = None,
    prospective_bandwidth_m: Annotated[
        float | None, typer.Option(min=0, help="Prospective: reach, metres (default 400).")
    ] = None,
    prospective_weeks: Annotated[
        int | None,
        typer.Option(min=1, help="Prospective: weeks back (default 8, at most --train-weeks)."),
    ] = None,
    learned_max_leaf_nodes: Annotated[
        int | None,
        typer.Option("--learned-leaves", min=2, help="Learned: leaves a tree (default 15)."),
    ] = None,
    learned_retrain_weeks: Annotated[
        int | None,
        typer.Option(min=1, help="Learned: retrain every n test weeks (default 4)."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of random and learned.")] = 0,
    choose: Annotated[
        bool,
        typer.Option(
            "--choose",
            help="Choose method and parameters on the weeks before --test-from (or all data).",
        ),
    ] = False,
    selection_weeks: Annotated[
        int, typer.Option(min=1, help="--choose: the weeks every candidate is scored on.")
    ] = 8,
    profile_area: Annotated[
        str | None,
        typer.Option(help="--choose: write the choice as a profile of this area code."),
    ] = None,
    profile_name: Annotated[
        str, typer.Option(help="--choose: the profile's name in that file.")
    ] = "standard",
    since: Annotated[str | None, typer.Option("--from", help="Only data from this date.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Only data before this date.")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of the file's coordinates.")] = None,
    metric_crs: Annotated[str | None, typer.Option(help="CRS to compute in (metres).")] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            "--week-timezone",
            help="Time zone of the file, whose Mondays start the weeks; default: the "
            "mapping's, else EST_TIMEZONE.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the tables and the chart.")] = Path(
        "evaluation"
    ),
) -> None:
    """Backtest forecasts (PAI, hit rate, PEI*) on a file, or choose one on past weeks only."""
    from app.runs.evaluate import choose as run_choice
    from app.runs.evaluate import evaluate as run_backtest
    from app.runs.evaluate import select

    given = {k: v for k, v in locals().items() if k in _METHOD_OPTIONS and v is not None}
    if kde_kernel is not None and kde_kernel not in ("quartic", "gaussian"):
        fail(f"--kde-kernel must be quartic or gaussian, not {kde_kernel!r}")
    chosen_methods = _methods(methods, choose)
    for value, option in ((test_from, "--test-from"), (test_to, "--test-to")):
        parse_date(value, option)  # a clear message now; the backtest reads it as a local date
    if profile_area is not None and not choose:
        fail("--profile-area writes the choice of --choose: give --choose too")
    with reported():
        points = read_file_points(path, mapping, crs, timezone, metric_crs, since, until)
        selection = select(points, category, group)
        polygon = area_polygon(area, points, area_crs) if area is not None else None
        try:
            if choose:
                done = run_choice(
                    selection,
                    out,
                    coverage=coverage,
                    cell_size_m=cell_size_m,
                    selection_weeks=selection_weeks,
                    test_from=test_from,
                    test_to=test_to,
                    methods=chosen_methods,
                    area=polygon,
                    profile_area=profile_area,
                    profile_name=profile_name,
                    category_group=group,
                    seed=seed,
                    title=path.name,
                )
            else:
                result = run_backtest(
                    selection,
                    out,
                    area=polygon,
                    title=path.name,
                    methods=chosen_methods,
                    train_weeks=train_weeks,
                    test_weeks=test_weeks,
                    step_weeks=step_weeks,
                    coverage=coverage,
                    cell_size_m=cell_size_m,
                    test_from=test_from,
                    test_to=test_to,
                    seed=seed,
                    **given,
                )
        except ValueError as exc:  # a window, date or parameter refused, in its own words
            fail(str(exc))
    _print_read(selection)
    if choose:
        _print_choice(done, coverage, cell_size_m, points.tz)
    else:
        title = (
            f"Backtest: train {train_weeks} weeks, test {test_weeks}, coverage {coverage:.0%}, "
            f"cells {cell_size_m:g} m, weeks in {points.tz}"
        )
        _print_backtest(result, title)


def _methods(text: str | None, choose: bool) -> tuple[str, ...] | None:
    """The --methods list, checked; None when not given."""
    from clustering.evaluation import METHODS
    from clustering.forecast import FORECAST_METHODS

    if text is None:
        return None
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    allowed = FORECAST_METHODS if choose else METHODS
    unknown = [m for m in names if m not in allowed]
    if unknown or not names:
        fail(f"--methods: {', '.join(unknown) or 'none given'}; use some of {', '.join(allowed)}")
    return names


def _print_read(selection: Selection) -> None:
    points = selection.points
    console.print(
        f"{len(points.xy)} incidents used ({selection.label}) of {points.read} rows read, "
        f"computed in {points.crs.name}, weeks in {points.tz}",
        highlight=False,
    )
    for reason, n in points.left_out.items():
        console.print(f"  left out: {n} — {reason}", highlight=False)


def _print_backtest(result: Evaluation, title: str) -> None:
    versus = ["pai_minus_naive", "low", "high"] if "pai_minus_naive" in result.summary else []
    console.print(_metrics_table(result.summary[METRICS + versus], title, "method"))
    if len(result.apart):
        apart = "Polygons, each with its own flagged area: not comparable by PAI"
        console.print(_metrics_table(result.apart[METRICS], apart, "method"))
    for note in result.notes:
        console.print(note, highlight=False)
    console.print("wrote " + ", ".join(str(f) for f in result.files), highlight=False)


def _print_choice(done: Chosen, coverage: float, cell_size_m: float, tz: str) -> None:
    choice = done.choice
    table = choice.table_[choice.table_["eligible"].astype(bool)].head(TOP_CANDIDATES)
    title = (
        f"Choice on {len(choice.selection_weeks_)} weeks before the test weeks "
        f"(coverage {coverage:.0%}, cells {cell_size_m:g} m, weeks in {tz}); best first"
    )
    console.print(_metrics_table(table[["rank", *METRICS]], title, "candidate"))
    console.print(f"chosen: {choice.chosen_.label} — {choice.reason_}", highlight=False)
    if done.test is not None:
        _print_test(done.test, choice.chosen_.label)
    if done.profile is not None:
        console.print(f"profile: {done.profile} (est profiles import {done.profile})")
        console.print(f"or only the forecast: {done.profile_command}", highlight=False)
    console.print("wrote " + ", ".join(str(f) for f in done.files), highlight=False)


def _print_test(test: ChoiceTest, chosen: str) -> None:
    table = test.table.rename(index={chosen: f"chosen: {chosen}"})
    apart = table["role"] != "fixed"
    apart &= table["role"] != "chosen"
    weeks = f"the {len(test.test_weeks)} test weeks" if test.test_weeks else "no test week"
    console.print(_metrics_table(table[~apart][METRICS + VERSUS], f"On {weeks}", "candidate"))
    if apart.any():
        title = "Polygons, each with its own flagged area: not comparable by PAI"
        console.print(_metrics_table(table[apart][METRICS], title, "candidate"))
    row = test.table.loc[chosen]
    if chosen == BASELINE_LABEL:
        console.print("the chosen setting is the baseline, naive counts over 12 weeks")
        return
    console.print(
        f"chosen minus naive 12 weeks on the test weeks: PAI {row['pai_minus_baseline']:+.3f} "
        f"(paired 95% interval {row['low']:+.3f} to {row['high']:+.3f})",
        highlight=False,
    )


def _metrics_table(frame: pd.DataFrame, title: str, index: str) -> Table:
    """A table of metrics: numbers to 3 decimals, counts whole, text as it is."""
    table = Table(index, *(HEADERS.get(str(c), str(c)) for c in frame.columns), title=title)
    for name, row in frame.iterrows():
        table.add_row(str(name), *(_cell(c, v) for c, v in row.items()))
    return table


def _cell(column: Any, value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "" if value is None else str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:  # NaN
        return "—"
    if column in ("weeks_evaluated", "train_weeks", "rank"):
        return str(int(number))
    return f"{number:.3f}"

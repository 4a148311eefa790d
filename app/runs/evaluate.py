"""`est evaluate`: backtests of the hotspot methods on a file, and the choice of a forecast.

Reads the file like `est analyze`, optionally keeps one category or group (the study area is
still the cells of every incident of the file, or the polygon file given), and either

- backtests the methods at the given parameters (clustering.evaluation.Backtest) in the file's
  time zone and writes summary.csv (method × metrics, and each method's paired difference in PAI
  from naive counts), weeks.csv (method × test week) and pai.png; or
- chooses the forecast method and parameters on the weeks before --test-from only
  (clustering.choice.ForecastChoice), scores the choice once on the test weeks next to fixed
  settings (clustering.choice.score_choice), and writes choice.csv (every candidate), summary.csv,
  weeks.csv, pai.png and, given an area code, the choice as a profile file that `est profiles
  import` reads.

Methods that flag polygons (DBSCAN) are kept apart everywhere: their flagged area is their own,
not the coverage, so their PAI does not rank against the cells'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.errors import InvalidInput
from app.runs.analyze import Points

if TYPE_CHECKING:
    import pandas as pd
    import shapely

    from clustering.choice import ChoiceTest, ForecastChoice


@dataclass
class Selection:
    """The incidents evaluated (one category or group, or all) and the study area's points."""

    points: Points
    label: str  # "all incidents", "category tillgrepp.*", "group andts"
    study: Points | None = None  # the whole file, when the points are a part of it


@dataclass
class Evaluation:
    """What a backtest wrote: the summary of the comparable methods and those kept apart."""

    summary: pd.DataFrame  # index method; metrics and pai_minus_naive, low, high
    apart: pd.DataFrame  # polygon methods: their own coverage
    files: list[Path]
    notes: list[str] = field(default_factory=list)


@dataclass
class Chosen:
    """What a choice wrote: the choice, its test (with --test-from) and the profile file."""

    choice: ForecastChoice
    test: ChoiceTest | None
    files: list[Path]
    profile: Path | None = None
    profile_command: str = ""


def read_area(path: Path, points: Points, area_crs: str | None = None) -> shapely.Geometry:
    """The union of a polygon file's features in the points' CRS.

    A file without a CRS (a shapefile whose .prj is missing or empty) needs `area_crs`, which
    also overrides a wrong one.
    """
    import geopandas as gpd
    import shapely

    from geo.crs import parse_crs

    frame = gpd.read_file(path)
    if area_crs is not None:
        frame = frame.set_crs(parse_crs(area_crs), allow_override=True)
    elif frame.crs is None:
        raise InvalidInput(
            f"--area: {path.name} says nothing of its CRS (its .prj is missing or empty); "
            "give --area-crs, e.g. EPSG:3006"
        )
    union = shapely.union_all(frame.to_crs(points.crs).geometry.values)
    if union.is_empty:
        raise InvalidInput(f"--area: {path.name} holds no polygon")
    return union


def select(points: Points, category: str | None, group: str | None) -> Selection:
    """Keep the incidents of a category (CODE, or CODE.* with its subcategories) or a group."""
    from app.core.taxonomy import load_taxonomy

    if category is None and group is None:
        return Selection(points, "all incidents")
    if category is not None and group is not None:
        raise InvalidInput("give --category or --group, not both")
    taxonomy = load_taxonomy()
    try:
        if category is not None:
            codes, label = taxonomy.expand(category), f"category {category}"
        else:
            assert group is not None
            codes, label = taxonomy.group_codes(group), f"group {group}"
    except (KeyError, ValueError) as exc:
        option = "--category" if category is not None else "--group"
        raise InvalidInput(f"{option}: {str(exc).strip(chr(34))}") from None
    keep = np.isin(points.category.astype(str), codes)
    if not keep.any():
        raise InvalidInput(f"the file holds no incident of {label}")
    subset = Points(
        xy=points.xy[keep],
        time=points.time[keep],
        category=points.category[keep],
        crs=points.crs,
        tz=points.tz,
        read=points.read,
        skipped=points.skipped,
        left_out=points.left_out | {f"not in {label}": int((~keep).sum())},
    )
    return Selection(subset, label, points)


def evaluate(
    selection: Selection,
    out: Path,
    *,
    area: shapely.Geometry | None = None,
    title: str = "",
    **backtest: Any,
) -> Evaluation:
    """Backtest the methods on the incidents and write the tables and the chart into `out`.

    `backtest` holds the Backtest parameters given (train_weeks, coverage, methods, …); when no
    methods are named, the learned one is left out if the training window is too short for it.
    """
    from clustering.evaluation import LEARNED_MIN_HISTORY, METHODS, Backtest

    points, notes = selection.points, []
    methods = backtest.pop("methods", None)
    train_weeks = int(backtest.get("train_weeks", 12))
    if methods is None:
        methods = METHODS
        if train_weeks < LEARNED_MIN_HISTORY + int(backtest.get("test_weeks", 1)):
            methods = tuple(m for m in METHODS if m != "learned")
            notes.append(f"learned left out: it needs more than {train_weeks} training weeks")
    # prospective hotspotting looks 8 weeks back, but never past the training window
    backtest.setdefault("prospective_weeks", min(8, train_weeks))
    model = Backtest(tz=points.tz, methods=methods, **backtest)
    model.fit(
        points.xy,
        points.time,
        area=area,
        categories=points.category,
        study_points=None if selection.study is None else selection.study.xy,
    )
    summary, apart = split_summary(model.summary_, model.results_, seed=model.seed)
    files = write_results(model.results_, summary, apart, out, title)
    return Evaluation(summary, apart, files, notes)


def split_summary(
    summary: pd.DataFrame, results: pd.DataFrame, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparable methods with their paired difference in PAI from naive counts, and the
    polygon methods apart."""
    from clustering.evaluation import POLYGON_METHODS, paired_difference

    apart = summary[summary.index.isin(POLYGON_METHODS)]
    cells = summary[~summary.index.isin(POLYGON_METHODS)].copy()
    if "naive" in cells.index:
        for method in cells.index:
            d = paired_difference(results, str(method), "naive", seed=seed)
            cells.loc[method, ["pai_minus_naive", "low", "high"]] = [d.mean, d.low, d.high]
    return cells, apart


def write_results(
    results: pd.DataFrame, summary: pd.DataFrame, apart: pd.DataFrame, out: Path, title: str
) -> list[Path]:
    """Write summary.csv (comparable methods, then those apart), weeks.csv and pai.png."""
    import pandas as pd

    from app.reports.charts import backtest_chart, results_table_csv

    out.mkdir(parents=True, exist_ok=True)
    both = pd.concat([summary.assign(apart=False), apart.assign(apart=True)])
    both.index.name = summary.index.name or "method"
    own = {str(m): f"flags {row['coverage']:.1%}, its own area" for m, row in apart.iterrows()}
    return [
        results_table_csv(both, out / "summary.csv"),
        results_table_csv(results, out / "weeks.csv"),
        backtest_chart(results, out / "pai.png", title=title, apart=own),
    ]


def choose(
    selection: Selection,
    out: Path,
    *,
    coverage: float,
    cell_size_m: float,
    selection_weeks: int,
    test_from: str | None,
    test_to: str | None,
    methods: tuple[str, ...] | None = None,
    area: shapely.Geometry | None = None,
    profile_area: str | None = None,
    profile_name: str = "standard",
    category_group: str | None = None,
    seed: int = 0,
    title: str = "",
) -> Chosen:
    """Choose the forecast on the weeks before test_from, score it on the test weeks, write."""
    from app.reports.charts import results_table_csv
    from clustering.choice import ForecastChoice, score_choice
    from clustering.forecast import FORECAST_METHODS

    points = selection.points
    common: dict[str, Any] = {
        "coverage": coverage,
        "cell_size_m": cell_size_m,
        "tz": points.tz,
        "seed": seed,
    }
    choice = ForecastChoice(
        before=test_from,
        selection_weeks=selection_weeks,
        methods=methods or FORECAST_METHODS,
        **common,
    )
    study = selection.study
    study_xy = None if study is None else study.xy
    choice.fit(
        points.xy,
        points.time,
        area=area,
        categories=points.category,
        study_points=study_xy,
        study_times=None if study is None else study.time,
    )
    out.mkdir(parents=True, exist_ok=True)
    files = [results_table_csv(choice.table_, out / "choice.csv")]
    test = None
    if test_from is not None:
        test = score_choice(
            choice.chosen_,
            points.xy,
            points.time,
            test_from=test_from,
            test_to=test_to,
            area=area,
            categories=points.category,
            study_points=study_xy,
            **common,
        )
        files += _write_test(test, out, title)
    chosen = Chosen(choice, test, files)
    if profile_area is not None:
        forecast = choice.chosen_.forecast_params(cell_size_m) | {"coverage": coverage}
        document = profile_document(forecast, profile_area, profile_name, category_group)
        chosen.profile = write_profile(document, out / "profile.yaml")
        chosen.profile_command = profile_command(profile_area, profile_name, forecast)
        files.append(chosen.profile)
    return chosen


def _write_test(test: ChoiceTest, out: Path, title: str) -> list[Path]:
    """The test table, weeks and chart of a choice."""
    from clustering.evaluation import POLYGON_METHODS

    apart_rows = test.table["method"].isin(POLYGON_METHODS)
    return write_results(test.results, test.table[~apart_rows], test.table[apart_rows], out, title)


def profile_document(
    forecast: dict[str, Any], area_code: str, name: str, category_group: str | None
) -> dict[str, Any]:
    """A profile with the chosen forecast settings (every other setting the default), as `est
    profiles import` reads it; validated the way a stored one is."""
    from app.runs.profiles import ProfileSettings, check_name, parse_settings

    check_name(name)
    document = ProfileSettings().model_dump(mode="json")
    document["methods"]["forecast"] |= forecast
    if category_group is not None:
        document["category_group"] = category_group
    settings = parse_settings(document, "the chosen profile")
    return {"area": area_code, "name": name, **settings.model_dump(mode="json")}


def write_profile(document: dict[str, Any], path: Path) -> Path:
    """Write a profile document as YAML."""
    import yaml

    header = "# est profiles import " + path.name + "\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def profile_command(area_code: str, name: str, forecast: dict[str, Any]) -> str:
    """The `est profiles set` line that changes only the forecast of an existing profile."""
    fields = " ".join(f"methods.forecast.{k}={v}" for k, v in forecast.items())
    return f"est profiles set {area_code} {name} {fields}"

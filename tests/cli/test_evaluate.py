"""`est evaluate`: a backtest from a file as tables, CSV and a chart; a choice as a profile."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from clustering.synthetic import HotspotSpec, generate_incidents
from tests.cli.test_analyze import _write_est_csv

runner = CliRunner()


def test_evaluate_writes_the_table_csv_and_chart(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "eval"
    _write_est_csv(src, 3000)  # two persistent hotspots over 8 weeks
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(src),
            "--train-weeks",
            "3",
            "--coverage",
            "0.05",
            "--cell-size-m",
            "100",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) >= {"naive", "kde", "gistar", "dbscan", "prospective", "random"}
    # the hotspots persist: counting last weeks' incidents beats flagging at random by far
    assert float(rows["naive"]["pai"]) > 3 * float(rows["random"]["pai"])
    assert (out / "pai.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "naive" in result.output and "pai" in result.output


def _evaluate(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["evaluate", *args])
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())  # Rich wraps at the terminal


def test_dbscan_is_shown_apart_with_its_own_coverage(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "eval"
    _write_est_csv(src, 3000)
    code, output = _evaluate(
        str(src), "--train-weeks", "3", "--methods", "naive,dbscan,random", "--out", str(out)
    )
    assert code == 0, output
    main, apart = output.split("Polygons, each with its own flagged area")
    assert "dbscan" not in main and "dbscan" in apart
    rows = {r["method"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["dbscan"]["apart"] == "True" and rows["naive"]["apart"] == "False"
    assert float(rows["dbscan"]["coverage"]) < 0.05 - 1e-9  # its polygons' own share


def _long_csv(path: Path, weeks: int = 20, n: int = 4000) -> None:
    """Two persistent hotspots in SWEREF 99 TM, `weeks` weeks from Monday 5 January 2026."""
    specs = [
        HotspotSpec(393_760, 6_189_485, 60, categories={"skadegorelse.klotter": 1}),
        HotspotSpec(395_000, 6_190_500, 80, categories={"tillgrepp.cykelstold": 1}),
    ]
    inc = generate_incidents(
        specs, n, start=datetime(2026, 1, 5, tzinfo=UTC), weeks=weeks, background_share=0.3,
        bounds=(390_000, 6_186_000, 398_000, 6_194_000),
        background_categories={"ovrigt": 1, "tillgrepp.cykelstold": 1}, seed=4,
    )  # fmt: skip
    lines = ["external_id;category;occurred_from;occurred_to;x;y;location_precision;description"]
    for i in range(len(inc)):
        t = inc.time[i].astype("datetime64[s]").astype(datetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"a{i};{inc.category[i]};{t};;{inc.x[i]:.1f};{inc.y[i]:.1f};address;")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_choose_writes_the_choice_as_a_profile_that_profiles_import_reads(tmp_path: Path) -> None:
    from app.cli.profiles import _validated
    from clustering.choice import search_space

    src, out = tmp_path / "in.csv", tmp_path / "eval"
    _long_csv(src)
    code, output = _evaluate(
        str(src), "--choose", "--methods", "naive,kde", "--test-from", "2026-04-27",
        "--selection-weeks", "4", "--cell-size-m", "250", "--group", "tillgrepp",
        "--profile-area", "1285", "--profile-name", "prognos", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    chosen = output.split("chosen: ")[1].split(" — ")[0]
    assert chosen in {c.label for c in search_space(("naive", "kde"))}
    assert "On the 4 test weeks" in output
    if chosen == "naive 12 weeks":
        assert "the chosen setting is the baseline" in output
    else:
        assert "chosen minus naive 12 weeks on the test weeks: PAI" in output
    document = yaml.safe_load((out / "profile.yaml").read_text())
    [(area, name, settings)] = _validated(document)  # what `est profiles import` checks
    assert (area, name, settings.category_group) == ("1285", "prognos", "tillgrepp")
    forecast = settings.methods.forecast
    assert (forecast.method, forecast.cell_size_m, forecast.coverage) == (
        chosen.split()[0],
        250.0,
        0.05,
    )
    assert f"{forecast.weeks} weeks" in chosen
    candidates = {r["candidate"]: r for r in csv.DictReader((out / "choice.csv").open())}
    assert len(candidates) == len(search_space(("naive", "kde")))
    assert candidates[chosen]["rank"] in ("1", "") or chosen == "naive 12 weeks"
    assert "est profiles set 1285 prognos methods.forecast.method=" in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--methods", "naive,magic"], "--methods: magic"),
        (["--choose", "--methods", "dbscan"], "--methods: dbscan"),
        (["--category", "nosuch"], "--category"),
        (["--group", "nosuch"], "--group"),
        (["--kde-kernel", "box"], "--kde-kernel"),
        (["--test-from", "soon"], "--test-from"),
        (["--test-from", "2030-01-05"], "a test week between 2030-01-05"),
        (["--from", "yesterday"], "--from"),
        (["--profile-area", "1285"], "give --choose too"),
        (["--area", "missing.geojson"], "--area: no file"),
        (["--train-weeks", "30"], "the backtest needs train_weeks"),
    ],
)
def test_bad_input_is_a_message_naming_the_option(
    tmp_path: Path, args: list[str], says: str
) -> None:
    src = tmp_path / "in.csv"
    _write_est_csv(src, 300)
    code, output = _evaluate(str(src), "--out", str(tmp_path / "eval"), *args)
    assert code == 1 and "error:" in output and says in output, output


def test_an_area_file_without_a_crs_needs_area_crs(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    src, shp = tmp_path / "in.csv", tmp_path / "area.shp"
    _write_est_csv(src, 3000)
    gpd.GeoDataFrame(geometry=[shapely.box(390_000, 6_186_000, 398_000, 6_194_000)]).to_file(shp)
    assert not shp.with_suffix(".prj").exists()
    args = [str(src), "--area", str(shp), "--train-weeks", "3", "--methods", "naive"]
    code, output = _evaluate(*args, "--out", str(tmp_path / "a"))
    assert code == 1 and "--area-crs" in output
    code, output = _evaluate(*args, "--area-crs", "EPSG:3006", "--out", str(tmp_path / "b"))
    assert code == 0, output


def test_the_rows_left_out_are_counted_by_reason_and_from_keeps_its_offset(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    _write_est_csv(src, 3000)  # 2026-09-07 to 2026-11-01, times in UTC ("Z")
    rows = src.read_text(encoding="utf-8").splitlines()
    times = [r.split(";")[2] for r in rows[1:]]
    rows += [
        "gap1;ovrigt;2026-03-29T02:30:00;;13.3;55.8;address;",  # not a time in Stockholm
        "gap2;ovrigt;2026-03-29 02:10;;13.3;55.8;address;",
        "nowhere;ovrigt;2026-09-20T12:00:00Z;;;;address;",
    ]
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    since = "2026-09-14T00:00:00+02:00"  # 13 September 22:00 UTC, not 14 September 00:00
    cut = datetime(2026, 9, 13, 22, tzinfo=UTC)
    before = sum(datetime.fromisoformat(t.replace("Z", "+00:00")) < cut for t in times)
    code, output = _evaluate(
        str(src), "--from", since, "--train-weeks", "2", "--methods", "naive",
        "--out", str(tmp_path / "eval"),
    )  # fmt: skip
    assert code == 0, output
    assert (
        "left out: 2 — occurred_from: … does not exist in Europe/Stockholm (DST change)" in output
    )
    assert "left out: 1 — no location" in output
    assert f"left out: {before} — outside --from/--to" in output

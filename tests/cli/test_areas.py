"""`est areas load --tatorter`: tätort boundaries from a file laid out as SCB's, as areas of
kind tatort that are drawn but never computed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from app.cli import app
from tests.cli.test_cli import cli_env  # noqa: F401 (the fixture)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_env", "no_tatorter")


def said(result: Result) -> str:
    """The command's output with Rich's line breaks undone."""
    return " ".join(result.output.split())


def centre(engine: Engine) -> tuple[float, float]:
    """A point inside Eslöv (1285), SWEREF 99 TM."""
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                "FROM est.area WHERE code = '1285') s"
            )
        ).one()
    return float(x), float(y)


def write(path: Path, rows: list[dict[str, object]], layer: str = "Tatorter_1960_2020") -> Path:
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=3006)
    frame.to_file(path, layer=layer, driver="GPKG")
    return path


@pytest.fixture()
def no_tatorter(system_engine: Engine) -> Iterator[None]:
    """Leave the session's database without the tätorter a test loads."""
    yield
    with system_engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM est.area_version WHERE area_id IN "
                "(SELECT id FROM est.area WHERE kind = 'tatort')"
            )
        )
        conn.execute(text("DELETE FROM est.area WHERE kind = 'tatort'"))


def test_the_latest_year_of_each_tatort_is_loaded_in_one_piece_and_gets_no_profile(
    system_engine: Engine, tmp_path: Path
) -> None:
    x, y = centre(system_engine)
    old = shapely.box(x - 900, y - 900, x + 900, y + 900)
    west, east = (
        shapely.box(x - 600, y - 500, x, y + 500),
        shapely.box(x + 200, y - 300, x + 700, y),
    )
    other = shapely.box(x + 2000, y + 2000, x + 2600, y + 2400)
    rows: list[dict[str, object]] = [
        {"TATORTSKOD": "T9001", "TATORT": "Provby", "REFERENSAR": 2015, "geometry": old},
        {"TATORTSKOD": "T9001", "TATORT": "Provby", "REFERENSAR": 2020, "geometry": west},
        {"TATORTSKOD": "T9001", "TATORT": "Provby", "REFERENSAR": 2020, "geometry": east},
        {"TATORTSKOD": "9002", "TATORT": "Lillorten", "REFERENSAR": 2020, "geometry": other},
    ]
    path = write(tmp_path / "tatorter.gpkg", rows)
    result = runner.invoke(app, ["areas", "load", "--tatorter", str(path)])
    assert result.exit_code == 0, result.output
    assert "tatorter.gpkg" in said(result)
    with system_engine.connect() as conn:
        found = {
            r.code: r
            for r in conn.execute(
                text(
                    "SELECT code, name, ST_Area(geom) AS m2, ST_NumGeometries(geom) AS parts "
                    "FROM est.area WHERE kind = 'tatort'"
                )
            )
        }
        profiles = conn.scalar(
            text(
                "SELECT count(*) FROM est.analysis_profile p JOIN est.area a "
                "ON a.id = p.area_id WHERE a.kind = 'tatort'"
            )
        )
    assert set(found) == {"T9001", "T9002"}  # 9002 got SCB's T: never a kommun's code
    assert found["T9001"].name == "Provby" and found["T9001"].parts == 2
    assert found["T9001"].m2 == pytest.approx(west.area + east.area)  # 2020's, not 2015's
    assert found["T9002"].name == "Lillorten" and found["T9002"].m2 == pytest.approx(other.area)
    assert profiles == 0
    # the 2015 delimitation, asked for by year, replaces it as a new version
    again = runner.invoke(app, ["areas", "load", "--tatorter", str(path), "--tatort-year", "2015"])
    assert again.exit_code == 0, again.output
    with system_engine.connect() as conn:
        m2, version = conn.execute(
            text("SELECT ST_Area(geom), version FROM est.area WHERE code = 'T9001'")
        ).one()
        codes = conn.scalars(text("SELECT code FROM est.area WHERE kind = 'tatort'")).all()
    assert m2 == pytest.approx(old.area) and version == 2
    assert sorted(codes) == ["T9001", "T9002"]  # T9002 is not in 2015's file, and is kept


def test_a_tatort_file_that_cannot_be_read_as_one_is_a_clear_message(
    system_engine: Engine, tmp_path: Path
) -> None:
    x, y = centre(system_engine)
    square = shapely.box(x, y, x + 500, y + 500)
    no_code = write(tmp_path / "no_code.gpkg", [{"namn": "Provby", "geometry": square}])
    result = runner.invoke(app, ["areas", "load", "--tatorter", str(no_code)])
    assert result.exit_code == 1
    assert "no column for the tätort's code" in said(result) and "namn" in said(result)
    two = write(
        tmp_path / "two.gpkg",
        [
            {"kod": "T1", "namn": "Provby", "geometry": square},
            {"kod": "T1", "namn": "Annanby", "geometry": square},
        ],
    )
    result = runner.invoke(app, ["areas", "load", "--tatorter", str(two)])
    assert result.exit_code == 1 and "T1 is given to Annanby, Provby" in said(result)
    year = write(
        tmp_path / "year.gpkg", [{"kod": "T1", "namn": "P", "ar": 2020, "geometry": square}]
    )
    result = runner.invoke(app, ["areas", "load", "--tatorter", str(year), "--tatort-year", "1999"])
    assert result.exit_code == 1 and "no tätorter of 1999; it has 2020" in said(result)
    missing = runner.invoke(app, ["areas", "load", "--tatorter", str(tmp_path / "none.gpkg")])
    assert missing.exit_code == 1 and "does not exist" in said(missing)
    with system_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM est.area WHERE kind = 'tatort'")) == 0

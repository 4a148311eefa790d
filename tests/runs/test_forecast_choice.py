"""The forecast a run computes is the profile's method, also the ones `est evaluate --choose`
adds (learned, blend, kde, Gi*), on the analyst grid and on the viewers' shown counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
import yaml
from sqlalchemy import Engine, create_engine, pool, text
from typer.testing import CliRunner

from app.cli import app
from app.ingest.store import upsert_incidents
from app.ops.demo import ensure_organisation
from app.runs import recompute as runs
from app.runs.inputs import load_area
from app.runs.profiles import (
    ForecastSettings,
    Methods,
    ProfileSettings,
    ensure_default_profiles,
    find_profile,
    parse_settings,
    save_profile,
)
from app.settings import Settings
from clustering.synthetic import HotspotSpec, generate_incidents
from tests.cli.test_cli import cli_env  # noqa: F401 (a fixture)
from tests.runs.test_recompute import _records

TZ = "Europe/Stockholm"
AREA = "1273"  # Osby: no other test stores incidents there
RUN_MONDAY = date(2026, 11, 16)  # ISO week 47
WEEKS = 20
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
runner = CliRunner()


@dataclass(frozen=True)
class Place:
    """Osby with one hotspot that never moves, in the 20 weeks up to the end of week 47."""

    hotspot: tuple[float, float]
    xy: np.ndarray
    times: np.ndarray
    categories: np.ndarray


@pytest.fixture(scope="module")
def place(settings: Settings) -> Iterator[Place]:
    engine = create_engine(settings.role_url("est_system"), poolclass=pool.NullPool)
    with engine.begin() as conn:
        ensure_default_profiles(conn)
        area = load_area(conn, AREA).geom
        c = shapely.point_on_surface(area)
        hotspot = (c.x, c.y)
        start = datetime(2026, 11, 23, tzinfo=ZoneInfo(TZ)) - timedelta(weeks=WEEKS)
        made = generate_incidents(
            [HotspotSpec(*hotspot, sigma_m=50, categories={"skadegorelse.klotter": 1})],
            1600,
            start=start,
            weeks=WEEKS,
            background_share=0.5,
            background_area=area.buffer(-200),
            background_categories={"skadegorelse.klotter": 1, "tillgrepp.cykelstold": 1},
            seed=11,
        )
        org = ensure_organisation(conn, "forecast-test", "Osby kommun (test)", "kommun")
        upsert_incidents(conn, org, 3006, _records(made.xy, made.time, made.category, "f"))
    yield Place(hotspot, made.xy, made.time, made.category)
    engine.dispose()


def _profile(engine: Engine, forecast: ForecastSettings) -> runs.Profile:
    settings = ProfileSettings(methods=Methods(forecast=forecast))
    with engine.begin() as conn:
        profile, _ = save_profile(
            conn, AREA, f"f-{uuid.uuid4().hex[:8]}", settings, organisation_id=None, changed_by="t"
        )
    return profile


def _run(engine: Engine, profile: runs.Profile) -> runs.Outcome:
    period = runs.RunPeriod.week(RUN_MONDAY, TZ)
    return runs.recompute(engine, AREA, profile, period, force=True, now=NOW)


def _hot_cell(place: Place, size: float) -> tuple[int, int]:
    return int(place.hotspot[0] // size), int(place.hotspot[1] // size)


def _published(engine: Engine, run_id: int) -> tuple[dict, set, set]:
    """The run's parameters, its flagged analyst cells and its viewer forecast cells."""
    with engine.connect() as conn:
        parameters = conn.scalar(
            text("SELECT parameters FROM est.hotspot_run WHERE id = :id"), {"id": run_id}
        )
        flagged = conn.execute(
            text("SELECT ix, iy FROM est.forecast_cell WHERE run_id = :id AND flagged"),
            {"id": run_id},
        ).all()
        viewer = conn.execute(
            text("SELECT ix, iy FROM est.viewer_cell WHERE run_id = :id AND layer = 'forecast'"),
            {"id": run_id},
        ).all()
    return parameters, {tuple(r) for r in flagged}, {tuple(r) for r in viewer}


@pytest.mark.parametrize(
    "forecast",
    [
        ForecastSettings(method="learned", weeks=16, max_leaf_nodes=7),
        ForecastSettings(method="blend", weeks=12, short_weeks=2, short_weight=0.25),
        ForecastSettings(method="kde", weeks=8, bandwidth_m=300),
        ForecastSettings(method="gistar", weeks=8, distance_band_m=300),
    ],
    ids=lambda f: f.method,
)
def test_a_run_forecasts_with_the_profiles_method_and_flags_the_hotspot(
    system_engine: Engine, place: Place, forecast: ForecastSettings
) -> None:
    outcome = _run(system_engine, _profile(system_engine, forecast))
    assert outcome.status == "succeeded", outcome
    parameters, flagged, viewer = _published(system_engine, outcome.run_id)
    recorded = parameters["forecast"]
    assert recorded["method"] == forecast.method and recorded["weeks"] == forecast.weeks
    own = {"learned": "max_leaf_nodes", "blend": "short_weight", "kde": "bandwidth_m",
           "gistar": "distance_band_m"}[forecast.method]  # fmt: skip
    assert recorded[own] == getattr(forecast, own)
    assert _hot_cell(place, forecast.cell_size_m) in flagged
    assert viewer  # the viewers' version, from shown counts only


def test_profiles_without_the_new_fields_read_as_before() -> None:
    old = {"methods": {"forecast": {"method": "naive", "weeks": 6, "bandwidth_m": 400}}}
    forecast = parse_settings(old).methods.forecast
    assert (forecast.method, forecast.weeks, forecast.bandwidth_m) == ("naive", 6, 400.0)
    assert forecast.kernel == "quartic" and forecast.seed == 0
    assert forecast.estimator().method_params() == {
        "method": "naive",
        "cell_size_m": 250.0,
        "weeks": 6,
    }
    with pytest.raises(Exception, match="at least 5 weeks"):
        parse_settings({"methods": {"forecast": {"method": "learned", "weeks": 4}}})


def test_the_default_prospective_forecast_records_what_it_did_before(
    system_engine: Engine, place: Place
) -> None:
    with system_engine.connect() as conn:
        profile = runs.default_profile(conn, AREA)
    outcome = _run(system_engine, profile)
    parameters, flagged, _ = _published(system_engine, outcome.run_id)
    assert parameters["forecast"] == {
        "method": "prospective",
        "cell_size_m": 250.0,
        "weeks": 8,
        "bandwidth_m": 500.0,
        "coverage": 0.05,
    }
    assert _hot_cell(place, 250.0) in flagged


@pytest.mark.usefixtures("cli_env")
def test_a_choice_imported_with_est_profiles_import_is_what_the_run_computes(
    system_engine: Engine, place: Place, tmp_path: Path
) -> None:
    src, out = tmp_path / "osby.csv", tmp_path / "eval"
    lines = ["external_id;category;occurred_from;occurred_to;x;y;location_precision;description"]
    for i, ((x, y), t, cat) in enumerate(zip(place.xy, place.times, place.categories, strict=True)):
        stamp = t.astype("datetime64[s]").astype(datetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"f{i};{cat};{stamp};;{x:.1f};{y:.1f};address;")
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    name = f"valt-{uuid.uuid4().hex[:6]}"
    chosen = runner.invoke(
        app,
        ["evaluate", str(src), "--choose", "--methods", "naive,blend,learned",
         "--cell-size-m", "250", "--metric-crs", "EPSG:3006", "--selection-weeks", "4",
         "--profile-area", AREA, "--profile-name", name, "--out", str(out)],
    )  # fmt: skip
    assert chosen.exit_code == 0, chosen.output
    imported = runner.invoke(app, ["profiles", "import", str(out / "profile.yaml")])
    assert imported.exit_code == 0, imported.output
    with system_engine.connect() as conn:
        profile = find_profile(conn, AREA, name, None)
    assert profile is not None
    written = yaml.safe_load((out / "profile.yaml").read_text())["methods"]["forecast"]
    assert profile.settings.methods.forecast.model_dump() == written
    outcome = _run(system_engine, profile)
    assert outcome.status == "succeeded", outcome
    parameters, flagged, _ = _published(system_engine, outcome.run_id)
    assert parameters["forecast"]["method"] == written["method"]
    assert {k: written[k] for k in parameters["forecast"]} == parameters["forecast"]
    assert _hot_cell(place, 250.0) in flagged

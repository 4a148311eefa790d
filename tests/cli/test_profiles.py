"""`est profiles` against the test database: list, show, set by dotted path, import all or none."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from app.cli import app
from app.runs.profiles import Profile, ensure_default_profiles, find_profile
from app.settings import Settings, get_settings

runner = CliRunner()
QUIET_AREA = "2584"  # Kiruna: no other test computes anything there


@pytest.fixture()
def cli_env(
    settings: Settings, world: object, system_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the CLI at the session's database, whose areas have their default profiles."""
    with system_engine.begin() as conn:
        ensure_default_profiles(conn)
    monkeypatch.setenv("EST_DATABASE_URL", settings.database_url)
    for name in ("EST_APP_DATABASE_URL", "EST_OWNER_DATABASE_URL", "EST_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["profiles", *args])
    return result.exit_code, " ".join(result.output.split())  # Rich wraps at the terminal


def _name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def _profile(system_engine: Engine, area: str, name: str, org: str | None) -> Profile | None:
    """A stored profile, or None."""
    with system_engine.connect() as conn:
        org_id = (
            conn.scalar(text("SELECT id FROM est.organisation WHERE code = :c"), {"c": org})
            if org
            else None
        )
        return find_profile(conn, area, name, org_id)


def _stored(system_engine: Engine, area: str, name: str, org: str | None) -> int | None:
    """The version of a stored profile, or None."""
    found = _profile(system_engine, area, name, org)
    return found.version if found is not None else None


def test_list_shows_the_default_profile_of_an_area(cli_env: None) -> None:
    code, out = _run("list", "--area", "1285")
    assert code == 0, out
    assert "│ 1285 │ — │ standard │" in out and "│ all │ 4 │ 250 m │" in out


def test_show_prints_the_document_as_yaml_and_the_versions(cli_env: None) -> None:
    result = runner.invoke(app, ["profiles", "show", "1285"])
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(result.output.split("Versions")[0])
    assert document["window_weeks"] == 4 and document["methods"]["dbscan"]["eps_m"] == 150
    assert "changed_by" in result.output and "changed_at" in result.output


def test_set_changes_fields_by_dotted_path_as_a_new_version(
    cli_env: None, system_engine: Engine
) -> None:
    name = _name()
    args = ("set", "1285", name, "--org", "kommun-1285")
    code, out = _run(*args, "window_weeks=6", "methods.dbscan.eps_m=200", "category_group=andts")
    assert code == 0 and f"created 1285/{name} (kommun-1285), version 1" in out, out
    code, out = _run(*args, "methods.kde.shares=[0.5, 0.8]")
    assert code == 0 and "changed" in out and "version 2" in out, out
    assert "unchanged" in _run(*args, "window_weeks=6")[1]
    result = runner.invoke(app, ["profiles", "show", "1285", name, "--org", "kommun-1285"])
    document = yaml.safe_load(result.output.split("Versions")[0])
    assert document["window_weeks"] == 6 and document["category_group"] == "andts"
    assert document["methods"]["dbscan"]["eps_m"] == 200
    assert document["methods"]["kde"]["shares"] == [0.5, 0.8]
    assert "cli:" in result.output
    assert _stored(system_engine, "1285", name, "kommun-1285") == 2
    assert _stored(system_engine, "1285", name, None) is None  # the default was not touched


def test_set_without_org_changes_the_default_profile(cli_env: None, system_engine: Engine) -> None:
    before = _profile(system_engine, QUIET_AREA, "standard", None)
    assert before is not None
    weeks = 6 if before.settings.window_weeks != 6 else 5
    code, out = _run("set", QUIET_AREA, f"window_weeks={weeks}")
    assert code == 0 and f"changed {QUIET_AREA}/standard (default)" in out, out
    after = _profile(system_engine, QUIET_AREA, "standard", None)
    assert after is not None and after.version == before.version + 1
    assert after.settings.window_weeks == weeks


@pytest.mark.parametrize(
    ("assignment", "field"),
    [
        ("window_weeks=99", "window_weeks"),
        ("window_weeks=many", "window_weeks"),
        ("cell_size_m=300", "cell_size_m"),
        ("methods.dbscan.epz=200", "methods.dbscan.epz"),
        ("window_weeks.x=1", "window_weeks.x"),
        ("category_group=nope", "category_group"),
        ("window_weeks", "window_weeks"),
    ],
)
def test_set_refuses_an_invalid_value_naming_the_field(
    cli_env: None, system_engine: Engine, assignment: str, field: str
) -> None:
    before = _stored(system_engine, QUIET_AREA, "standard", None)
    code, out = _run("set", QUIET_AREA, "standard", assignment)
    assert code == 1 and "error:" in out and field in out, out
    assert _stored(system_engine, QUIET_AREA, "standard", None) == before


def test_set_for_an_organisation_without_a_grant_on_the_area_is_refused(cli_env: None) -> None:
    code, out = _run("set", "1285", _name(), "--org", "utan-grant", "window_weeks=5")
    assert code == 1 and "no grant" in out


def test_import_stores_every_profile_and_an_unchanged_file_again_changes_nothing(
    cli_env: None, tmp_path: Path, system_engine: Engine
) -> None:
    first, second = _name(), _name()
    items = [
        {"area": "1285", "name": first, "window_weeks": 6},
        {"area": "1285", "name": second, "methods": {"gistar": {"distance_band_m": 750}}},
    ]
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(items), encoding="utf-8")
    code, out = _run("import", str(path), "--org", "kommun-1285")
    assert code == 0, out
    assert f"created 1285/{first} (kommun-1285), version 1" in out
    assert f"created 1285/{second} (kommun-1285), version 1" in out
    code, out = _run("import", str(path), "--org", "kommun-1285")
    assert code == 0 and out.count("unchanged") == 2, out
    items[0]["window_weeks"] = 8
    json_path = tmp_path / "profiles.json"
    json_path.write_text(json.dumps(items), encoding="utf-8")
    code, out = _run("import", str(json_path), "--org", "kommun-1285")
    assert code == 0 and f"changed 1285/{first}" in out and f"unchanged 1285/{second}" in out
    assert _stored(system_engine, "1285", first, "kommun-1285") == 2


def test_import_of_a_single_default_profile(
    cli_env: None, tmp_path: Path, system_engine: Engine
) -> None:
    name = _name()
    path = tmp_path / "one.yaml"
    path.write_text(f"area: '{QUIET_AREA}'\nname: {name}\nwindow_weeks: 2\n", encoding="utf-8")
    code, out = _run("import", str(path))
    assert code == 0 and f"created {QUIET_AREA}/{name} (default)" in out, out
    assert _stored(system_engine, QUIET_AREA, name, None) == 1


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ({"area": "1285", "name": "x", "cell_size_m": 300}, "item 2: cell_size_m"),
        ({"area": "1285", "name": "x", "methods": {"kde": {"kernl": "x"}}}, "item 2: methods.kde"),
        ({"name": "x"}, "item 2: area"),
        ({"area": 1285, "name": "x"}, "item 2: area"),
        ({"area": "1285"}, "item 2: name"),
        ({"area": "1285", "name": "Bad Name"}, "item 2: name"),
        ({"area": "9999", "name": "x"}, "item 2: kommun-1285 holds no grant on area '9999'"),
        ({"area": "1285", "name": "x", "category_group": "nope"}, "item 2: category_group"),
        ("just text", "item 2: must be a mapping"),
    ],
)
def test_an_invalid_import_names_item_and_field_and_stores_nothing(
    cli_env: None, tmp_path: Path, system_engine: Engine, second: object, expected: str
) -> None:
    first = _name()
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump([{"area": "1285", "name": first, "window_weeks": 6}, second]),
        encoding="utf-8",
    )
    code, out = _run("import", str(path), "--org", "kommun-1285")
    assert code == 1 and expected in out, out
    assert _stored(system_engine, "1285", first, "kommun-1285") is None


def test_a_file_that_is_no_yaml_is_a_clear_message(cli_env: None, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("[{", encoding="utf-8")
    code, out = _run("import", str(path))
    assert code == 1 and "broken.json is no valid JSON" in out
    code, out = _run("import", str(tmp_path / "missing.yaml"))
    assert code == 1 and "does not exist" in out


def test_a_new_union_area_gets_its_default_profile(cli_env: None, system_engine: Engine) -> None:
    code = f"cli-union-{uuid.uuid4().hex[:6]}"
    try:
        result = runner.invoke(
            app, ["areas", "union", code, "--name", "CLI union", "--of", "1285,1214"]
        )
        out = " ".join(result.output.split())
        assert result.exit_code == 0 and "1 areas got the default profile 'standard'" in out, out
        assert _stored(system_engine, code, "standard", None) == 1
    finally:
        with system_engine.begin() as conn:
            conn.execute(text("DELETE FROM est.area WHERE code = :c"), {"c": code})

"""The `est` command line against the test database: clear messages, exit codes, one-time keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture()
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the CLI at the session's database."""
    monkeypatch.setenv("EST_DATABASE_URL", settings.database_url)
    for name in ("EST_APP_DATABASE_URL", "EST_OWNER_DATABASE_URL", "EST_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_keys_create_prints_a_working_key_once(cli_env: None) -> None:
    result = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--org",
            "cli-org",
            "--role",
            "viewer",
            "--create-org",
            "--name",
            "test",
        ],
    )
    assert result.exit_code == 0, result.output
    token = next(w for w in result.output.split() if w.startswith("est_"))
    listed = runner.invoke(app, ["keys", "list", "--org", "cli-org"])
    _, key_id, secret = token.split("_", 2)
    assert key_id in listed.output and secret not in listed.output


def test_unknown_organisation_or_area_is_a_clear_message_and_exit_1(cli_env: None) -> None:
    result = runner.invoke(app, ["grants", "add", "no-such-org", "1285", "--level", "raw"])
    assert result.exit_code == 1 and "no organisation with code 'no-such-org'" in result.output
    result = runner.invoke(app, ["keys", "create", "--org", "no-such-org", "--role", "viewer"])
    assert result.exit_code == 1 and "no-such-org" in result.output


def test_grants_add_list_revoke(cli_env: None) -> None:
    assert (
        runner.invoke(
            app, ["orgs", "create", "cli-lpo", "--name", "LPO CLI", "--kind", "lpo"]
        ).exit_code
        == 0
    )
    added = runner.invoke(app, ["grants", "add", "cli-lpo", "1214", "--level", "aggregate"])
    assert added.exit_code == 0, added.output
    assert "1214" in runner.invoke(app, ["grants", "list", "--org", "cli-lpo"]).output
    assert runner.invoke(app, ["grants", "revoke", "cli-lpo", "1214"]).exit_code == 0
    assert runner.invoke(app, ["grants", "revoke", "cli-lpo", "1214"]).exit_code == 1


def test_db_init_refuses_a_geographic_crs(cli_env: None) -> None:
    result = runner.invoke(app, ["db", "init", "--srid", "4326"])
    assert result.exit_code == 1 and "not a projected CRS in metres" in result.output


def test_purge_dry_run_counts_without_deleting(cli_env: None) -> None:
    result = runner.invoke(app, ["purge", "--dry-run"])
    assert result.exit_code == 0 and "would purge" in result.output

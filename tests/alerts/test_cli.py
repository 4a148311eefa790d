"""`est alerts` against the test database: subscribe, list, rotate, deliveries, deliver, remove."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from app.cli import app, common
from app.settings import Settings, get_settings
from tests.alerts.conftest import KOMMUN, Receiver, Spot

runner = CliRunner()
AREA = "1257"  # Örkelljunga


@pytest.fixture()
def cli_env(
    settings: Settings, alert_orgs: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point the CLI at the session's database, with the local receiver allowed."""
    monkeypatch.setenv("EST_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("EST_ALERT_ALLOW_HOSTS", '["127.0.0.1"]')
    for name in ("EST_APP_DATABASE_URL", "EST_OWNER_DATABASE_URL", "EST_SYSTEM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common.console, "width", 200)  # the tables are wide
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["alerts", *args])
    return result.exit_code, " ".join(result.output.split())  # Rich wraps at the terminal


def test_the_operator_subscribes_rotates_reads_the_log_delivers_and_removes(
    cli_env: None, system_engine: Engine, runs_of: Any, receiver: Receiver
) -> None:
    code, out = _run("subscribe", "--org", KOMMUN, "--area", AREA, "--webhook", receiver.url)
    assert code == 0, out
    found = re.search(r"subscription (\d+): .* secret \(shown once.*\): (whsec_\S+)", out)
    assert found is not None, out
    sub, secret = found[1], found[2]
    try:
        code, out = _run("list", "--area", AREA)
        assert code == 0 and f"│ {sub} │ {KOMMUN} │" in out and "webhook" in out, out
        code, out = _run("rotate", sub)
        assert code == 0 and "new secret" in out and secret not in out, out
        code, out = _run("list", "--org", KOMMUN)
        assert "accepted" in out, out
        code, out = _run("rotate", sub, "--drop-previous")
        assert code == 0 and "only its current secret" in out, out

        runs_of(AREA).publish(44, (Spot("h-cli"),))
        code, out = _run("deliveries", sub)
        assert code == 0 and "new_hotspot" in out and "pending" in out, out
        code, out = _run("deliver")
        assert code == 0 and "1 sent" in out, out
        assert len(receiver.received) == 1
        code, out = _run("deliveries")
        assert code == 0 and "h-cli" in out and "sent" in out, out
    finally:
        code, out = _run("remove", sub)
    assert code == 0 and f"subscription {sub} removed" in out, out
    with system_engine.connect() as conn:
        audited = conn.scalars(
            text(
                "SELECT action FROM est.audit_log WHERE filters->>'id' = :id "
                "AND action LIKE 'alert_subscription.%' ORDER BY id"
            ),
            {"id": sub},
        ).all()
    assert audited[0] == "alert_subscription.create" and audited[-1] == "alert_subscription.delete"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("subscribe", "--org", KOMMUN, "--area", AREA), "either --webhook URL or --email"),
        (("subscribe", "--org", KOMMUN, "--area", AREA, "--webhook", "http://10.0.0.1/"), "url:"),
        (("subscribe", "--org", KOMMUN, "--area", "1285", "--email", "a@b.se"), "area:"),
        (("subscribe", "--org", "no-such-org", "--area", AREA, "--email", "a@b.se"), "no-such"),
        (("remove", "2147483000"), "no alert subscription 2147483000"),
        (("rotate", "2147483000"), "no alert subscription 2147483000"),
    ],
)
def test_mistakes_get_a_clear_message_and_exit_status_1(
    cli_env: None, args: tuple[str, ...], said: str
) -> None:
    code, out = _run(*args)
    assert code == 1 and said in out, out

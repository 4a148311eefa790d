"""Monday's report by e-mail: after a Monday night's runs the closed week's report reaches each
e-mail subscriber once, over STARTTLS; a viewer organisation may have the viewer PDF attached,
an analyst organisation (raw grant) gets a link only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.alerts import subscriptions
from app.alerts.subscriptions import Who
from app.reports import content, mailing
from app.runs import schedule
from app.settings import Settings
from tests.reports.conftest import AREA, KOMMUN, POLICE, TZ, Perstorp, Sink

WHO = Who(None, "test")
MONDAY = date(2026, 11, 30)  # its night closes week 48


@pytest.fixture()
def subscribed(system_engine: Engine, perstorp: Perstorp) -> Iterator[dict[str, int]]:
    """E-mail subscriptions: the police area's (aggregate grant) with the PDF attached, the
    kommun's (raw grant) asking for it too, and a second police one with the default link."""
    made = {}
    with system_engine.begin() as conn:
        for name, org, address in (
            ("police", POLICE, "lg@lpo.example"),
            ("kommun", KOMMUN, "analys@kommun.example"),
            ("link", POLICE, "chef@lpo.example"),
        ):
            sub, _ = subscriptions.create(
                conn, WHO, perstorp.organisation_ids[org], AREA, email=address
            )
            made[name] = sub.id
        for name in ("police", "kommun"):
            mailing.set_delivery(conn, WHO, made[name], None, "attachment")
    yield made
    with system_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM est.alert_subscription WHERE id = ANY(:ids)"),
            {"ids": list(made.values())},
        )


def _by_address(sink: Sink) -> dict[str, Any]:
    return {str(m["To"]): m for m, _ in sink.messages}


def test_monday_nights_report_arrives_with_the_viewer_pdf_attached(
    system_engine: Engine,
    subscribed: dict[str, int],
    smtp: tuple[Sink, Settings],
    client: TestClient,
    perstorp: Perstorp,
) -> None:
    sink, using = smtp
    schedule.run_night(system_engine, using, MONDAY, area_codes=[AREA])
    got = _by_address(sink)
    assert set(got) == {"lg@lpo.example", "analys@kommun.example", "chef@lpo.example"}
    assert all(tls for _, tls in sink.messages)
    police = got["lg@lpo.example"]
    assert police["Subject"] == "Lägesbild Perstorp, vecka 48 2026"
    assert police["X-EST-Report"] == f"{AREA}/2026-W48"
    attached = [p for p in police.iter_attachments()]
    assert [a.get_filename() for a in attached] == [f"lagesbild-{AREA}-2026-W48.pdf"]
    pdf = attached[0].get_content()
    assert pdf.startswith(b"%PDF") and len(pdf) < 2 * 1024 * 1024
    body = police.get_body(("plain",)).get_content()
    assert "bifogad som PDF" in body
    with system_engine.begin() as conn:
        period = content.parse_period("2026-W48", TZ)
        viewer = content.build(conn, content.ReportRequest(AREA, period), system=True)
    assert f"cirka {int(viewer.figures[0].this)} händelser" in body
    # analysts get a link, whatever they asked for: exact counts do not travel by e-mail
    for address in ("analys@kommun.example", "chef@lpo.example"):
        mail = got[address]
        assert list(mail.iter_attachments()) == []
        assert (
            f"https://est.example/api/v1/areas/{AREA}/reports/2026-W48.pdf"
            in mail.get_body(("plain",)).get_content()
        )


def test_each_subscriber_gets_a_weeks_report_once_and_other_nights_send_none(
    system_engine: Engine, subscribed: dict[str, int], smtp: tuple[Sink, Settings]
) -> None:
    sink, using = smtp
    period = content.parse_period("2026-W48", TZ)
    first = mailing.send_reports(system_engine, using, period, [AREA])
    assert (first.sent, first.failed) == (3, 0)
    again = mailing.send_reports(system_engine, using, period, [AREA])
    assert (again.sent, again.skipped) == (0, 3)
    assert mailing.mail_weekly_reports(system_engine, using, date(2026, 12, 1), [AREA]) is None
    assert len(sink.messages) == 3


def test_a_failed_mail_is_tried_again_and_none_means_none(
    system_engine: Engine,
    subscribed: dict[str, int],
    smtp: tuple[Sink, Settings],
    settings: Settings,
) -> None:
    sink, using = smtp
    period = content.parse_period("2026-W48", TZ)
    with system_engine.begin() as conn:
        mailing.set_delivery(conn, WHO, subscribed["link"], None, "none")
    broken = using.model_copy(update={"smtp_port": 1})  # nobody listens there
    failed = mailing.send_reports(system_engine, broken, period, [AREA])
    assert (failed.sent, failed.failed) == (0, 2)
    with system_engine.connect() as conn:
        errors = conn.scalars(
            text("SELECT error FROM est.report_dispatch WHERE subscription_id = ANY(:ids)"),
            {"ids": list(subscribed.values())},
        ).all()
    assert len(errors) == 2 and all(errors)
    retried = mailing.send_reports(system_engine, using, period, [AREA])
    assert retried.sent == 2
    assert {str(m["To"]) for m, _ in sink.messages} == {"lg@lpo.example", "analys@kommun.example"}


def test_admins_choose_how_their_subscription_gets_the_report(
    client: TestClient, perstorp: Perstorp, subscribed: dict[str, int]
) -> None:
    url = f"/api/v1/alerts/subscriptions/{subscribed['link']}/weekly-report"
    admin = perstorp.headers(POLICE, "admin")
    assert client.get(url, headers=admin).json() == {
        "subscription_id": subscribed["link"],
        "delivery": "link",
    }
    chosen = client.put(url, json={"delivery": "attachment"}, headers=admin)
    assert chosen.status_code == 200 and chosen.json()["delivery"] == "attachment"
    bad = client.put(url, json={"delivery": "fax"}, headers=admin)
    assert bad.status_code == 422 and "delivery" in bad.json()["detail"]
    other_org = client.put(
        url, json={"delivery": "none"}, headers=perstorp.headers(KOMMUN, "admin")
    )
    assert other_org.status_code == 404
    viewer = client.get(url, headers=perstorp.headers(POLICE, "viewer"))
    assert viewer.status_code == 403

"""The analysts' texts and hotspot names: written by analysts with a raw grant on the area,
printed in both versions of the report, names following the hotspot's id from week to week."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.reports.conftest import AREA, KOMMUN, POLICE, Perstorp

TEXTS = f"/api/v1/areas/{AREA}/reports/2026-W48/texts"


@pytest.fixture()
def clean_texts(system_engine: Engine) -> None:
    """No texts or names of Perstorp from an earlier test."""
    with system_engine.begin() as conn:
        for table in ("report_text", "hotspot_name"):
            conn.execute(
                text(
                    f"DELETE FROM est.{table} t USING est.area a "
                    "WHERE a.id = t.area_id AND a.code = :c"
                ),
                {"c": AREA},
            )


def _key_of_largest(system_engine: Engine, run: int) -> str:
    with system_engine.connect() as conn:
        return str(
            conn.scalar(
                text(
                    "SELECT hotspot_key FROM est.hotspot WHERE run_id = :run "
                    "AND change_label <> 'gone' ORDER BY incident_count DESC LIMIT 1"
                ),
                {"run": run},
            )
        )


def test_an_analyst_writes_the_texts_and_both_versions_print_them(
    client: TestClient, perstorp: Perstorp, clean_texts: None
) -> None:
    analyst = perstorp.headers(KOMMUN, "analyst")
    empty = client.get(TEXTS, headers=analyst)
    assert empty.status_code == 200 and empty.json()["assessment"] == ""
    body = {"assessment": "Läget är lugnt.\n\nKlotter ökar vid stationen.", "causes": "Mörker."}
    written = client.put(TEXTS, json=body, headers=analyst)
    assert written.status_code == 200, written.text
    assert written.json()["updated_by"] and written.json()["causes"] == "Mörker."
    only_causes = client.put(TEXTS, json={"causes": "Mörker och skolstart."}, headers=analyst)
    assert only_causes.json()["assessment"] == body["assessment"]
    for org, role in ((KOMMUN, "analyst"), (POLICE, "viewer")):
        html = client.get(
            f"/api/v1/areas/{AREA}/reports/2026-W48.html", headers=perstorp.headers(org, role)
        ).text
        assert "<p>Läget är lugnt.</p><p>Klotter ökar vid stationen.</p>" in html
        assert "Mörker och skolstart." in html
    other_week = client.get(
        f"/api/v1/areas/{AREA}/reports/2026-W47.html", headers=perstorp.headers(POLICE, "viewer")
    ).text
    assert "Läget är lugnt." not in other_week and "inte skrivit någon bedömning" in other_week


def test_only_analysts_with_a_raw_grant_write_texts(
    client: TestClient, perstorp: Perstorp, clean_texts: None
) -> None:
    body = {"assessment": "x"}
    assert (
        client.put(TEXTS, json=body, headers=perstorp.headers(KOMMUN, "viewer")).status_code == 403
    )
    # the police area's analysts hold an aggregate grant only
    assert (
        client.put(TEXTS, json=body, headers=perstorp.headers(POLICE, "analyst")).status_code == 404
    )
    assert client.get(TEXTS, headers=perstorp.headers(POLICE, "analyst")).status_code == 404


@pytest.mark.parametrize(
    ("url", "body", "names"),
    [
        (TEXTS, {"assessment": "x" * 20_001}, "assessment"),
        (TEXTS, {}, "assessment"),
        (TEXTS, {"assessment": "x", "extra": 1}, "extra"),
        (f"/api/v1/areas/{AREA}/reports/2026-W99/texts", {"assessment": "x"}, "period"),
        (f"/api/v1/areas/{AREA}/reports/48/texts", {"assessment": "x"}, "period"),
    ],
)
def test_bad_texts_are_a_422_naming_the_field(
    client: TestClient, perstorp: Perstorp, url: str, body: dict[str, object], names: str
) -> None:
    answer = client.put(url, json=body, headers=perstorp.headers(KOMMUN, "analyst"))
    assert answer.status_code == 422, answer.text
    assert names in answer.json()["detail"]


def test_a_hotspots_name_follows_its_id_into_the_next_weeks_report(
    client: TestClient, perstorp: Perstorp, system_engine: Engine, clean_texts: None
) -> None:
    analyst = perstorp.headers(KOMMUN, "analyst")
    key = _key_of_largest(system_engine, perstorp.runs["2026-W47"])
    url = f"/api/v1/areas/{AREA}/hotspot-names/{key}"
    named = client.put(
        url, json={"name": "Stationsområdet", "named_in": "2026-W47"}, headers=analyst
    )
    assert named.status_code == 200, named.text
    listed = client.get(f"/api/v1/areas/{AREA}/hotspot-names", headers=analyst).json()
    assert [n["name"] for n in listed] == ["Stationsområdet"]
    with system_engine.connect() as conn:
        in_w48 = conn.scalar(
            text("SELECT count(*) FROM est.hotspot WHERE run_id = :run AND hotspot_key = :key"),
            {"run": perstorp.runs["2026-W48"], "key": key},
        )
    assert in_w48 == 1  # the hotspot kept its id from week 47 to week 48
    html = client.get(f"/api/v1/areas/{AREA}/reports/2026-W48.html", headers=analyst).text
    row = html[html.index(f'data-key="{key}"') :]
    assert "Stationsområdet" in row[: row.index("</tr>")]
    unknown = client.put(
        f"/api/v1/areas/{AREA}/hotspot-names/nosuchhotspot",
        json={"name": "X", "named_in": "2026-W48"},
        headers=analyst,
    )
    assert unknown.status_code == 404
    blank = client.put(url, json={"name": "   ", "named_in": "2026-W48"}, headers=analyst)
    assert blank.status_code == 422 and "name" in blank.json()["detail"]
    assert client.delete(url, headers=analyst).status_code == 204
    assert client.delete(url, headers=analyst).status_code == 404

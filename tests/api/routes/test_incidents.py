"""Raw incidents over the API: who sees what, 404 for others' objects, safe CSV, on record."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.conftest import ESLOV_INCIDENTS, SVALOV_INCIDENTS, World

ESLOV_BBOX = "13.25,55.80,13.40,55.88"


def _ids(client: TestClient, world: World, org: str, role: str, **params: str) -> set[int]:
    r = client.get(
        "/api/v1/incidents", params={"limit": 1000, **params}, headers=world.headers(org, role)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json"
    return {f["id"] for f in r.json()["features"]}


def test_an_analyst_sees_its_own_and_raw_granted_incidents_only(
    client: TestClient, world: World
) -> None:
    assert _ids(client, world, "kommun-1285", "analyst") == set(world.incident_ids["kommun-1285"])
    assert _ids(client, world, "lpo-test", "analyst") == set(world.incident_ids["kommun-1214"])
    # kommun-1214 holds only an aggregate grant on Eslöv: its own incidents, none of Eslöv's
    assert _ids(client, world, "kommun-1214", "analyst") == set(world.incident_ids["kommun-1214"])
    assert _ids(client, world, "utan-grant", "analyst") == set()


def test_a_reporter_reads_its_own_organisations_incidents(client: TestClient, world: World) -> None:
    assert _ids(client, world, "kommun-1285", "reporter") == set(world.incident_ids["kommun-1285"])
    assert _ids(client, world, "utan-grant", "reporter") == set()


def test_viewers_admins_and_ingest_clients_get_no_raw_incidents(
    client: TestClient, world: World
) -> None:
    for role in ("viewer", "admin", "ingest"):
        r = client.get("/api/v1/incidents", headers=world.headers("kommun-1285", role))
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"


def test_filters_by_bbox_time_and_category_with_children(client: TestClient, world: World) -> None:
    everything = _ids(client, world, "kommun-1285", "analyst", bbox=ESLOV_BBOX)
    assert everything == set(world.incident_ids["kommun-1285"])
    away = _ids(client, world, "kommun-1285", "analyst", bbox="14.0,56.0,14.1,56.1")
    assert away == set()
    klotter = _ids(client, world, "kommun-1285", "analyst", category="skadegorelse")
    assert len(klotter) == sum(r.category_code.startswith("skadegorelse") for r in ESLOV_INCIDENTS)
    early = _ids(client, world, "kommun-1285", "analyst", until="2026-10-05T10:30:00+02:00")
    cut = datetime(2026, 10, 5, 8, 30, tzinfo=UTC)
    assert len(early) == sum(r.occurred_from < cut for r in ESLOV_INCIDENTS) == 6


def test_paging_gives_every_incident_once_with_next_links(client: TestClient, world: World) -> None:
    seen: list[int] = []
    url: str | None = "/api/v1/incidents?limit=7"
    while url:
        body = client.get(url, headers=world.headers("kommun-1285", "analyst")).json()
        assert body["numberMatched"] == len(ESLOV_INCIDENTS)
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(world.incident_ids["kommun-1285"])


def test_another_organisations_incident_is_404_not_403(client: TestClient, world: World) -> None:
    eslov_id = world.incident_ids["kommun-1285"][0]
    mine = client.get(
        f"/api/v1/incidents/{eslov_id}", headers=world.headers("kommun-1285", "analyst")
    )
    theirs = client.get(
        f"/api/v1/incidents/{eslov_id}", headers=world.headers("utan-grant", "analyst")
    )
    missing = client.get(
        "/api/v1/incidents/999999999", headers=world.headers("utan-grant", "analyst")
    )
    assert mine.status_code == 200 and mine.json()["id"] == eslov_id
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(str(eslov_id), "N") == missing.json()["detail"].replace(
        "999999999", "N"
    )


def test_export_needs_a_reason_and_is_safe_for_swedish_excel(
    client: TestClient, world: World
) -> None:
    h = world.headers("kommun-1214", "analyst")
    assert client.get("/api/v1/incidents/export.csv", headers=h).status_code == 422
    h = world.headers("kommun-1285", "analyst")
    r = client.get("/api/v1/incidents/export.csv", params={"reason": "Veckomöte v41"}, headers=h)
    assert r.status_code == 200
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["id", "organisation", "source"]
    assert len(rows) - 1 == len(ESLOV_INCIDENTS)
    descriptions = {row[rows[0].index("description")] for row in rows[1:]}
    assert '\'=HYPERLINK("x")' in descriptions
    assert not any(cell.startswith(("=", "+", "@")) for row in rows[1:] for cell in row)


def test_raw_reads_and_exports_are_in_the_audit_log(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    h = world.headers("lpo-test", "analyst")
    client.get("/api/v1/incidents", params={"bbox": "12.9,55.8,13.3,56.0"}, headers=h)
    client.get("/api/v1/incidents/export.csv", params={"reason": "Uppföljning LPO"}, headers=h)
    with system_engine.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT a.action, a.row_count, a.reason, a.filters, a.role, a.request_id
            FROM est.audit_log a JOIN est.organisation o ON o.id = a.organisation_id
            WHERE o.code = 'lpo-test' ORDER BY a.id DESC LIMIT 2
        """)
        ).all()
    export, read = rows
    assert (export.action, export.row_count, export.reason) == (
        "incident.export",
        len(SVALOV_INCIDENTS),
        "Uppföljning LPO",
    )
    assert read.action == "incident.read" and read.filters["bbox"] == [12.9, 55.8, 13.3, 56.0]
    assert read.role == "analyst" and read.request_id


def test_pages_follow_keys_not_offsets_and_a_forged_key_is_a_422(
    client: TestClient, world: World
) -> None:
    headers = world.headers("kommun-1285", "analyst")
    first = client.get("/api/v1/incidents?limit=5", headers=headers).json()
    (link,) = [x["href"] for x in first["links"] if x["rel"] == "next"]
    assert "after=" in link and "offset=" not in link
    second = client.get(link, headers=headers).json()
    times = [f["properties"]["occurred_from"] for f in first["features"] + second["features"]]
    assert times == sorted(times) and len(set(f["id"] for f in second["features"])) == 5
    for forged in ("nonsense", "bm9wZQ", "MjAyNi0xMC0wNXwx"):  # not base64 / no key / no zone
        r = client.get("/api/v1/incidents", params={"after": forged}, headers=headers)
        assert r.status_code == 422 and "after" in r.json()["detail"]

"""The incidents collection: raw points for the roles and areas that may see them, every read
written to the audit trail."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.ogc.conftest import AREA_A, Ogc, get


def _audit(ogc: Ogc, since_id: int) -> list[dict]:
    rows = ogc.rows(
        "SELECT action, endpoint, filters, row_count, role, actor FROM est.audit_log "
        "WHERE id > :i ORDER BY id",
        i=since_id,
    )
    return [dict(r._mapping) for r in rows]


def _last_audit_id(ogc: Ogc) -> int:
    return int(ogc.scalar("SELECT coalesce(max(id), 0) FROM est.audit_log"))


def test_analysts_see_the_incidents_of_their_raw_grants_only(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    everything = get(ogc_client, ogc, "/ogc/collections/incidents/items", ("polis", "analyst"))
    assert everything.json()["numberMatched"] == ogc.incident_count
    one_kommun = get(ogc_client, ogc, "/ogc/collections/incidents/items", ("kommun", "analyst"))
    in_a = ogc.scalar(
        "SELECT count(*) FROM est.incident_area ia JOIN est.area a ON a.id = ia.area_id "
        "WHERE a.code = :a",
        a=AREA_A,
    )
    assert one_kommun.json()["numberMatched"] == in_a < ogc.incident_count
    for who in (("insyn", "analyst"), ("utan", "analyst"), ("kommun", "reporter")):
        r = get(ogc_client, ogc, "/ogc/collections/incidents/items", who)
        assert r.status_code == 200 and r.json()["numberMatched"] == 0, who
    for role in ("viewer", "admin", "ingest"):
        r = get(ogc_client, ogc, "/ogc/collections/incidents/items", ("polis", role))
        assert r.status_code == 403, role


def test_every_read_of_raw_incidents_is_audited_with_its_filter_and_rows(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    before = _last_audit_id(ogc)
    page = get(ogc_client, ogc, "/ogc/collections/incidents/items", limit=7, area=AREA_A).json()
    one = page["features"][0]["id"]
    get(ogc_client, ogc, f"/ogc/collections/incidents/items/{one}")
    get(ogc_client, ogc, "/ogc/collections/hotspots/items")  # layers are not raw reads
    entries = _audit(ogc, before)
    assert [e["action"] for e in entries] == ["incident.read", "incident.read"]
    listed, single = entries
    assert listed["endpoint"] == "/ogc/collections/incidents/items"
    assert listed["row_count"] == 7 and listed["filters"]["area"] == AREA_A
    assert listed["role"] == "analyst" and listed["actor"].startswith("key:")
    assert single["row_count"] == 1 and single["filters"]["id"] == str(one)


def test_a_raw_incident_of_another_area_is_not_found(ogc: Ogc, ogc_client: TestClient) -> None:
    with ogc.engine.connect() as conn:
        outside = conn.scalar(
            text(
                "SELECT i.id FROM est.incident i WHERE NOT i.area_ids && "
                "ARRAY(SELECT id FROM est.area WHERE code = :a) LIMIT 1"
            ),
            {"a": AREA_A},
        )
    r = get(ogc_client, ogc, f"/ogc/collections/incidents/items/{outside}", ("kommun", "analyst"))
    assert r.status_code == 404
    assert get(ogc_client, ogc, f"/ogc/collections/incidents/items/{outside}").status_code == 200

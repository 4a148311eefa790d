"""Admins: keys of their own organisation; the operator's admins: organisations and grants;
every change on record and readable by the organisation's admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import World


def test_an_admin_creates_a_key_that_works_once_shown_and_revokes_it(
    client: TestClient, world: World
) -> None:
    admin = world.headers("kommun-1214", "admin")
    created = client.post(
        "/api/v1/keys", json={"role": "viewer", "name": "Ledningsgrupp"}, headers=admin
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith(f"est_{created.json()['id']}_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["organisation"], me["role"]) == ("kommun-1214", "viewer")
    listed = client.get("/api/v1/keys", headers=admin).json()
    assert created.json()["id"] in {k["id"] for k in listed}
    assert all("token" not in k and "secret" not in str(k) for k in listed)
    assert client.delete(f"/api/v1/keys/{created.json()['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_another_organisations_key_cannot_be_revoked_and_is_404(
    client: TestClient, world: World
) -> None:
    victim = world.tokens[("kommun-1285", "analyst")].split("_")[1]
    r = client.delete(f"/api/v1/keys/{victim}", headers=world.headers("utan-grant", "admin"))
    assert r.status_code == 404
    assert (
        client.get("/api/v1/me", headers=world.headers("kommun-1285", "analyst")).status_code == 200
    )


def test_request_bodies_refuse_unknown_fields_such_as_an_organisation(
    client: TestClient, world: World
) -> None:
    r = client.post(
        "/api/v1/keys",
        json={"role": "viewer", "organisation_id": 1},
        headers=world.headers("utan-grant", "admin"),
    )
    assert r.status_code == 422
    assert "organisation_id" in r.json()["detail"]


def test_only_operator_admins_register_organisations_and_record_grants(
    client: TestClient, world: World
) -> None:
    body = {"code": "bostadsbolaget", "name": "Bostadsbolaget AB", "kind": "business"}
    refused = client.post(
        "/api/v1/organisations", json=body, headers=world.headers("kommun-1285", "admin")
    )
    assert refused.status_code == 403
    operator = world.headers("drift", "admin")
    assert client.post("/api/v1/organisations", json=body, headers=operator).status_code == 201
    again = client.post("/api/v1/organisations", json=body, headers=operator)
    assert again.status_code == 409
    grant = {"organisation": "bostadsbolaget", "area": "1285", "level": "aggregate"}
    assert (
        client.put(
            "/api/v1/grants", json=grant, headers=world.headers("kommun-1285", "admin")
        ).status_code
        == 403
    )
    put = client.put("/api/v1/grants", json=grant, headers=operator)
    assert put.status_code == 200 and put.json()["level"] == "aggregate"
    listed = client.get(
        "/api/v1/grants", params={"organisation": "bostadsbolaget"}, headers=operator
    ).json()
    assert [(g["area"], g["level"]) for g in listed] == [("1285", "aggregate")]
    assert client.delete("/api/v1/grants/bostadsbolaget/1285", headers=operator).status_code == 204
    assert client.delete("/api/v1/grants/bostadsbolaget/1285", headers=operator).status_code == 404


def test_admins_read_their_own_organisations_audit_trail_only(
    client: TestClient, world: World
) -> None:
    client.get("/api/v1/incidents", headers=world.headers("kommun-1285", "analyst"))
    mine = client.get(
        "/api/v1/audit",
        params={"action": "incident.read"},
        headers=world.headers("kommun-1285", "admin"),
    )
    assert mine.status_code == 200 and mine.json()
    assert all(e["action"] == "incident.read" for e in mine.json())
    theirs = client.get(
        "/api/v1/audit",
        params={"action": "incident.read"},
        headers=world.headers("utan-grant", "admin"),
    ).json()
    assert {e["id"] for e in theirs}.isdisjoint({e["id"] for e in mine.json()})
    assert (
        client.get("/api/v1/audit", headers=world.headers("kommun-1285", "analyst")).status_code
        == 403
    )


def test_the_audit_window_needs_times_with_a_zone(client: TestClient, world: World) -> None:
    admin = world.headers("kommun-1285", "admin")
    bare = client.get("/api/v1/audit", params={"since": "2026-11-01T00:00:00"}, headers=admin)
    assert bare.status_code == 422 and "since" in bare.json()["detail"]
    assert "time zone" in bare.json()["detail"]
    zoned = client.get(
        "/api/v1/audit", params={"since": "2026-11-01T00:00:00+01:00"}, headers=admin
    )
    assert zoned.status_code == 200


def test_admin_changes_are_on_record(client: TestClient, world: World) -> None:
    admin = world.headers("kommun-1214", "admin")
    key = client.post("/api/v1/keys", json={"role": "ingest"}, headers=admin).json()
    entries = client.get("/api/v1/audit", params={"action": "key.create"}, headers=admin).json()
    assert any(e["filters"]["key"] == key["id"] for e in entries)

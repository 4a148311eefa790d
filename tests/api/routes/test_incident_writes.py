"""Registering incidents over REST: per-record answers, keyed upserts, idempotent retries."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.conftest import World

RECORD = {
    "source": "trygghetsappen",
    "external_id": "T-1",
    "category": "skadegorelse.klotter",
    "occurred_from": "2026-11-20T22:15:00+01:00",
    "lon": 14.1375,  # Älmhult
    "lat": 56.5510,
    "location_precision": "address",
    "description": "Klotter på busskuren",
}


def _post(
    client: TestClient,
    world: World,
    body: Any,
    role: str = "reporter",
    org: str = "ingest-test",
    **headers: str,
) -> Any:
    return client.post(
        "/api/v1/incidents", json=body, headers={**world.headers(org, role), **headers}
    )


def test_one_record_is_created_then_unchanged_then_updated(
    client: TestClient, world: World
) -> None:
    first = _post(client, world, {**RECORD, "external_id": "T-cu"})
    again = _post(client, world, {**RECORD, "external_id": "T-cu"})
    changed = _post(client, world, {**RECORD, "external_id": "T-cu", "category": "ovrigt"})
    assert [r.status_code for r in (first, again, changed)] == [200, 200, 200]
    assert [r.json()["results"][0]["status"] for r in (first, again, changed)] == [
        "created",
        "unchanged",
        "updated",
    ]


def test_a_batch_answers_per_record_and_stores_the_valid_ones(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    body = [
        {**RECORD, "external_id": "B-1"},
        {**RECORD, "external_id": "B-2", "lon": 56.5510, "lat": 14.1375},
        {**RECORD, "external_id": "B-3", "occurred_from": "2026-11-20T22:15:00"},
        {**RECORD, "external_id": "B-4", "category": "nope"},
        {**RECORD, "external_id": "B-5", "occurred_to": "2026-11-19T00:00:00+01:00"},
        {**RECORD, "external_id": "B-6", "lon": None, "lat": None},
        {**RECORD, "external_id": "B-7", "descripton": "typo"},
    ]
    r = _post(client, world, body)
    assert r.status_code == 422
    answer = r.json()
    assert (answer["created"], answer["rejected"]) == (1, 6)
    rejected = {
        x["row"]: (x["field"], x["reason"]) for x in answer["results"] if x["status"] == "rejected"
    }
    assert "look swapped" in rejected[2][1]
    assert rejected[3][0] == "occurred_from" and "offset" in rejected[3][1]
    assert rejected[4] == ("category", "unknown category 'nope'")
    assert rejected[5][0] == "occurred_to"
    assert rejected[6][0] == "location" and "no location" in rejected[6][1]
    assert rejected[7][0] == "descripton" and "description" in rejected[7][1]
    with system_engine.connect() as conn:
        stored = conn.scalars(
            text(
                "SELECT external_id FROM est.incident "
                "WHERE source = 'trygghetsappen' AND external_id LIKE 'B-%'"
            )
        )
        assert list(stored) == ["B-1"]


def test_a_feature_collection_is_accepted_and_a_crs_member_refused(
    client: TestClient, world: World
) -> None:
    props = {k: v for k, v in RECORD.items() if k not in ("lon", "lat")}
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [14.1375, 56.5510]},  # Älmhult
                "properties": {**props, "external_id": "F-1"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[14.13, 56.55], [14.14, 56.56]]},
                "properties": {**props, "external_id": "F-2"},
            },
        ],
    }
    r = _post(client, world, fc)
    assert r.status_code == 422
    statuses = [(x["row"], x["status"]) for x in r.json()["results"]]
    assert statuses == [(1, "created"), (2, "rejected")]
    with_crs = _post(
        client,
        world,
        {**fc, "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3006"}}},
    )
    assert with_crs.status_code == 422 and "crs" in with_crs.json()["detail"]


def test_personal_numbers_are_masked_before_storage_and_the_answer_says_so(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    r = _post(
        client,
        world,
        {**RECORD, "external_id": "P-1", "description": "Anmälare 811218-9876, bil ABC 123"},
    )
    assert r.status_code == 200
    assert r.json()["results"][0]["masked"] is True
    assert r.json()["notes"] == [
        "1 personal identity number was masked in free text",
        "1 vehicle registration number was masked in free text",
    ]
    with system_engine.connect() as conn:
        stored = conn.scalar(text("SELECT description FROM est.incident WHERE external_id = 'P-1'"))
    assert stored == "Anmälare [personnummer], bil [registreringsnummer]"


def test_viewers_and_admins_cannot_write(client: TestClient, world: World) -> None:
    for role in ("viewer", "admin"):
        assert _post(client, world, RECORD, role=role).status_code == 403


def test_an_ingest_client_writes_for_its_own_organisation_only(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    r = _post(client, world, {**RECORD, "external_id": "I-1"}, role="ingest", org="utan-grant")
    assert r.status_code == 200
    with system_engine.connect() as conn:
        org = conn.scalar(
            text(
                "SELECT o.code FROM est.incident i JOIN est.organisation o "
                "ON o.id = i.organisation_id WHERE i.external_id = 'I-1'"
            )
        )
    with system_engine.begin() as conn:  # utan-grant must stay without incidents for the others
        conn.execute(text("DELETE FROM est.incident WHERE external_id = 'I-1'"))
    assert org == "utan-grant"


def test_too_many_records_is_413(client: TestClient, world: World) -> None:
    body = [{**RECORD, "external_id": f"M-{i}"} for i in range(10_001)]
    r = _post(client, world, body)
    assert r.status_code == 413 and "at most 10000" in r.json()["detail"]


def test_a_retried_post_with_an_idempotency_key_returns_the_first_answer(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    body = [{**RECORD, "external_id": "K-1"}, {**RECORD, "external_id": "K-2"}]
    first = _post(client, world, body, **{"Idempotency-Key": "retry-1"})
    # meanwhile the record changed: a real re-send would say "updated", a replay must not
    _post(client, world, {**RECORD, "external_id": "K-1", "category": "ovrigt"})
    retry = _post(client, world, body, **{"Idempotency-Key": "retry-1"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert [x["status"] for x in retry.json()["results"]] == ["created", "created"]
    other = _post(client, world, [body[0]], **{"Idempotency-Key": "retry-1"})
    assert other.status_code == 422 and "another request body" in other.json()["detail"]


def test_a_post_still_running_with_the_same_key_is_409(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    from app.ingest.idempotency import request_digest

    body = {**RECORD, "external_id": "R-1"}
    with system_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO est.idempotency_key (organisation_id, key, request_sha256) "
                "SELECT id, 'busy-1', :d FROM est.organisation WHERE code = 'ingest-test'"
            ),
            {"d": request_digest(body)},
        )
    r = _post(client, world, body, **{"Idempotency-Key": "busy-1"})
    assert r.status_code == 409

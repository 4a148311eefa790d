"""Analysis profiles over REST: every area has its default, an organisation keeps its own with
every version audited, and no organisation ever sees or changes another's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.runs.profiles import ensure_default_profiles
from tests.conftest import World

AREA = "1285"  # kommun-1285 holds a raw grant, kommun-1214 an aggregate one


@pytest.fixture(autouse=True)
def default_profiles(world: World, system_engine: Engine) -> None:
    """What `est areas load` does after loading: every area gets its default profile."""
    with system_engine.begin() as conn:
        ensure_default_profiles(conn)


def _name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def _url(name: str | None = None, area: str = AREA) -> str:
    base = f"/api/v1/areas/{area}/profiles"
    return base if name is None else f"{base}/{name}"


def _put(client: TestClient, world: World, org: str, name: str, body: dict[str, Any]) -> Any:
    return client.put(_url(name), json=body, headers=world.headers(org, "analyst"))


def _audited(system_engine: Engine, name: str) -> list[dict[str, Any]]:
    with system_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT o.code AS organisation, l.filters FROM est.audit_log l "
                "JOIN est.organisation o ON o.id = l.organisation_id "
                "WHERE l.action = 'profile.change' AND l.filters->>'name' = :name ORDER BY l.id"
            ),
            {"name": name},
        )
        return [dict(r._mapping) for r in rows]


def test_every_loaded_area_has_its_default_profile(client: TestClient, world: World) -> None:
    r = client.get(_url(), headers=world.headers("kommun-1285", "analyst"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    defaults = [p for p in r.json() if p["organisation"] is None]
    assert [p["name"] for p in defaults] == ["standard"]
    assert defaults[0]["settings"]["cell_size_m"] == 250 and defaults[0]["version"] >= 1
    admins = client.get(_url(), headers=world.headers("kommun-1285", "admin"))
    assert admins.status_code == 200 and "standard" in {p["name"] for p in admins.json()}


def test_an_analyst_creates_a_profile_and_each_change_is_a_new_audited_version(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    name = _name()
    created = _put(client, world, "kommun-1285", name, {"window_weeks": 6})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["organisation"] == "kommun-1285" and body["version"] == 1
    # fields left out get their defaults
    assert body["settings"]["window_weeks"] == 6 and body["settings"]["category_group"] == "all"
    changed = _put(
        client,
        world,
        "kommun-1285",
        name,
        {"window_weeks": 6, "methods": {"dbscan": {"eps_m": 200}}},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    same = _put(
        client,
        world,
        "kommun-1285",
        name,
        {"window_weeks": 6, "methods": {"dbscan": {"eps_m": 200}}},
    )
    assert same.status_code == 200 and same.json()["version"] == 2  # unchanged: no new version

    one = client.get(_url(name), headers=world.headers("kommun-1285", "analyst"))
    assert one.status_code == 200
    history = one.json()["versions"]
    assert [v["version"] for v in history] == [1, 2]
    assert history[0]["settings"]["methods"]["dbscan"]["eps_m"] == 150
    assert history[1]["settings"]["methods"]["dbscan"]["eps_m"] == 200
    assert all(v["changed_by"].startswith("key:") for v in history)
    assert [(e["organisation"], e["filters"]) for e in _audited(system_engine, name)] == [
        ("kommun-1285", {"area": AREA, "name": name, "version": 1}),
        ("kommun-1285", {"area": AREA, "name": name, "version": 2}),
    ]
    listed = client.get(_url(), headers=world.headers("kommun-1285", "analyst")).json()
    assert name in {p["name"] for p in listed}


def test_another_organisation_with_a_grant_on_the_area_never_sees_or_changes_a_profile(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    # The attacker, kommun-1214, holds a grant on Eslöv too, and guesses the profile's name.
    name = _name()
    assert _put(client, world, "kommun-1285", name, {"window_weeks": 8}).status_code == 201
    attacker = world.headers("kommun-1214", "analyst")
    listed = client.get(_url(), headers=attacker)
    assert listed.status_code == 200
    assert name not in {p["name"] for p in listed.json()}
    assert {p["organisation"] for p in listed.json()} <= {None, "kommun-1214"}
    by_name = client.get(_url(name), headers=attacker)
    assert (
        by_name.status_code == 404 and by_name.headers["content-type"] == "application/problem+json"
    )
    assert "window_weeks" not in by_name.text
    # a PUT of the same name makes the attacker's own profile and leaves the other one alone
    own = client.put(_url(name), json={"window_weeks": 2}, headers=attacker)
    assert own.status_code == 201 and own.json()["organisation"] == "kommun-1214"
    theirs = client.get(_url(name), headers=world.headers("kommun-1285", "analyst")).json()
    assert theirs["organisation"] == "kommun-1285" and theirs["version"] == 1
    assert theirs["settings"]["window_weeks"] == 8
    # nor does the attacker's admin, or an organisation without a grant, see anything
    admin = client.get(_url(name), headers=world.headers("kommun-1214", "admin")).json()
    assert admin["organisation"] == "kommun-1214"
    for org in ("utan-grant", "lpo-test"):
        r = client.get(_url(), headers=world.headers(org, "analyst"))
        assert r.status_code == 404 and name not in r.text


def test_the_default_profile_is_never_changed_over_rest(client: TestClient, world: World) -> None:
    default = client.get(_url("standard"), headers=world.headers("kommun-1214", "analyst")).json()
    r = _put(client, world, "kommun-1285", "standard", {"window_weeks": 3})
    assert r.status_code in (200, 201) and r.json()["organisation"] == "kommun-1285"
    after = client.get(_url("standard"), headers=world.headers("kommun-1214", "analyst")).json()
    assert after["organisation"] is None and after["version"] == default["version"]
    assert after["settings"] == default["settings"]


@pytest.mark.parametrize("role", ["viewer", "reporter"])
def test_viewers_and_reporters_neither_read_nor_change_profiles(
    client: TestClient, world: World, role: str
) -> None:
    headers = world.headers("kommun-1285", role)
    assert client.get(_url(), headers=headers).status_code == 403
    assert client.get(_url("standard"), headers=headers).status_code == 403
    r = client.put(_url(_name()), json={"window_weeks": 6}, headers=headers)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


def test_admins_read_profiles_but_only_analysts_change_them(
    client: TestClient, world: World
) -> None:
    headers = world.headers("kommun-1285", "admin")
    assert client.get(_url("standard"), headers=headers).status_code == 200
    assert client.put(_url(_name()), json={}, headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window_wekes": 6}, "window_wekes"),
        ({"methods": {"dbscan": {"eps": 200}}}, "methods.dbscan.eps"),
        ({"cell_size_m": 300}, "cell_size_m"),
        ({"window_weeks": 0}, "window_weeks"),
        ({"methods": {"kde": {"shares": [0.5, 1.5]}}}, "methods.kde.shares.1"),
        ({"methods": {"gistar": {"min_incidents": 10**30}}}, "methods.gistar.min_incidents"),
        ({"category_group": "nope"}, "category_group"),
        ({"category_group": "a\x00b"}, "category_group"),
    ],
)
def test_an_invalid_document_is_a_422_naming_the_field(
    client: TestClient, world: World, body: dict[str, Any], field: str
) -> None:
    r = _put(client, world, "kommun-1285", _name(), body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert field in r.json()["detail"], r.text


@pytest.mark.parametrize("body", [None, [], "standard", 7])
def test_a_body_that_is_no_document_is_a_422(client: TestClient, world: World, body: Any) -> None:
    r = _put(client, world, "kommun-1285", _name(), body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_a_name_that_is_no_profile_name_is_a_422(client: TestClient, world: World) -> None:
    for name in ("Natt", "x" * 65, "-a", "a b"):
        assert _put(client, world, "kommun-1285", name, {}).status_code == 422, name


def test_an_unknown_area_or_profile_is_a_404_like_an_area_without_a_grant(
    client: TestClient, world: World
) -> None:
    headers = world.headers("kommun-1285", "analyst")
    unknown = client.get(_url(area="9999"), headers=headers)
    not_granted = client.get(_url(area="1214"), headers=headers)
    assert unknown.status_code == not_granted.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert client.get(_url("nope", area="9999"), headers=headers).status_code == 404
    assert client.put(_url("natt", area="9999"), json={}, headers=headers).status_code == 404
    assert client.put(_url("natt", area="1214"), json={}, headers=headers).status_code == 404
    assert client.get(_url("no-such-profile"), headers=headers).status_code == 404

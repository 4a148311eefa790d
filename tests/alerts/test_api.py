"""Alert subscriptions over REST: the organisation's admins keep them for areas it holds a grant
on, see their delivery log, rotate secrets; nobody else sees them, and no secret is readable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from app.main import create_app
from app.settings import Settings
from tests.conftest import World

URL = "/api/v1/alerts/subscriptions"
HOOK = "http://127.0.0.1:9/est-hook"  # allowed below; nothing is sent in these tests


@pytest.fixture()
def api(settings: Settings) -> Iterator[TestClient]:
    """The service with the local receiver allowed."""
    allowing = settings.model_copy(update={"alert_allow_hosts": ["127.0.0.1"]})
    with TestClient(create_app(allowing), raise_server_exceptions=False) as c:
        yield c


def _admin(world: World, org: str = "kommun-1285") -> dict[str, str]:
    return world.headers(org, "admin")


def _made(api: TestClient, world: World, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(URL, json=body, headers=_admin(world))
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def _problem(r: Any, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in r.json()["detail"], r.text


def test_an_admin_subscribes_reads_changes_rotates_and_removes(
    api: TestClient, world: World, system_engine: Engine
) -> None:
    made = _made(api, world, {"area": "1285", "url": f"{HOOK}/a"})
    assert made["channel"] == "webhook" and made["secret"].startswith("whsec_")
    assert made["organisation"] == "kommun-1285" and made["area_name"] == "Eslöv"
    one = f"{URL}/{made['id']}"
    shown = api.get(one, headers=_admin(world))
    assert shown.status_code == 200 and "secret" not in shown.json()
    assert made["id"] in {s["id"] for s in api.get(URL, headers=_admin(world)).json()}
    assert made["secret"] not in api.get(URL, headers=_admin(world)).text

    paused = api.patch(one, json={"active": False}, headers=_admin(world))
    assert paused.status_code == 200 and paused.json()["active"] is False
    moved = api.patch(one, json={"url": f"{HOOK}/b"}, headers=_admin(world))
    assert moved.json()["target"] == f"{HOOK}/b"

    rotated = api.post(f"{one}/rotate-secret", headers=_admin(world))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != made["secret"]
    assert rotated.json()["previous_secret_accepted"] is True
    assert api.get(one, headers=_admin(world)).json()["has_previous_secret"] is True
    dropped = api.patch(one, json={"drop_previous_secret": True}, headers=_admin(world))
    assert dropped.json()["has_previous_secret"] is False
    with system_engine.connect() as conn:
        secrets = conn.execute(
            text("SELECT secret, previous_secret FROM est.alert_subscription WHERE id = :id"),
            {"id": made["id"]},
        ).one()
    assert tuple(secrets) == (rotated.json()["secret"], None)

    log = api.get(f"{one}/deliveries", headers=_admin(world))
    assert log.status_code == 200 and log.json() == []
    assert api.delete(one, headers=_admin(world)).status_code == 204
    assert api.get(one, headers=_admin(world)).status_code == 404
    with system_engine.connect() as conn:
        actions = conn.scalars(
            text(
                "SELECT action FROM est.audit_log WHERE action LIKE 'alert_subscription.%' "
                "AND filters->>'id' = :id ORDER BY id"
            ),
            {"id": str(made["id"])},
        ).all()
    assert actions == [
        "alert_subscription.create",
        "alert_subscription.change",
        "alert_subscription.change",
        "alert_subscription.rotate",
        "alert_subscription.change",
        "alert_subscription.delete",
    ]


def test_an_email_subscription_has_no_secret(api: TestClient, world: World) -> None:
    made = _made(api, world, {"area": "1285", "email": "ledningsgrupp@eslov.example"})
    try:
        assert made["channel"] == "email" and made["secret"] is None
        r = api.post(f"{URL}/{made['id']}/rotate-secret", headers=_admin(world))
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        again = api.post(
            URL,
            json={"area": "1285", "email": "ledningsgrupp@eslov.example"},
            headers=_admin(world),
        )
        assert again.status_code == 409
    finally:
        api.delete(f"{URL}/{made['id']}", headers=_admin(world))


@pytest.mark.parametrize("role", ["analyst", "reporter", "viewer", "ingest"])
def test_only_admins_keep_subscriptions(api: TestClient, world: World, role: str) -> None:
    headers = world.headers("kommun-1285", role)
    assert api.get(URL, headers=headers).status_code == 403
    r = api.post(URL, json={"area": "1285", "url": HOOK}, headers=headers)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"


def test_another_organisations_subscription_is_not_found(api: TestClient, world: World) -> None:
    made = _made(api, world, {"area": "1285", "url": f"{HOOK}/theirs"})
    one = f"{URL}/{made['id']}"
    other = _admin(world, "kommun-1214")  # holds a grant on Eslöv too
    try:
        assert made["id"] not in {s["id"] for s in api.get(URL, headers=other).json()}
        for method, path, body in (
            ("get", one, None),
            ("patch", one, {"active": False}),
            ("delete", one, None),
            ("post", f"{one}/rotate-secret", None),
            ("get", f"{one}/deliveries", None),
        ):
            r = api.request(method, path, json=body, headers=other)
            assert r.status_code == 404, (method, path, r.text)
        assert api.get(one, headers=_admin(world)).json()["active"] is True
    finally:
        api.delete(one, headers=_admin(world))


def test_the_service_role_reads_no_secret(app_engine: Engine, world: World) -> None:
    with app_engine.connect() as conn:
        conn.execute(text("SELECT set_config('est.role', 'admin', false)"))
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT secret FROM est.alert_subscription"))


@pytest.mark.parametrize("area", ["1267", "9999"])
def test_an_area_without_a_grant_is_refused_like_an_unknown_one(
    api: TestClient, world: World, area: str
) -> None:
    r = api.post(URL, json={"area": area, "url": HOOK}, headers=_admin(world))
    _problem(r, 422, "area")
    assert r.json()["field"] == "area"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"area": "1285"}, "url"),
        ({"area": "1285", "url": HOOK, "email": "a@b.se"}, "url"),
        ({"area": "1285", "email": "no address"}, "email"),
        ({"area": "1285", "email": "a@b.se\nBcc: x@y.se"}, "email"),
        ({"area": "1285", "url": "ftp://example.se/"}, "url"),
        ({"area": "1285", "url": HOOK, "channel": "sms"}, "channel"),
        ({"url": HOOK}, "area"),
        ({"area": "1285", "url": "x" * 3000}, "url"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    api: TestClient, world: World, body: dict[str, Any], field: str
) -> None:
    _problem(api.post(URL, json=body, headers=_admin(world)), 422, field)


def test_a_change_that_does_not_fit_the_subscription_is_a_422_naming_the_field(
    api: TestClient, world: World
) -> None:
    made = _made(api, world, {"area": "1285", "url": f"{HOOK}/fit"})
    one = f"{URL}/{made['id']}"
    try:
        _problem(api.patch(one, json={"email": "a@b.se"}, headers=_admin(world)), 422, "email")
        _problem(
            api.patch(one, json={"url": "http://10.0.0.1/"}, headers=_admin(world)), 422, "url"
        )
        _problem(api.patch(one, json={"colour": "red"}, headers=_admin(world)), 422, "colour")
    finally:
        api.delete(one, headers=_admin(world))


@pytest.mark.parametrize("subscription_id", ["0", "-1", "99999999999", "x"])
def test_an_id_that_is_no_subscription_id_is_a_422(
    api: TestClient, world: World, subscription_id: str
) -> None:
    r = api.get(f"{URL}/{subscription_id}", headers=_admin(world))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"

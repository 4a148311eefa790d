"""Every route of the OpenAPI document, called with a key of every role and of an organisation
without grants: none returns what it must not."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ORGS, World

OPEN_ROUTES = {"/healthz", "/readyz"}
WRITE_METHODS = {"post", "put", "patch", "delete"}
QUERY = {
    "area": "1285",
    "date": "2026-10-05",
    "reason": "route walk test",
}
BODIES = {
    "/api/v1/keys": {"role": "viewer", "name": "walk"},
    "/api/v1/organisations": {"code": "walk-org", "name": "Walk", "kind": "other"},
    # harmless when it succeeds: an aggregate grant far from the test incidents
    "/api/v1/grants": {"organisation": "utan-grant", "area": "0765", "level": "aggregate"},
    # a run of week 41 in Eslöv: computed once, skipped after that
    "/api/v1/runs": {"area": "1285", "week": "2026-W41"},
}
# Text that only raw incidents carry (free text, external ids), by the kommun they lie in, and
# the keys that may see them.
RAW_MARKERS = {"1285": ("HYPERLINK", '"a-0"', "a-0;"), "1214": ('"s-0"', "s-0;")}
MAY_SEE = {
    "1285": {("kommun-1285", "analyst"), ("kommun-1285", "reporter")},
    "1214": {("kommun-1214", "analyst"), ("lpo-test", "analyst")},
}


def _calls(client: TestClient, world: World) -> list[tuple[str, str, dict[str, Any]]]:
    eslov_incident = world.incident_ids["kommun-1285"][0]
    values = {
        "incident_id": str(eslov_incident),
        "code": "1285",
        "key_id": "000000000000",
        "run_id": "1",
        "subscription_id": "1",
        "name": "standard",
        "report": "2026-W41.pdf",
        "period": "2026-W41",
        "hotspot_key": "h-walk",
        "layer": "hotspots",
        # the grant the walk itself creates (BODIES), so that no later test loses its grants
        "organisation": "utan-grant",
        "area": "0765",
    }
    calls = []
    for path, item in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, op in item.items():
            url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
            params = {
                p["name"]: QUERY[p["name"]]
                for p in op.get("parameters", [])
                if p["in"] == "query" and p.get("required")
            }
            calls.append((method, url, {"params": params, "json": BODIES.get(path)}))
    return calls


def _keys() -> list[tuple[str, str]]:
    return [(org, role) for org, (_, roles) in ORGS.items() for role in roles]


def test_the_walk_covers_the_raw_incident_routes(client: TestClient, world: World) -> None:
    urls = {url for _, url, _ in _calls(client, world)}
    assert {"/api/v1/incidents", "/api/v1/incidents/export.csv", "/api/v1/layers/grid"} <= urls


def test_every_route_but_health_needs_credentials(client: TestClient, world: World) -> None:
    for method, url, kw in _calls(client, world):
        r = client.request(method, url, **kw)
        expected = 200 if url in OPEN_ROUTES else 401
        assert r.status_code == expected, (method, url, r.status_code)


@pytest.mark.parametrize(("organisation", "role"), _keys())
def test_no_route_gives_a_key_what_it_must_not(
    client: TestClient, world: World, organisation: str, role: str
) -> None:
    forbidden = [
        m
        for kommun, markers in RAW_MARKERS.items()
        if (organisation, role) not in MAY_SEE[kommun]
        for m in markers
    ]
    for method, url, kw in _calls(client, world):
        r = client.request(method, url, headers=world.headers(organisation, role), **kw)
        assert r.status_code < 500, (method, url, r.status_code, r.text)
        if role == "viewer" and method in WRITE_METHODS:
            assert r.status_code in (403, 404), (method, url, r.status_code)
        leaked = [m for m in forbidden if m in r.text]
        assert not leaked, (organisation, role, method, url, leaked)
        if role == "viewer" and r.headers.get("content-type") == "application/geo+json":
            assert '"Point"' not in r.text, (method, url)


@pytest.mark.parametrize("org,role", [("kommun-1285", "analyst"), ("kommun-1285", "viewer")])
def test_head_answers_wherever_get_does_with_its_headers_and_no_body(
    client: TestClient, world: World, org: str, role: str
) -> None:
    gets = [(url, kw) for method, url, kw in _calls(client, world) if method == "get"]
    assert len(gets) >= 8
    for url, kw in gets:
        got = client.get(url, params=kw["params"], headers=world.headers(org, role))
        head = client.head(url, params=kw["params"], headers=world.headers(org, role))
        assert head.status_code == got.status_code, url
        assert head.headers.get("content-type") == got.headers.get("content-type"), url
        if "content-length" in got.headers:
            assert head.headers["content-length"] == got.headers["content-length"], url
        assert head.content == b"", url

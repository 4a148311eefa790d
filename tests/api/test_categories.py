"""GET /api/v1/categories: the taxonomy with both labels, groups and the sensitive flag, for
every key."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.taxonomy import load_taxonomy
from tests.conftest import World


def _categories(client: TestClient, world: World, role: str = "viewer") -> list[dict]:
    r = client.get("/api/v1/categories", headers=world.headers("kommun-1285", role))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def test_every_shipped_category_is_listed_once_in_order_of_code(
    client: TestClient, world: World
) -> None:
    codes = [c["code"] for c in _categories(client, world)]
    assert codes == sorted(codes)
    assert set(codes) == {c.code for c in load_taxonomy().categories}


def test_a_category_has_both_labels_its_parent_and_its_groups(
    client: TestClient, world: World
) -> None:
    found = {c["code"]: c for c in _categories(client, world)}
    assert found["skadegorelse.klotter"] == {
        "code": "skadegorelse.klotter",
        "parent_code": "skadegorelse",
        "label_sv": "Klotter",
        "label_en": "Graffiti",
        "sensitive": False,
        "description": found["skadegorelse.klotter"]["description"],
        "groups": sorted(
            g.code for g in load_taxonomy().groups if "skadegorelse.klotter" in g.codes
        ),
    }
    assert "skadegorelse" in found["skadegorelse.klotter"]["groups"]
    assert found["skadegorelse"]["parent_code"] is None


def test_sensitive_categories_are_flagged(client: TestClient, world: World) -> None:
    found = {c["code"]: c for c in _categories(client, world)}
    assert found["vald.nara_relation"]["sensitive"] is True
    assert found["vald.nara_relation"]["label_en"] == "Domestic violence"
    taxonomy = load_taxonomy()
    assert {c for c, v in found.items() if v["sensitive"]} == {
        c.code for c in taxonomy.categories if c.sensitive
    }


@pytest.mark.parametrize("role", ["viewer", "analyst", "reporter", "admin", "ingest"])
def test_every_role_may_read_it(client: TestClient, world: World, role: str) -> None:
    assert len(_categories(client, world, role)) == len(load_taxonomy().categories)


def test_it_needs_a_key(client: TestClient) -> None:
    r = client.get("/api/v1/categories")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"

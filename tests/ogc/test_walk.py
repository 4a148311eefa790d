"""Every route of /ogc/api, called with a key of every organisation and role of the OGC world:
none fails, none answers without a key, none gives a key what it must not; and schemathesis
finds every answer to be one the document declares."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from schemathesis.checks import positive_data_acceptance

from tests.ogc.conftest import ORGS, ROLES, Ogc, get

# Text only raw incidents carry (external ids, free text) by kommun, and the keys that may see
# them: analysts with a raw grant there, and the reporting organisation's analysts and reporters.
RAW_MARKERS = {"1230": ('"a-1"', "alone in its cell"), "1231": ('"b-1"',)}
MAY_SEE = {
    "1230": {
        ("polis", "analyst"),
        ("kommun", "analyst"),
        ("kalla", "analyst"),
        ("kalla", "reporter"),
    },
    "1231": {("polis", "analyst"), ("kalla", "analyst"), ("kalla", "reporter")},
}


def _paths(ogc: Ogc, client: TestClient) -> list[str]:
    doc = get(client, ogc, "/ogc/api").json()
    # a tile of zoom 10 over Staffanstorp, where the world's hotspots are
    values = {"featureId": "1", "tileMatrix": "10", "tileRow": "321", "tileCol": "549"}
    return [re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], p) for p in doc["paths"]]


def test_the_document_lists_every_route_of_every_collection(
    ogc: Ogc, ogc_client: TestClient
) -> None:
    paths = _paths(ogc, ogc_client)
    assert len(paths) == 5 + 4 * 8 + 3 * 6  # and three tile routes per run layer
    assert "/ogc/collections/incidents/items" in paths


def test_no_route_answers_without_a_key(ogc: Ogc, ogc_client: TestClient) -> None:
    for path in _paths(ogc, ogc_client):
        assert ogc_client.get(path).status_code == 401, path


@pytest.mark.parametrize(("org", "role"), [(o, r) for o in ORGS for r in ROLES])
def test_no_route_gives_a_key_what_it_must_not(
    ogc: Ogc, ogc_client: TestClient, org: str, role: str
) -> None:
    forbidden = [
        marker
        for kommun, markers in RAW_MARKERS.items()
        if (org, role) not in MAY_SEE[kommun]
        for marker in markers
    ]
    for path in _paths(ogc, ogc_client):
        params = {"limit": 10_000} if path.endswith("/items") else None
        r = ogc_client.get(path, params=params, headers=ogc.headers(org, role))
        assert r.status_code < 500, (path, r.text)
        leaked = [m for m in forbidden if m in r.text]
        assert not leaked, (org, role, path, leaked)
        if (
            role not in ("analyst", "reporter")
            and r.headers["content-type"] == "application/geo+json"
        ):
            assert '"Point"' not in r.text, (path, org, role)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_every_operation_answers_as_documented(ogc: Ogc, ogc_client: TestClient, role: str) -> None:
    headers = ogc.headers("kommun", role)
    schema = schemathesis.openapi.from_asgi("/ogc/api", ogc_client.app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 54  # every route but /ogc/api, the document itself
    for operation in operations:

        @given(case=operation.as_strategy())
        @examples(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            # strings such as filter and datetime have a grammar no JSON Schema states: a
            # request that fits the schema may still be refused (400), as the document says
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        run()

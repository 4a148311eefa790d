"""No input gives a 500: NUL bytes anywhere, offsets beyond bigint, on every route."""

from __future__ import annotations

import gzip
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World

NUL = "a\x00b"
PATH_VALUES = {
    "incident_id": "1",
    "code": "1285",
    "key_id": "x",
    "organisation": "o",
    "area": "a",
    "run_id": "1",
    "subscription_id": "1",
    "name": "standard",
    "report": "2026-W41.pdf",
    "period": "2026-W41",
    "hotspot_key": "h-1",
    "layer": "hotspots",
}


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [(path, method, op) for path, item in paths.items() for method, op in item.items()]


@pytest.mark.parametrize("role", ["admin", "analyst", "viewer"])
def test_a_nul_byte_in_any_path_or_query_parameter_is_a_400_naming_it(
    client: TestClient, world: World, role: str
) -> None:
    headers = world.headers("kommun-1285", role)
    tried = 0
    for path, method, op in _operations(client):
        for param in op.get("parameters", []):
            if param["in"] not in ("path", "query"):
                continue
            values = {**PATH_VALUES}
            if param["in"] == "path":
                values[param["name"]] = "a%00b"  # as a client sends it
            url = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)
            query = {param["name"]: NUL} if param["in"] == "query" else {}
            r = client.request(method, url, params=query, headers=headers)
            assert r.status_code == 400, (method, url, param["name"], r.text)
            assert r.headers["content-type"] == "application/problem+json"
            where = "the path" if param["in"] == "path" else repr(param["name"])
            assert where in r.json()["detail"]
            tried += 1
    assert tried >= 20


def test_a_nul_byte_in_a_json_body_is_a_422_naming_the_field(
    client: TestClient, world: World
) -> None:
    r = client.post(
        "/api/v1/keys",
        json={"role": "viewer", "name": NUL},
        headers=world.headers("kommun-1285", "admin"),
    )
    assert r.status_code == 422 and "name contains a NUL byte" in r.text


@pytest.mark.parametrize(
    "path,role",
    [("/api/v1/areas", "viewer"), ("/api/v1/audit", "admin")],
)
def test_an_offset_beyond_bigint_is_a_422(
    client: TestClient, world: World, path: str, role: str
) -> None:
    r = client.get(path, params={"offset": 2**63}, headers=world.headers("kommun-1285", role))
    assert r.status_code == 422 and "offset" in r.text
    fine = client.get(
        path, params={"offset": 2**63 - 1}, headers=world.headers("kommun-1285", role)
    )
    assert fine.status_code == 200


def test_a_nul_byte_in_a_record_is_a_rejected_row_naming_the_field(
    client: TestClient, world: World
) -> None:
    record = {
        "source": "nul",
        "external_id": "N-1",
        "category": "ovrigt",
        "occurred_from": "2026-11-20T22:15:00+01:00",
        "lon": 14.1375,  # Älmhult
        "lat": 56.5510,
        "description": NUL,
    }
    r = client.post(
        "/api/v1/incidents", json=record, headers=world.headers("ingest-test", "reporter")
    )
    assert r.status_code == 422, r.text
    (result,) = r.json()["results"]
    assert result["status"] == "rejected" and result["field"] == "description"


def test_a_file_of_blank_lines_imports_nothing_and_says_so(
    client: TestClient, world: World
) -> None:
    header = (
        b"external_id;category;occurred_from;occurred_to;lon;lat;location_precision;description\n"
    )
    row = b"B-1;ovrigt;2026-11-20T22:15:00+01:00;;14.1375;56.551;address;x\n"
    headers = world.headers("ingest-test", "reporter")
    only_blank = gzip.compress(header + b"\n" * 3_000_000)  # many whole batches of nothing
    r = client.post(
        "/api/v1/imports",
        files={"file": ("blank.csv.gz", only_blank, "application/gzip")},
        data={"source": "blank"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["rows"], r.json()["created"]) == (0, 0)
    assert any("3000000 empty rows were skipped" in n for n in r.json()["notes"])
    one = header + b"\n" * 120_000 + row
    r = client.post(
        "/api/v1/imports",
        files={"file": ("one.csv", one, "text/csv")},
        data={"source": "blank"},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["created"] == 1, r.text


def test_a_method_that_a_route_does_not_take_is_405_with_allow(client: TestClient) -> None:
    r = client.delete("/api/v1/areas")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert "GET" in r.headers["allow"]

"""POST /api/v1/imports: a file upload takes the same path as `est import`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.cli.test_import import HEADER, _rows
from tests.conftest import World


def _upload(
    client: TestClient, world: World, content: str, role: str = "reporter", **form: str
) -> object:
    return client.post(
        "/api/v1/imports",
        files={"file": ("incidenter.csv", content.encode("utf-8"), "text/csv")},
        data={"source": "upload", **form},
        headers=world.headers("ingest-test", role),
    )


def test_an_uploaded_file_is_imported_and_a_second_upload_changes_nothing(
    client: TestClient, world: World
) -> None:
    content = "\n".join([HEADER, *_rows(50, "u")]) + "\n"
    first = _upload(client, world, content)
    again = _upload(client, world, content)
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["created"], again.json()["unchanged"]) == (50, 50)


def test_a_file_with_bad_rows_is_refused_whole_unless_valid_rows_are_accepted(
    client: TestClient, world: World, system_engine: Engine
) -> None:
    content = "\n".join([HEADER, *_rows(40, "v", bad_every=20)]) + "\n"
    refused = _upload(client, world, content)
    assert refused.status_code == 422
    body = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert body["rejected_count"] == 2
    assert [(r["row"], r["field"]) for r in body["rejected"]] == [(8, "category"), (28, "category")]
    with system_engine.connect() as conn:
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM est.incident WHERE external_id LIKE 'v%' "
                    "AND source = 'upload'"
                )
            )
            == 0
        )
    accepted = _upload(client, world, content, accept_valid="true")
    assert accepted.status_code == 200 and accepted.json()["created"] == 38


def test_viewers_cannot_import(client: TestClient, world: World) -> None:
    assert _upload(client, world, HEADER + "\n", role="viewer").status_code == 403


def test_an_unknown_mapping_is_a_clear_422(client: TestClient, world: World) -> None:
    r = _upload(client, world, HEADER + "\n", mapping="../../etc/passwd")
    assert r.status_code == 422 and "presets" in r.json()["detail"]

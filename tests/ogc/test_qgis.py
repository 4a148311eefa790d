"""QGIS 3.22 (python3-qgis, offscreen) loads every collection through its OAPIF provider with a
Basic authentication configuration, the key as the password, and reads every feature."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.ogc.collections import COLLECTIONS
from tests.ogc.conftest import Ogc, get

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-qgis installs


def _has_qgis() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _has_qgis(), reason="python3-qgis is not installed"),
]


@pytest.mark.parametrize("who", [("polis", "analyst"), ("insyn", "viewer")])
def test_qgis_loads_every_collection_the_key_may_read_with_all_its_features(
    ogc: Ogc, server: str, ogc_client: TestClient, tmp_path: Path, who: tuple[str, str]
) -> None:
    listed = get(ogc_client, ogc, "/ogc/collections", who).json()["collections"]
    names = [c["id"] for c in listed]
    expected = {
        name: get(ogc_client, ogc, f"/ogc/collections/{name}/items", who, limit=1).json()[
            "numberMatched"
        ]
        for name in names
    }
    script = Path(__file__).with_name("qgis_load.py")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    done = subprocess.run(
        [SYSTEM_PYTHON, str(script), server, ogc.token(*who), str(tmp_path), *names],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    geometry = {c.id: c.geometry_type for c in COLLECTIONS}
    for name in names:
        assert loaded[name]["valid"], (name, done.stderr[-2000:])
        assert loaded[name]["features"] == expected[name], name
        if expected[name]:  # an empty layer has no geometry type to tell
            assert loaded[name]["geometry"].startswith(geometry[name]), loaded[name]

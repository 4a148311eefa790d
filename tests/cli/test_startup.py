"""`est --help` and other commands that need no data load none of the heavy libraries.

The start-up time itself is measured in bench/bench_startup.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("geopandas", "pandas", "pyogrio", "numba", "shapely", "app.db.models", "sqlalchemy.orm")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return [m for m in HEAVY if m in json.loads(out.splitlines()[-1])]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import app.cli") == []


def test_help_of_every_group_loads_no_heavy_library() -> None:
    code = (
        "import contextlib, io\n"
        "from app.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['db', '--help'], ['import', '--help'], ['analyze', '--help']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
    )
    assert _loaded_after(code) == []


def test_the_probe_sees_a_heavy_library_when_one_is_loaded() -> None:
    assert _loaded_after("import app.cli, pandas") == ["pandas"]

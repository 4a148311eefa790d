"""The libraries stay libraries: geo and clustering never import the app, web or database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "app",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "geoalchemy2",
    "alembic",
    "psycopg",
    "pydantic_settings",
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["geo", "clustering"])
def test_library_packages_import_nothing_from_the_service_side(package: str) -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN)
        for p in (ROOT / package).rglob("*.py")
        if _imports(p) & FORBIDDEN
    }
    assert offenders == {}


def test_geo_does_not_import_clustering() -> None:
    offenders = [str(p) for p in (ROOT / "geo").rglob("*.py") if "clustering" in _imports(p)]
    assert offenders == []

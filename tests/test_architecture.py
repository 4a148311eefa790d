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
    "matplotlib",  # drawing belongs to app/reports
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


def _full_imports(path: Path) -> set[str]:
    """Every module a file imports, dotted in full (app.ingest.readers, not app)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def _constructs_crs_objects(path: Path) -> list[str]:
    """The lines where a file builds a pyproj CRS or Transformer (by name or attribute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        target = func.value if isinstance(func, ast.Attribute) else func
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        called = func.attr if isinstance(func, ast.Attribute) else ""
        if name in {"CRS", "Transformer"} or (
            name == "pyproj" and called in {"CRS", "Transformer"}
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_geo_crs_builds_coordinate_systems_and_transformers() -> None:
    # bench/ may: its peers are written the way one would without this project
    offenders = [
        line
        for p in _python_files("app", "clustering", "geo")
        if p != ROOT / "geo" / "crs.py"
        for line in _constructs_crs_objects(p)
    ]
    assert offenders == []


def test_the_architecture_test_sees_a_transformer_built_elsewhere(tmp_path: Path) -> None:
    sample = ROOT / "geo" / "_sample_for_the_test.py"
    try:
        sample.write_text("from pyproj import Transformer\nT = Transformer.from_crs(4326, 3006)\n")
        assert _constructs_crs_objects(sample) == ["geo/_sample_for_the_test.py:2"]
    finally:
        sample.unlink()


def test_the_database_layer_does_not_import_the_ingest_layer() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _full_imports(p) if m.startswith("app.ingest"))
        for p in _python_files("app/db")
        if any(m.startswith("app.ingest") for m in _full_imports(p))
    }
    assert offenders == {}


SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "ALTER ", "CREATE ")


def _sql_texts(path: Path) -> list[str]:
    """String constants in a file that read as SQL, and every call of sqlalchemy's text()."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.lstrip().upper()
            if head.startswith(SQL_WORDS) and (" FROM " in head or " SET " in head or "(" in head):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "text":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_route_modules_hold_no_sql() -> None:
    routes = [*_python_files("app/api/routes"), ROOT / "app" / "api" / "ogc" / "factory.py"]
    offenders = [line for p in routes for line in _sql_texts(p)]
    assert offenders == []

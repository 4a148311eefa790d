"""polisen.se JSON files (an array of objects, nested ones flattened to dotted keys)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.ingest.mapping import Mapping
from app.ingest.readers.columns import Errors, convert, read_batch
from app.ingest.readers.plan import Column, Options, ReadBatch, ReadError, plan_for


def read_json_file(
    path: Path, mapping: Mapping, opts: Options, batch_size: int
) -> Iterator[ReadBatch]:
    """Read a JSON array of objects (plain or gzipped) in batches."""
    # The polisen.se API answers with at most a few tens of MB: read whole, cut into batches.
    with path.open("rb") as f:
        content = f.read()
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    try:
        objs = orjson.loads(content)
    except orjson.JSONDecodeError as e:
        raise ReadError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(objs, list):
        raise ReadError(f"{path.name} must hold a JSON array of objects")
    flat = [flatten(o) if isinstance(o, dict) else None for o in objs]
    names = sorted({k for f in flat if f is not None for k in f})
    plan = plan_for(mapping, names, opts)
    columns = plan.columns()
    for start in range(0, len(flat), batch_size):
        part = flat[start : start + batch_size]
        errors = Errors()
        cols = json_columns(part, columns, errors)
        row = np.arange(start + 1, start + len(part) + 1, dtype=np.int64)
        yield read_batch(
            convert(cols, row, plan, errors),
            plan,
            opts,
            blank=0,
            rows_read=start + len(part),
            rows_total=len(flat),
            bytes_read=None,
            bytes_total=None,
        )


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted keys: {"location": {"gps": ...}} → "location.gps"."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def json_columns(
    objs: list[dict[str, Any] | None], columns: list[str], errors: Errors
) -> dict[str, Column]:
    """Text columns from JSON objects; values that are not text or numbers are row errors."""
    cols: dict[str, Column] = {c: np.full(len(objs), "", dtype=object) for c in columns}
    for i, obj in enumerate(objs):
        if obj is None:
            errors.add(i, "record", "is not a JSON object")
            continue
        for name in columns:
            value = obj.get(name)
            if value is None:
                continue
            text, problem = _json_text(value)
            if problem is not None:
                errors.add(i, name, problem)
            else:
                cols[name][i] = text
    return cols


def _json_text(value: Any) -> tuple[str, str | None]:
    """A JSON value as text, or why it cannot be one."""
    if isinstance(value, str):
        return value, bad_text(value)
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        return repr(value), None
    return "", f"is {'a list' if isinstance(value, list) else 'an object'}, not a value"


def bad_text(value: str) -> str | None:
    """Why a string cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode text)"
    return None

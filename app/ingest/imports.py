"""Importing a whole file: every batch validated, staged by COPY, applied in one upsert.

By default an import is all-or-nothing: one transaction, and any rejected row rolls it all back
(the rejects are still reported, every one of them). With accept_valid the valid rows are
stored and the rejects written to a CSV. The import itself is recorded in est.import_job
before the work starts, so an import that died is on record as well.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from app.exports import csv_lines
from app.ingest.batch import RowError
from app.ingest.readers import ReadBatch, ReadTotals
from app.ingest.service import ingest_context, staged_frame
from app.ingest.store import Staging, UpsertResult
from app.ingest.validate import describe, validate
from app.settings import Settings


@dataclass
class ImportSummary:
    """The outcome of an import, for the CLI's table and the API's answer."""

    import_id: int
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowError] = field(default_factory=list)
    not_incident: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    stored: bool = False

    def counts(self) -> dict[str, Any]:
        """Return the counts as stored with the import record."""
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "not_incident": sum(self.not_incident.values()),
        }


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def start_import(
    engine: Engine,
    organisation_id: int,
    created_by: str,
    source: str,
    filename: str | None,
    sha256: str | None,
    mapping: dict[str, Any] | None,
) -> int:
    """Record that an import starts (committed at once) and return its id."""
    with engine.begin() as conn:
        import_id = conn.scalar(
            text("""
                INSERT INTO est.import_job (organisation_id, created_by, source, filename,
                                            file_sha256, mapping, status)
                VALUES (:org, :by, :source, :filename, :sha, CAST(:mapping AS jsonb), 'running')
                RETURNING id
            """),
            {
                "org": organisation_id,
                "by": created_by,
                "source": source,
                "filename": filename,
                "sha": sha256,
                "mapping": orjson.dumps(mapping).decode() if mapping else None,
            },
        )
    assert import_id is not None
    return int(import_id)


def finish_import(conn: Connection, summary: ImportSummary, status: str) -> None:
    """Record how an import ended."""
    conn.execute(
        text("""
            UPDATE est.import_job SET status = CAST(:status AS est.import_status),
                finished_at = now(), counts = CAST(:counts AS jsonb), notes = CAST(:notes AS jsonb)
            WHERE id = :id
        """),
        {
            "id": summary.import_id,
            "status": status,
            "counts": orjson.dumps(summary.counts()).decode(),
            "notes": orjson.dumps(summary.notes).decode(),
        },
    )


def run_import(
    conn: Connection,
    settings: Settings,
    summary: ImportSummary,
    organisation_id: int,
    created_by: str,
    source: str,
    batches: Iterable[ReadBatch],
    accept_valid: bool = False,
    on_batch: Callable[[ReadBatch, ImportSummary], None] | None = None,
) -> ImportSummary:
    """Validate and stage every batch in the caller's transaction, then apply them at once.

    Returns with `summary.stored` False when rows were rejected and accept_valid is off: the
    caller then rolls the transaction back.
    """
    ctx = ingest_context(conn, settings)
    staging = Staging(conn)
    masked: Counter[str] = Counter()
    at_default: Counter[str] = Counter()
    totals = ReadTotals()
    for read in batches:
        validated = validate(read.batch, ctx, source)
        totals.add(read)
        summary.rows += len(read.batch)
        summary.rejected += validated.rejected
        masked += validated.masked_counts
        at_default += validated.at_default_location
        if accept_valid or not summary.rejected:
            staging.copy_frame(staged_frame(validated, created_by))
        if on_batch is not None:
            on_batch(read, summary)
    summary.not_incident = totals.not_incident
    shared = staging.shared_points(ctx.srid, settings.shared_point_warning)
    summary.notes = totals.warnings + describe(masked, at_default, shared)
    if summary.rejected and not accept_valid:
        return summary
    stored: UpsertResult = staging.apply(organisation_id, ctx.srid)
    summary.created, summary.updated, summary.unchanged = (
        stored.created,
        stored.updated,
        stored.unchanged,
    )
    summary.stored = True
    finish_import(conn, summary, "succeeded")
    return summary


def write_rejects(rejected: list[RowError], path: Path) -> None:
    """Write rejected rows (row number, field, reason) as a CSV for Swedish Excel."""
    with path.open("w", encoding="utf-8", newline="") as f:
        for line in csv_lines(
            ("row", "field", "reason"), ((e.row, e.field, e.reason) for e in rejected)
        ):
            f.write(line)

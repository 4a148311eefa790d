"""Importing a whole file: every batch validated, staged by COPY and stored set-wise.

By default an import is all-or-nothing: one transaction, and any rejected row rolls it all back
(the rejects are still reported, every one of them). With accept_valid the valid rows are
stored and the rejects written to a CSV. The import itself is recorded in est.import_job
before the work starts, so an import that died is on record as well.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, text

from app.core.spreadsheet import csv_lines
from app.ingest.ahead import ahead_on_a_thread
from app.ingest.batch import RowError
from app.ingest.readers import ReadBatch, ReadTotals
from app.ingest.service import ingest_context, staged_frame
from app.ingest.store import NOTHING_STORED, PreparedBatch, Staging, prepare
from app.ingest.validate import Validated, describe, validate
from app.settings import Settings

T = TypeVar("T")


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
    """Validate and store every batch in the caller's transaction.

    Reading, validating and formatting run on a worker thread one or two batches ahead, while
    this thread stores the batch before: the database's work and Python's overlap. Returns with
    `summary.stored` False when rows were rejected and accept_valid is off: the caller then rolls
    the transaction back (what was stored of the earlier batches goes with it).
    """
    ctx = ingest_context(conn, settings)
    staging = Staging(conn, organisation_id, ctx.srid, row_statuses=False)

    def prepared() -> Iterator[tuple[ReadBatch, Validated, PreparedBatch | None]]:
        storing = True
        for read in batches:
            validated = validate(read.batch, ctx, source)
            storing = storing and (accept_valid or not validated.rejected)
            ready = prepare(staged_frame(validated, created_by)) if storing else None
            yield read, validated, ready

    masked: Counter[str] = Counter()
    at_default: Counter[str] = Counter()
    totals = ReadTotals()
    stored = NOTHING_STORED
    for read, validated, ready in ahead_on_a_thread(prepared()):
        totals.add(read)
        summary.rows += len(read.batch)
        summary.rejected += validated.rejected
        masked += validated.masked_counts
        at_default += validated.at_default_location
        if ready is not None:  # None from the first rejection on, unless accept_valid
            stored = stored + staging.store(ready)
        if on_batch is not None:
            on_batch(read, summary)
    summary.not_incident = totals.not_incident
    shared = staging.shared_points(settings.shared_point_warning)
    summary.notes = totals.warnings + describe(masked, at_default, shared)
    if summary.rejected and not accept_valid:
        return summary
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

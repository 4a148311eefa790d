"""The one import pipeline: batches in, validated against the deployment, stored, accounted.

`est import`, `POST /api/v1/imports`, `POST /api/v1/incidents` and `est demo` all call
`run_import`. It works in the caller's transaction inside a savepoint: everything valid is
stored, or (all or nothing, the default) nothing when any row was rejected; an error or a kill
halfway leaves nothing either. A file import is recorded in est.import_job through the job life
cycle of `app.db.jobs`: started and committed before the work, a heartbeat while it runs, its
counts written with the data, or `failed` with the reason.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, Engine

from app.core.errors import InvalidInput
from app.core.spreadsheet import csv_lines
from app.db.deployment import DeploymentCache, Place
from app.db.jobs import IMPORT_JOBS, Job
from app.ingest.ahead import ahead_on_a_thread
from app.ingest.batch import RawBatch, RowError
from app.ingest.mapping import Mapping
from app.ingest.readers import DEFAULT_BATCH_SIZE, ReadBatch, ReadTotals, read_batches
from app.ingest.repeats import SHOWN as SHOWN_REPEATS
from app.ingest.repeats import RepeatedIds
from app.ingest.store import NOTHING_STORED, PreparedBatch, Staging, UpsertResult, prepare
from app.ingest.validate import (
    SHARED_POINTS_SHOWN,
    IngestContext,
    Validated,
    describe,
    shared_point_details,
    validate,
)
from app.settings import Settings
from geo.crs import from_lonlat


def ingest_context(
    conn: Connection,
    settings: Settings,
    now: datetime | None = None,
    cache: DeploymentCache | None = None,
) -> IngestContext:
    """Return what validation checks against: the deployment, its fallback points, the time."""
    deployment = (cache or DeploymentCache()).get(conn)
    area = deployment.require_area()
    places = list(deployment.centroids)
    for name, lon, lat in [("0/0", 0.0, 0.0), *_configured(settings.default_locations)]:
        x, y = from_lonlat(lon, lat, deployment.srid)
        if np.isfinite(x) and np.isfinite(y):
            places.append(Place(name, float(x), float(y)))
    return IngestContext(
        srid=deployment.srid,
        accepted_area=area,
        categories=deployment.categories,
        now=now or datetime.now(UTC),
        default_locations=tuple(places),
        default_tolerance_m=settings.default_location_tolerance_m,
    )


def _configured(values: list[str]) -> list[tuple[str, float, float]]:
    out = []
    for value in values:
        name, _, coords = value.rpartition(":")
        lon, lat = (float(v) for v in coords.split(","))
        out.append((name or coords, lon, lat))
    return out


def _iso(values: npt.NDArray[np.datetime64]) -> npt.NDArray[np.str_]:
    text_values = np.datetime_as_string(values, unit="us", timezone="UTC")
    return np.where(np.isnat(values), "", text_values)


def staged_frame(v: Validated, created_by: str) -> pd.DataFrame:
    """Return validated columns as a frame in the staging table's layout."""
    return pd.DataFrame(
        {
            "row_no": v.row,
            "source": v.source,
            "external_id": v.external_id,
            "category_code": v.category,
            "occurred_from": _iso(v.occurred_from),
            "occurred_to": _iso(v.occurred_to),
            "x": v.x,
            "y": v.y,
            "location_precision": v.location_precision,
            "description": v.description,
            "created_by": created_by,
        }
    )


@dataclass
class BatchOutcome:
    """What happened to one batch: the validation, the store's counts and the notes."""

    validated: Validated
    stored: UpsertResult
    notes: list[str]

    @property
    def rejected(self) -> list[RowError]:
        """The rows that were not stored, with field and reason."""
        return self.validated.rejected


def ingest_batch(
    conn: Connection,
    ctx: IngestContext,
    organisation_id: int,
    created_by: str,
    batch: RawBatch,
    source: str | None = None,
    store_when_rejected: bool = True,
    shared_point_warning: int = 50,
) -> BatchOutcome:
    """Validate one batch and store its valid rows, with a status per row (the REST path)."""
    validated = validate(batch, ctx, source)
    if validated.rejected and not store_when_rejected:
        return BatchOutcome(validated, NOTHING_STORED, [])
    staging = Staging(conn, organisation_id, ctx.srid)
    stored = staging.store(prepare(staged_frame(validated, created_by)))
    shared = staging.shared_points(shared_point_warning)
    notes = describe(
        validated.masked_counts, validated.at_default_location, shared, shared_point_warning
    )
    return BatchOutcome(validated, stored, notes)


def record_results(outcome: BatchOutcome) -> list[dict[str, Any]]:
    """Per input row: its status and, for a rejection, the field and the reason."""
    return _row_results(outcome.validated, outcome.stored)


def _row_results(v: Validated, stored: UpsertResult) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [
        {
            "row": int(r),
            "external_id": e,
            "status": stored.status(int(r)),
            **({"masked": True} if int(r) in v.masked else {}),
        }
        for r, e in zip(v.row, v.external_id, strict=True)
    ]
    results += [
        {
            "row": e.row,
            "status": "rejected",
            "field": e.field,
            "reason": e.reason,
            **({"value": e.value} if e.value is not None else {}),
        }
        for e in v.rejected
    ]
    return sorted(results, key=lambda r: r["row"])


@dataclass(frozen=True)
class ImportSpec:
    """Who imports what: the organisation, the default source, the file, and the rules."""

    organisation_id: int
    created_by: str
    source: str | None  # for rows that name none; a REST body names its own
    filename: str | None = None
    file_sha256: str | None = None
    mapping: dict[str, Any] | None = None
    accept_valid: bool = False
    recorded: bool = True  # an est.import_job row; POST /incidents answers per record instead
    row_statuses: bool = False  # a status per row in the summary (costs time on big files)


@dataclass
class ImportSummary:
    """The outcome of an import, for the CLI's table and the API's answer.

    `notes` are what a person reads (the busiest shared points, the first repeated ids);
    `details` what they leave out (every shared point, the rows of every repeated id), for
    the notes file and the import record.
    """

    import_id: int | None
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowError] = field(default_factory=list)
    not_incident: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    shared_points: list[tuple[float, float, int]] = field(default_factory=list)
    repeated_ids: int = 0
    repeated_rows: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
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
            "repeated_ids": self.repeated_ids,
            "repeated_rows": self.repeated_rows,
        }


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_import(
    path: Path,
    mapping: Mapping,
    settings: Settings,
    *,
    organisation_id: int,
    created_by: str,
    source: str,
    source_override: str | None = None,
    timezone: str | None = None,
    crs: str | None = None,
    accept_valid: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[ImportSpec, Iterator[ReadBatch]]:
    """The record and the batches of a file import (`est import`, POST /imports).

    `source` names the rows whose file gives none; times without an offset are read in
    `timezone`, else the mapping's zone, else EST_TIMEZONE.
    """
    spec = ImportSpec(
        organisation_id=organisation_id,
        created_by=created_by,
        source=source,
        filename=path.name,
        file_sha256=file_sha256(path),
        mapping=mapping.model_dump(mode="json"),
        accept_valid=accept_valid,
    )
    batches = read_batches(
        path,
        mapping,
        source_override=source_override,
        timezone_override=timezone,
        crs_override=crs,
        default_timezone=settings.timezone,
        batch_size=batch_size,
    )
    return spec, batches


def whole(batch: RawBatch) -> ReadBatch:
    """Return records that did not come from a file (a REST body, the demo) as one read batch."""
    n = len(batch)
    return ReadBatch(batch, None, Counter(), 0, 0, n, n, None, None)


OnBatch = Callable[[ReadBatch, ImportSummary], None]


def run_import(
    engine: Engine,
    conn: Connection,
    settings: Settings,
    spec: ImportSpec,
    batches: Iterable[ReadBatch],
    *,
    cache: DeploymentCache | None = None,
    on_batch: OnBatch | None = None,
) -> ImportSummary:
    """Validate and store every batch in a savepoint of the caller's transaction (`conn`).

    Returns with `summary.stored` False, and nothing stored, when rows were rejected and
    `spec.accept_valid` is off. `engine` records the job in transactions of its own.
    """
    job = Job.start(engine, IMPORT_JOBS, _job_values(spec)) if spec.recorded else None
    summary = ImportSummary(import_id=job.id if job is not None else None)
    savepoint = conn.begin_nested()
    try:
        with job.beating() if job is not None else nullcontext():
            _store_all(conn, settings, spec, batches, summary, cache, on_batch)
    except BaseException as exc:
        _roll_back(savepoint)
        if job is not None:
            job.fail(_reason(exc), counts=summary.counts())
        raise
    if not summary.stored:
        savepoint.rollback()
        if job is not None:
            job.fail(_rejected_reason(summary), counts=summary.counts(), notes=_all(summary))
        return summary
    savepoint.commit()
    if job is not None:
        job.finish(conn, counts=summary.counts(), notes=_all(summary))
    return summary


def _all(summary: ImportSummary) -> list[str]:
    """The notes and the details they leave out, as the import record keeps them."""
    return summary.notes + summary.details


def _job_values(spec: ImportSpec) -> dict[str, Any]:
    return {
        "organisation_id": spec.organisation_id,
        "created_by": spec.created_by,
        "source": spec.source,
        "filename": spec.filename,
        "file_sha256": spec.file_sha256,
        "mapping": spec.mapping,
    }


def _roll_back(savepoint: Any) -> None:
    with suppress(Exception):  # the connection itself is gone: the transaction goes with it
        savepoint.rollback()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidInput):
        return exc.detail
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def _rejected_reason(summary: ImportSummary) -> str:
    first = summary.rejected[0]
    return (
        f"{len(summary.rejected)} rows were rejected (the first: row {first.row}, {first.field}: "
        f"{first.reason}); nothing was stored"
    )


def _store_all(
    conn: Connection,
    settings: Settings,
    spec: ImportSpec,
    batches: Iterable[ReadBatch],
    summary: ImportSummary,
    cache: DeploymentCache | None,
    on_batch: OnBatch | None,
) -> None:
    """Store the batches while a worker thread reads, validates and formats the next ones."""
    ctx = ingest_context(conn, settings, cache=cache)
    staging = Staging(conn, spec.organisation_id, ctx.srid, row_statuses=spec.row_statuses)

    def prepared() -> Iterator[tuple[ReadBatch, Validated, PreparedBatch | None]]:
        storing = True
        for read in batches:
            validated = validate(read.batch, ctx, spec.source)
            storing = storing and (spec.accept_valid or not validated.rejected)
            ready = prepare(staged_frame(validated, spec.created_by)) if storing else None
            yield read, validated, ready

    masked: Counter[str] = Counter()
    at_default: Counter[str] = Counter()
    totals = ReadTotals()
    repeats = RepeatedIds()
    stored = NOTHING_STORED
    for read, validated, ready in ahead_on_a_thread(prepared()):
        totals.add(read)
        summary.rows += len(read.batch)
        summary.rejected += validated.rejected
        masked += validated.masked_counts
        at_default += validated.at_default_location
        repeats.add(validated.source, validated.external_id, validated.row)
        if ready is not None:  # None from the first rejection on, unless accept_valid
            batch_stored = staging.store(ready)
            stored = stored + batch_stored
            if spec.row_statuses:
                summary.results += _row_results(validated, batch_stored)
        if on_batch is not None:
            on_batch(read, summary)
    summary.not_incident = totals.not_incident
    shared = staging.shared_points(settings.shared_point_warning)
    summary.shared_points = shared
    summary.repeated_ids, summary.repeated_rows = repeats.ids, repeats.rows
    summary.notes = totals.warnings + describe(
        masked, at_default, shared, settings.shared_point_warning
    )
    summary.notes += repeats.notes()
    if len(shared) > SHARED_POINTS_SHOWN:
        summary.details += shared_point_details(shared)
    if repeats.ids > SHOWN_REPEATS:
        summary.details += repeats.details()
    if summary.rejected and not spec.accept_valid:
        return
    summary.created, summary.updated, summary.unchanged = (
        stored.created,
        stored.updated,
        stored.unchanged,
    )
    summary.stored = True


def write_rejects(rejected: list[RowError], path: Path) -> None:
    """Write rejected rows (row number, field, reason, the value at fault) as a CSV for
    Swedish Excel."""
    with path.open("w", encoding="utf-8", newline="") as f:
        for line in csv_lines(
            ("row", "field", "reason", "value"),
            ((e.row, e.field, e.reason, e.value) for e in rejected),
        ):
            f.write(line)


def write_notes(summary: ImportSummary, path: Path) -> None:
    """Write every note of an import, with the details the summary leaves out, as text."""
    with path.open("w", encoding="utf-8") as f:
        for line in _all(summary):
            f.write(line + "\n")

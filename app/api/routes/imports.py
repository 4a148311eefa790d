"""File imports over REST: the same path as `est import`, as the caller's organisation."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel

from app.api.deps import DeploymentDep, EngineDep, SessionDep, SettingsDep, WriterPrincipal
from app.core.errors import InvalidInput, Rejected
from app.ingest.mapping import Mapping, load_mapping, preset_names, read_mapping
from app.ingest.pipeline import ImportSummary, file_import, run_import

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])
SHOWN_REJECTS = 1000
MAX_MAPPING_BYTES = 1 << 20  # a mapping is a page of YAML; the Chicago preset is 4 KB


class Reject(BaseModel):
    """A row that was not imported, and the value at fault as written (when there is one)."""

    row: int
    field: str
    reason: str
    value: str | None = None


class SharedPoint(BaseModel):
    """A point that many records of the import share (lon/lat)."""

    lon: float
    lat: float
    records: int


class ImportAnswer(BaseModel):
    """What an import did; at most the first 1000 rejects are listed."""

    import_id: int
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected_count: int
    rejected: list[Reject]
    not_incident: dict[str, int]
    repeated_ids: int
    notes: list[str]
    shared_points: list[SharedPoint]


def _answer(summary: ImportSummary) -> ImportAnswer:
    return ImportAnswer(
        import_id=summary.import_id or 0,  # a recorded import always has one
        rows=summary.rows,
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        rejected_count=len(summary.rejected),
        rejected=[
            Reject(row=e.row, field=e.field, reason=e.reason, value=e.value)
            for e in summary.rejected[:SHOWN_REJECTS]
        ],
        not_incident=dict(summary.not_incident),
        repeated_ids=summary.repeated_ids,
        notes=summary.notes,
        shared_points=[
            SharedPoint(lon=lon, lat=lat, records=n) for lon, lat, n in summary.shared_points
        ],
    )


def _mapping(preset: str | None, upload: UploadFile | None) -> Mapping:
    """The mapping of an import: a preset by name, or an uploaded mapping file (YAML)."""
    if upload is not None:
        if preset is not None:
            raise InvalidInput("give either mapping (a preset) or mapping_file, not both")
        raw = upload.file.read(MAX_MAPPING_BYTES + 1)
        if len(raw) > MAX_MAPPING_BYTES:
            raise InvalidInput("mapping_file is larger than 1 MiB: is it a mapping?")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("mapping_file is not UTF-8 text (a YAML mapping file)") from None
        return read_mapping(text, Path(upload.filename or "mapping_file").name)
    if preset is None:
        return load_mapping("est")
    if preset not in preset_names():
        raise InvalidInput(
            f"mapping must be one of the presets: {', '.join(preset_names())} "
            "(send your own as mapping_file)"
        )
    return load_mapping(preset)


@router.post("", summary="Import a file (CSV, GeoJSON, GeoPackage): all or nothing by default")
def import_file(
    principal: WriterPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    engine: EngineDep,
    deployment: DeploymentDep,
    file: Annotated[UploadFile, File(description="CSV (, or ;), GeoJSON or GeoPackage; .gz ok")],
    source: Annotated[str | None, Form(max_length=64)] = None,
    mapping: Annotated[
        str | None,
        Form(description="a preset: " + ", ".join(preset_names()) + " (default est)"),
    ] = None,
    mapping_file: Annotated[
        UploadFile | None,
        File(description="a mapping file (YAML, data/mappings/README.md) instead of a preset"),
    ] = None,
    crs: Annotated[str | None, Form()] = None,
    timezone: Annotated[str | None, Form()] = None,
    accept_valid: Annotated[bool, Form(description="store the valid rows anyway")] = False,
) -> ImportAnswer:
    """Validate every row; store all of them, or with accept_valid the valid ones.

    The file's format is the mapping's, else what the file is (GeoJSON, GeoPackage, CSV).
    """
    chosen = _mapping(mapping, mapping_file)
    effective_source = source or chosen.source
    if not effective_source:
        raise InvalidInput("give a source: records are keyed by source and id")
    name = Path(file.filename or "").name
    if name in ("", ".", ".."):
        name = "upload"  # the format then comes from the content
    with tempfile.TemporaryDirectory(prefix="est-import-") as folder:
        path = Path(folder) / name
        with path.open("wb") as target:
            shutil.copyfileobj(file.file, target, length=1 << 20)
        spec, batches = file_import(
            path,
            chosen,
            settings,
            organisation_id=principal.organisation_id,
            created_by=principal.subject,
            source=effective_source,
            source_override=source,
            timezone=timezone,
            crs=crs,
            accept_valid=accept_valid,
        )
        summary = run_import(
            engine, session.connection(), settings, spec, batches, cache=deployment
        )
    if not summary.stored:
        answer: dict[str, Any] = _answer(summary).model_dump()
        first = summary.rejected[0]
        raise Rejected(
            f"nothing was imported: {len(summary.rejected)} rows were rejected (the first: row "
            f"{first.row}, {first.field}: {first.reason}); fix them, or send accept_valid=true",
            **answer,
        )
    return _answer(summary)

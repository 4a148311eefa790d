"""Registering incidents over REST: one, a list or a GeoJSON FeatureCollection."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.access.auth import Principal
from app.api.deps import DeploymentDep, EngineDep, SessionDep, SettingsDep, WriterPrincipal
from app.core.errors import InvalidInput, TooLarge
from app.db.deployment import DeploymentCache
from app.ingest import idempotency
from app.ingest.batch import RawBatch
from app.ingest.pipeline import ImportSpec, run_import, whole
from app.ingest.readers import read_feature_collection, read_records
from app.settings import Settings

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


class RecordResult(BaseModel):
    """What happened to one record of a POST."""

    row: int
    status: Literal["created", "updated", "unchanged", "rejected"]
    external_id: str | None = None
    field: str | None = None
    reason: str | None = None
    masked: bool | None = None


class PostAnswer(BaseModel):
    """Counts, per-record results and notes (masked text, default locations, warnings)."""

    created: int
    updated: int
    unchanged: int
    rejected: int
    results: list[RecordResult]
    notes: list[str]


POST_EXAMPLE = {
    "source": "kommunens-trygghetsapp",
    "external_id": "2026-000123",
    "category": "skadegorelse.klotter",
    "occurred_from": "2026-11-20T22:15:00+01:00",
    "lon": 13.3035,
    "lat": 55.8392,
    "location_precision": "address",
    "description": "Klotter på busskuren",
}


def _parse_body(body: Any, limit: int) -> RawBatch:
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        n = len(body.get("features") or [])
        batch_of = read_feature_collection
    elif isinstance(body, dict):
        body, n, batch_of = [body], 1, read_records
    elif isinstance(body, list):
        n, batch_of = len(body), read_records
    else:
        raise InvalidInput("send an incident object, a list of them or a FeatureCollection")
    if n > limit:
        raise TooLarge(f"{n} records; at most {limit} may be sent at once")
    if n == 0:
        raise InvalidInput("no records in the body")
    try:
        return batch_of(body)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@router.post(
    "",
    summary="Register incidents: one, a list, or a GeoJSON FeatureCollection",
    responses={
        200: {"description": "Every record stored (or already stored as it is)"},
        409: {"description": "A request with this Idempotency-Key is still running"},
        422: {
            "model": PostAnswer,
            "description": "Some or all records were rejected (see results: row, field, "
            "reason); the others were stored. A body that is not JSON at all, or not "
            "records, is a problem+json 422 instead.",
        },
    },
)
def post_incidents(
    principal: WriterPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    engine: EngineDep,
    deployment: DeploymentDep,
    request: Request,
    response: Response,
    body: Annotated[Any, Body(examples=[POST_EXAMPLE])],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> PostAnswer:
    """Validate and store records; by (source, external_id) a resend updates, never doubles."""
    org = principal.organisation_id
    if idempotency_key is not None:
        stored = idempotency.claim(engine, org, idempotency_key, idempotency.request_digest(body))
        if stored is not None:
            response.status_code = stored.status_code
            return PostAnswer(**stored.body)
    try:
        answer, status = _store(principal, session, settings, engine, deployment, body)
        if idempotency_key is not None:
            idempotency.complete(
                session.connection(), org, idempotency_key, status, answer.model_dump()
            )
    except Exception:
        if idempotency_key is not None:
            idempotency.release(engine, org, idempotency_key)
        raise
    response.status_code = status
    return answer


def _store(
    principal: Principal,
    session: Session,
    settings: Settings,
    engine: Engine,
    deployment: DeploymentCache,
    body: Any,
) -> tuple[PostAnswer, int]:
    batch = _parse_body(body, settings.max_batch_records)
    spec = ImportSpec(
        organisation_id=principal.organisation_id,
        created_by=principal.subject,
        source=None,
        accept_valid=True,
        recorded=False,
        row_statuses=True,
    )
    summary = run_import(
        engine, session.connection(), settings, spec, [whole(batch)], cache=deployment
    )
    answer = PostAnswer(
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        rejected=len(summary.rejected),
        results=[RecordResult(**r) for r in summary.results],
        notes=summary.notes,
    )
    return answer, 422 if summary.rejected else 200

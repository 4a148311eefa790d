"""Hotspot runs: start the week's run of an area by hand, and read what runs did.

Runs are the analysts' business (they hold raw grants: the counts and parameters of a run tell
what its incidents were). A run started here is the same job as the nightly one: it computes
as the system role in the background, and the answer points at the run to follow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.access import audit, privacy
from app.api.deps import (
    AnalystPrincipal,
    DeploymentDep,
    SessionDep,
    SystemEngineDep,
    request_id,
)
from app.api.params import ListPageDep
from app.core.errors import NotFound
from app.runs import history
from app.runs import recompute as runs
from app.runs.profiles import DEFAULT_NAME, find_profile

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


class RunRequest(BaseModel):
    """Which run to start."""

    model_config = ConfigDict(extra="forbid")

    area: str = Field(min_length=1, max_length=64, description="area code, e.g. 1285")
    profile: str = Field(
        DEFAULT_NAME, min_length=1, max_length=64, description="your organisation's or the default"
    )
    week: str = Field("current", max_length=16, description="ISO week (2026-W48), current or last")
    force: bool = Field(False, description="compute even when nothing changed")


class RunStarted(BaseModel):
    """A run that was started, or the published run that made it unnecessary."""

    run_id: int
    status: Literal["running", "skipped"]
    week: str
    detail: str
    href: str


class RunPage(BaseModel):
    """A page of runs, newest first."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next: str | None


@router.post(
    "",
    summary="Start the week's run of an area (analysts with a raw grant)",
    status_code=202,
    response_model=RunStarted,
    responses={200: {"model": RunStarted, "description": "Skipped: nothing changed"}},
)
def start_run(
    body: RunRequest,
    principal: AnalystPrincipal,
    session: SessionDep,
    deployment: DeploymentDep,
    jobs: SystemEngineDep,
    background: BackgroundTasks,
    request: Request,
) -> RunStarted | JSONResponse:
    """Start a run, or say which published run already holds this week's data (200)."""
    conn = session.connection()
    if not privacy.has_raw_grant(conn, principal, body.area):
        raise NotFound(f"no area {body.area!r} that your organisation has a raw grant on")
    profile = find_profile(conn, body.area, body.profile, principal.organisation_id) or (
        find_profile(conn, body.area, body.profile, None)
    )
    if profile is None or not profile.active:
        raise NotFound(f"no active profile {body.profile!r} for area {body.area}")
    tz = deployment.get(conn).timezone
    week = runs.run_period(body.week, tz, datetime.now(ZoneInfo(tz)))
    audit.record(
        session,
        principal,
        "run.start",
        endpoint="POST /api/v1/runs",
        request_id=request_id(request),
        filters={"area": body.area, "profile": profile.name, "week": week.label},
    )
    started = runs.start(jobs, body.area, profile, week, force=body.force)
    if isinstance(started, runs.Outcome) and started.status == "running":
        assert started.run_id is not None
        return RunStarted(
            run_id=started.run_id,
            status="running",
            week=week.label,
            detail=started.detail,
            href=f"/api/v1/runs/{started.run_id}",
        )
    if isinstance(started, runs.Outcome):
        assert started.run_id is not None
        skipped = RunStarted(
            run_id=started.run_id,
            status="skipped",
            week=week.label,
            detail=started.detail,
            href=f"/api/v1/runs/{started.run_id}",
        )
        return JSONResponse(skipped.model_dump(), status_code=200)
    background.add_task(_execute, jobs, started)
    return RunStarted(
        run_id=started.job.id,
        status="running",
        week=week.label,
        detail=f"computing {body.area} {profile.name} {week.label}",
        href=f"/api/v1/runs/{started.job.id}",
    )


def _execute(jobs: Any, started: runs.Started) -> None:
    """Compute the run after the answer went out; a failure is recorded in the run."""
    try:
        runs.execute(jobs, started)
    except Exception:  # recorded in the run's row by execute
        return


@router.get("", summary="Runs of the areas you hold raw grants on, newest first")
def list_runs(
    principal: AnalystPrincipal,
    session: SessionDep,
    request: Request,
    page: ListPageDep,
    area: Annotated[str | None, Query(max_length=64, description="area code")] = None,
    week: Annotated[str | None, Query(max_length=16, description="ISO week, 2026-W48")] = None,
    status: Annotated[
        Literal["running", "succeeded", "failed"] | None, Query(description="run status")
    ] = None,
) -> RunPage:
    """Status, week, counts and timings of each run."""
    rows, total = history.list_runs(
        session.connection(),
        area_codes=[area] if area else None,
        week=week,
        status=status,
        organisation_ids=[principal.organisation_id],
        raw_granted_only=True,
        limit=page.limit,
        offset=page.offset,
    )
    return RunPage(
        items=rows,
        total=total,
        limit=page.limit,
        offset=page.offset,
        next=page.next_url(request, total),
    )


@router.get("/{run_id}", summary="One run: parameters, provenance, timings, figures")
def get_run(
    principal: AnalystPrincipal,
    session: SessionDep,
    run_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> dict[str, Any]:
    """Everything the run recorded."""
    conn = session.connection()
    if not history.run_visible(conn, run_id, principal.organisation_id):
        raise NotFound(f"no run {run_id} of an area your organisation has a raw grant on")
    return history.get_run(conn, run_id)

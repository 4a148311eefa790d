"""The weekly and tertial lägesbild as a document, and what the analysts write in it.

- GET /api/v1/areas/{code}/reports/2026-W48.pdf (or .html, or 2026-T3.pdf): the report of the
  area's published run of that period, for viewers and analysts whose organisation holds a grant
  on the area. Viewers, and analysts without a raw grant on the area, get the viewer version;
  analysts with one the analyst version, or the viewer version with ?audience=viewer (the one
  to pass on).
- The texts (assessment, analysis of causes) of an area and period, and the names of its
  hotspots: read and written by analysts whose organisation holds a raw grant on the area.
- How an e-mail alert subscription gets Monday's report (link, attachment or none): its
  organisation's admins.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from app.access import audit, privacy
from app.access.auth import Principal
from app.alerts.subscriptions import Who
from app.api.deps import (
    AdminPrincipal,
    AnalystPrincipal,
    DeploymentDep,
    ReportReaderPrincipal,
    SessionDep,
    request_id,
)
from app.api.schemas import StrictModel
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.reports import content, mailing, render, texts
from app.runs.profiles import DEFAULT_NAME, NAME_PATTERN

router = APIRouter(prefix="/api/v1", tags=["reports"])

MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}
_REPORT = re.compile(r"^(?P<period>[^.]+)\.(?P<format>[a-z]+)$")

ReportName = Annotated[
    str,
    Path(
        max_length=24, description="the period and format: 2026-W48.pdf, 2026-W48.html, 2026-T3.pdf"
    ),
]
PeriodLabel = Annotated[
    str, Path(max_length=16, description="an ISO week (2026-W48) or a tertial (2026-T3)")
]
HotspotKey = Annotated[
    str, Path(pattern=texts.KEY_PATTERN, description="the hotspot's stable id (hotspot_key)")
]
SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the subscription's id")]


def report_name(report: str) -> tuple[str, str]:
    """The period label and the format of a report's file name."""
    found = _REPORT.fullmatch(report)
    if found is None or found["format"] not in MEDIA_TYPES:
        raise InvalidInput(
            f"report: {report[:40]!r} is no report such as 2026-W48.pdf, 2026-W48.html or "
            "2026-T3.pdf",
            field="report",
        )
    return found["period"], found["format"]


class TextsIn(StrictModel):
    """What to set; a field left out stays as it is."""

    assessment: str | None = Field(
        None, max_length=texts.MAX_TEXT_LENGTH, description="the assessment (bedömning)"
    )
    causes: str | None = Field(
        None, max_length=texts.MAX_TEXT_LENGTH, description="the analysis of causes"
    )


class NameIn(StrictModel):
    """A hotspot's name, and the period it is given in."""

    name: str = Field(min_length=1, max_length=texts.MAX_NAME_LENGTH, examples=["Stationsområdet"])
    named_in: str = Field(max_length=16, description="the period it is named in: 2026-W48")


class DeliveryIn(StrictModel):
    """How the subscription gets Monday's report."""

    delivery: Literal["link", "attachment", "none"] = Field(
        description="link; attachment (the viewer PDF; organisations with a raw grant on the "
        "area get a link all the same); none"
    )


class DeliveryOut(BaseModel):
    """How the subscription gets Monday's report."""

    subscription_id: int
    delivery: Literal["link", "attachment", "none"]


def _who(principal: Principal, request: Request) -> Who:
    """Who changes something, as the audit log names them."""
    return Who(principal, principal.subject, request.url.path, request_id(request))


def _require_raw(conn: Connection, principal: Principal, code: str) -> None:
    """An analyst of an organisation with a raw grant on the area, or not found."""
    # unknown and not granted answer alike, so that nobody learns which areas exist
    if not privacy.has_raw_grant(conn, principal, code):
        raise NotFound(f"no area {code!r} that your organisation holds a raw grant on")


@router.get(
    "/areas/{code}/reports/{report}",
    summary="The lägesbild of a week or tertial as PDF or HTML (viewers and analysts)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
)
def get_report(
    code: str,
    report: ReportName,
    principal: ReportReaderPrincipal,
    session: SessionDep,
    deployment: DeploymentDep,
    request: Request,
    profile: Annotated[
        str, Query(pattern=NAME_PATTERN, description="your organisation's or the default")
    ] = DEFAULT_NAME,
    audience: Annotated[
        Literal["viewer", "analyst"] | None,
        Query(description="analysts with a raw grant: analyst (their default) or viewer"),
    ] = None,
) -> Response:
    """The report of the area's published run of the period; 404 naming what is missing."""
    conn = session.connection()
    if not privacy.has_grant(conn, principal.organisation_id, code):
        raise NotFound(f"no area {code!r} that your organisation holds a grant on")
    label, kind = report_name(report)
    raw = privacy.has_raw_grant(conn, principal, code)
    if audience == "analyst" and not raw:
        raise Forbidden("the analyst version needs the analyst role and a raw grant on the area")
    period = content.parse_period(label, deployment.get(conn).timezone, field="report")
    chosen: content.Audience = audience or ("analyst" if raw else "viewer")
    built = content.build(
        conn,
        content.ReportRequest(code, period, profile, chosen, principal.organisation_id),
    )
    audit.record(
        session,
        principal,
        "report.read",
        endpoint=request.url.path,
        request_id=request_id(request),
        filters={"area": code, "period": label, "audience": chosen, "format": kind},
    )
    body = render.render_pdf(built) if kind == "pdf" else render.render_html(built).encode()
    filename = f"lagesbild-{code}-{label}{'' if chosen == 'viewer' else '-analytiker'}.{kind}"
    return Response(
        body,
        media_type=MEDIA_TYPES[kind],
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.get("/areas/{code}/reports/{period}/texts", summary="The analysts' texts of a period")
def get_texts(
    code: str, period: PeriodLabel, principal: AnalystPrincipal, session: SessionDep
) -> texts.ReportTexts:
    """The assessment and the analysis of causes of the area's week or tertial."""
    conn = session.connection()
    _require_raw(conn, principal, code)
    found = texts.read_texts(conn, code, texts.check_period(period))
    return found


@router.put(
    "/areas/{code}/reports/{period}/texts",
    summary="Write the assessment and analysis of causes of a period (analysts)",
)
def put_texts(
    code: str,
    period: PeriodLabel,
    body: TextsIn,
    principal: AnalystPrincipal,
    session: SessionDep,
    request: Request,
) -> texts.ReportTexts:
    """Set either text or both; the report of the period shows them at once."""
    conn = session.connection()
    _require_raw(conn, principal, code)
    if body.assessment is None and body.causes is None:
        raise InvalidInput("assessment: give assessment, causes or both", field="assessment")
    written = texts.write_texts(
        conn,
        _who(principal, request),
        principal.organisation_id,
        code,
        texts.check_period(period),
        assessment=body.assessment,
        causes=body.causes,
    )
    return written


@router.get("/areas/{code}/hotspot-names", summary="The names of the area's hotspots")
def list_names(
    code: str, principal: AnalystPrincipal, session: SessionDep
) -> list[texts.HotspotName]:
    """Every named hotspot of the area, by stable id."""
    conn = session.connection()
    _require_raw(conn, principal, code)
    return list(texts.hotspot_names(conn, code).values())


@router.put(
    "/areas/{code}/hotspot-names/{hotspot_key}",
    summary="Name a hotspot (analysts); the name follows its stable id from week to week",
)
def put_name(
    code: str,
    hotspot_key: HotspotKey,
    body: NameIn,
    principal: AnalystPrincipal,
    session: SessionDep,
    request: Request,
) -> texts.HotspotName:
    """Give the hotspot a name, or a new one."""
    conn = session.connection()
    _require_raw(conn, principal, code)
    named = texts.name_hotspot(
        conn,
        _who(principal, request),
        principal.organisation_id,
        code,
        hotspot_key,
        body.name,
        body.named_in,
    )
    return named


@router.delete(
    "/areas/{code}/hotspot-names/{hotspot_key}",
    status_code=204,
    summary="Remove a hotspot's name (analysts)",
)
def delete_name(
    code: str,
    hotspot_key: HotspotKey,
    principal: AnalystPrincipal,
    session: SessionDep,
    request: Request,
) -> Response:
    """The hotspot is shown without a name from then on."""
    conn = session.connection()
    _require_raw(conn, principal, code)
    texts.unname_hotspot(conn, _who(principal, request), code, hotspot_key)
    return Response(status_code=204)


@router.get(
    "/alerts/subscriptions/{subscription_id}/weekly-report",
    summary="How an e-mail subscription gets Monday's report (admins)",
)
def get_delivery(
    subscription_id: SubscriptionId, principal: AdminPrincipal, session: SessionDep
) -> DeliveryOut:
    """link (the default), attachment or none."""
    found = mailing.delivery_of(session.connection(), subscription_id, principal.organisation_id)
    return DeliveryOut(subscription_id=subscription_id, delivery=found)


@router.put(
    "/alerts/subscriptions/{subscription_id}/weekly-report",
    summary="Choose how an e-mail subscription gets Monday's report (admins)",
)
def put_delivery(
    subscription_id: SubscriptionId,
    body: DeliveryIn,
    principal: AdminPrincipal,
    session: SessionDep,
    request: Request,
) -> DeliveryOut:
    """A link, the viewer PDF attached, or no report mail."""
    chosen = mailing.set_delivery(
        session.connection(),
        _who(principal, request),
        subscription_id,
        principal.organisation_id,
        body.delivery,
    )
    return DeliveryOut(subscription_id=subscription_id, delivery=chosen)

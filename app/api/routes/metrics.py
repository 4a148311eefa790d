"""/metrics: the runs' health in Prometheus' text format, for an operator's alerting.

Per area and profile: how old the published run is, the last run's status and how long it took;
the newest night's claims by task and status; alert deliveries pending and failed per area and
channel. Open when EST_METRICS_PUBLIC is set (behind a firewall that only lets the Prometheus
server in), else for the operator organisation's admins.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from app.access.admin import is_operator
from app.alerts.deliver import delivery_counts
from app.api.deps import EngineDep, SettingsDep, SystemEngineDep, get_principal
from app.core.errors import Forbidden
from app.runs.history import run_health

router = APIRouter(tags=["operations"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATUSES = ("running", "succeeded", "failed")


def _label(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{text}"'


def _line(name: str, labels: dict[str, object], value: float) -> str:
    inner = ",".join(f"{k}={_label(v)}" for k, v in labels.items())
    return f"{name}{{{inner}}} {value:.6g}"


def render(health: dict[str, list[dict[str, Any]]]) -> str:
    """The health as Prometheus text exposition format 0.0.4."""
    out = [
        "# HELP est_run_published_age_seconds Seconds since the published run was published.",
        "# TYPE est_run_published_age_seconds gauge",
    ]
    for r in health["published"]:
        key = {k: r[k] for k in ("area", "profile", "organisation", "period_kind")}
        out.append(_line("est_run_published_age_seconds", key, float(r["age_s"])))
    out += [
        "# HELP est_run_last_status The status of the last run (1 for the status it has).",
        "# TYPE est_run_last_status gauge",
    ]
    for r in health["last"]:
        key = {k: r[k] for k in ("area", "profile", "organisation")}
        for status in STATUSES:
            out.append(
                _line(
                    "est_run_last_status", {**key, "status": status}, float(r["status"] == status)
                )
            )
    out += [
        "# HELP est_run_last_duration_seconds How long the last run took (so far, if running).",
        "# TYPE est_run_last_duration_seconds gauge",
    ]
    for r in health["last"]:
        key = {k: r[k] for k in ("area", "profile", "organisation")}
        out.append(_line("est_run_last_duration_seconds", key, float(r["duration_s"] or 0.0)))
    out += [
        "# HELP est_nightly_claims The newest night's pieces of work by task and status.",
        "# TYPE est_nightly_claims gauge",
    ]
    for r in health["claims"]:
        out.append(_line("est_nightly_claims", {"task": r["task"], "status": r["status"]}, r["n"]))
    out += [
        "# HELP est_alert_deliveries Alert deliveries by area and channel: pending (to be sent or "
        "retried) and failed (given up).",
        "# TYPE est_alert_deliveries gauge",
    ]
    for r in health.get("alert_deliveries", []):
        key = {"area": r["area"], "channel": r["channel"]}
        for status in ("pending", "failed"):
            out.append(_line("est_alert_deliveries", {**key, "status": status}, r[status]))
    return "\n".join(out) + "\n"


def _operator_only(
    request: Request, settings: SettingsDep, engine: EngineDep, jobs: SystemEngineDep
) -> None:
    """Let the request through when metrics are public, else only the operator's admins."""
    if settings.metrics_public:
        return
    principal = get_principal(request, engine, settings)
    with jobs.connect() as conn:
        if not is_operator(conn, principal):
            raise Forbidden("metrics are for the operator organisation's admins")


@router.get(
    "/metrics",
    summary="Runs' health in Prometheus text format",
    response_class=PlainTextResponse,
    dependencies=[Depends(_operator_only)],
)
def metrics(jobs: SystemEngineDep) -> PlainTextResponse:
    """Ages of published runs, the last runs' status and duration, the newest night's claims,
    alert deliveries pending and failed."""
    with jobs.connect() as conn:
        health = run_health(conn)
        health["alert_deliveries"] = delivery_counts(conn)
    return PlainTextResponse(render(health), media_type=CONTENT_TYPE)

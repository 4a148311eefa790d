"""Monday's report by e-mail: the week that just closed, to each e-mail subscriber of the area.

The alerts' e-mail subscriptions (app.alerts.subscriptions) get the report of the area's
default profile once its week's final run is published: the nightly schedule calls
`mail_weekly_reports` after the night's runs, and on a Monday night (whose run closes the week)
it mails that week. How a subscription gets it is its organisation's admins' choice
(est.report_mailing):

- link (the default): a link to the report; whoever opens it gets the version their key may
  see (a viewer the viewer version, an analyst of an organisation with a raw grant the
  analyst version);
- attachment: the viewer PDF attached. An organisation holding a raw grant on the area gets a
  link all the same: its people are analysts, and exact counts do not travel by e-mail;
- none: no report mail.

The mail's own text holds viewer values only. Each subscription gets each period's report once
(est.report_dispatch); one that failed is tried again by the next call, MAX_ATTEMPTS times in
all, and one left "sending" by a process that died is taken over after STALE_AFTER.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Connection, Engine, text

from app.access import audit
from app.access.audit import Author
from app.alerts import mail, subscriptions
from app.alerts.events import GRANTED
from app.core.errors import InvalidInput
from app.db.deployment import read_deployment
from app.reports import content, render, words
from app.runs.profiles import DEFAULT_NAME
from app.runs.recompute import RunPeriod
from app.settings import Settings

log = logging.getLogger("est")

Delivery = Literal["link", "attachment", "none"]
DELIVERIES: tuple[str, ...] = ("link", "attachment", "none")
MAX_ATTEMPTS = 3
STALE_AFTER = "1 hour"


@dataclass
class MailReport:
    """What one call mailed: reports sent and failed, subscriptions already served."""

    period: str
    sent: int = 0
    failed: int = 0
    skipped: int = 0

    def describe(self) -> str:
        """E.g. "2026-W48: 3 sent, 0 failed, 1 already sent"."""
        return f"{self.period}: {self.sent} sent, {self.failed} failed, {self.skipped} already sent"


def set_delivery(
    conn: Connection,
    who: Author,
    subscription_id: int,
    organisation_id: int | None,
    delivery: str,
) -> Delivery:
    """Choose how an e-mail subscription gets the weekly report; return the choice."""
    if delivery not in DELIVERIES:
        raise InvalidInput(
            f"delivery: must be one of {', '.join(DELIVERIES)}, not {delivery[:40]!r}",
            field="delivery",
        )
    subscription = subscriptions.get(conn, subscription_id, organisation_id)
    if subscription.channel != "email":
        raise InvalidInput(
            f"delivery: subscription {subscription_id} is a webhook; the report goes by e-mail",
            field="delivery",
        )
    conn.execute(
        text("""
        INSERT INTO est.report_mailing (subscription_id, delivery, updated_by)
        VALUES (:id, :delivery, :by)
        ON CONFLICT (subscription_id) DO UPDATE SET delivery = EXCLUDED.delivery,
            updated_by = EXCLUDED.updated_by, updated_at = now()
    """),
        {"id": subscription_id, "delivery": delivery, "by": who.actor[:128]},
    )
    audit.record_change(
        conn, who, "report_mailing.change", {"subscription": subscription_id, "delivery": delivery}
    )
    return cast(Delivery, delivery)


def delivery_of(conn: Connection, subscription_id: int, organisation_id: int | None) -> Delivery:
    """How an e-mail subscription gets the weekly report (link unless chosen otherwise)."""
    subscriptions.get(conn, subscription_id, organisation_id)
    found = conn.scalar(
        text("SELECT delivery FROM est.report_mailing WHERE subscription_id = :id"),
        {"id": subscription_id},
    )
    return cast(Delivery, found or "link")


def mail_weekly_reports(
    engine: Engine, settings: Settings, night: date, area_codes: list[str] | None = None
) -> MailReport | None:
    """After a Monday night's runs: mail the week that just closed (other nights: nothing).

    Never raises: the night's other work goes on, and what failed is tried again next night.
    """
    if night.weekday() != 0:
        return None
    if not settings.smtp_host or not settings.smtp_from:
        log.info("weekly reports: not mailed, e-mail is not configured (EST_SMTP_HOST)")
        return None
    try:
        with engine.connect() as conn:
            tz = read_deployment(conn).timezone
        done = send_reports(engine, settings, RunPeriod.week(night - timedelta(7), tz), area_codes)
    except Exception:
        log.exception("weekly reports: mailing failed; the next night tries again")
        return None
    log.info("weekly reports %s", done.describe())
    return done


@dataclass(frozen=True)
class _Due:
    """A subscription to mail a week's report to."""

    subscription_id: int
    target: str
    area: str
    area_name: str
    profile_id: int
    run_id: int
    delivery: str  # link | attachment (what is sent, after the raw-grant rule)


def send_reports(
    engine: Engine,
    settings: Settings,
    period: RunPeriod,
    area_codes: list[str] | None = None,
) -> MailReport:
    """Mail a week's report to every e-mail subscriber not yet served (see the module)."""
    done = MailReport(period.label)
    with engine.connect() as conn:
        due = _due(conn, period, area_codes)
    built: dict[str, tuple[content.Report, bytes | None]] = {}
    for item in due:
        with engine.begin() as conn:
            dispatch = _claim(conn, item, period)
        if dispatch is None:
            done.skipped += 1
            continue
        error = None
        try:
            report, pdf = _viewer_report(engine, item, period, built)
            attachments = []
            if item.delivery == "attachment":
                if pdf is None:
                    pdf = render.render_pdf(report)
                    built[item.area] = (report, pdf)
                attachments.append(mail.Attachment(file_name(item.area, period), pdf))
            mail.send(
                settings,
                item.target,
                compose(report, item.delivery, settings.public_base_url),
                attachments=attachments,
                headers={"X-EST-Report": f"{item.area}/{period.label}"},
            )
        except Exception as exc:  # a server or a report failing is a failed attempt
            error = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
            log.warning("weekly report to subscription %s: %s", item.subscription_id, error)
        with engine.begin() as conn:
            _finish(conn, dispatch, error)
        if error is None:
            done.sent += 1
        else:
            done.failed += 1
    return done


def _viewer_report(
    engine: Engine,
    item: _Due,
    period: RunPeriod,
    built: dict[str, tuple[content.Report, bytes | None]],
) -> tuple[content.Report, bytes | None]:
    """The area's viewer report (built once per area and call), and its PDF if made."""
    if item.area not in built:
        with engine.begin() as conn:
            request = content.ReportRequest(item.area, period, DEFAULT_NAME, "viewer")
            built[item.area] = (content.build(conn, request, system=True), None)
    return built[item.area]


def _due(conn: Connection, period: RunPeriod, area_codes: list[str] | None) -> list[_Due]:
    """The e-mail subscriptions of areas whose week has a published run, and what they get."""
    rows = conn.execute(
        text(f"""
        SELECT s.id AS subscription_id, s.target, a.code AS area, a.name AS area_name,
               p.id AS profile_id, r.id AS run_id,
               CASE WHEN coalesce(m.delivery, 'link') = 'attachment' AND NOT EXISTS (
                        SELECT 1 FROM est.area_grant g
                        WHERE g.area_id = s.area_id AND g.organisation_id = s.organisation_id
                          AND g.level = 'raw'
                          AND (g.expires_at IS NULL OR g.expires_at > now()))
                    THEN 'attachment' ELSE 'link' END AS delivery
        FROM est.alert_subscription s
        JOIN est.area a ON a.id = s.area_id
        JOIN est.analysis_profile p
          ON p.area_id = s.area_id AND p.organisation_id IS NULL AND p.name = :profile
        LEFT JOIN est.report_mailing m ON m.subscription_id = s.id
        JOIN LATERAL (
            SELECT r.id FROM est.hotspot_run r
            WHERE r.area_id = s.area_id AND r.profile_id = p.id AND r.period_kind = 'week'
              AND r.period_label = :label AND r.status = 'succeeded'
              AND r.published_at IS NOT NULL
            ORDER BY r.published_at DESC LIMIT 1
        ) r ON true
        WHERE s.channel = 'email' AND s.active AND {GRANTED}
          AND coalesce(m.delivery, 'link') <> 'none'
          AND (CAST(:areas AS text[]) IS NULL OR a.code = ANY(CAST(:areas AS text[])))
        ORDER BY a.code, s.id
    """),
        {"profile": DEFAULT_NAME, "label": period.label, "areas": area_codes},
    ).all()
    return [_Due(**r._mapping) for r in rows]


def _claim(conn: Connection, item: _Due, period: RunPeriod) -> int | None:
    """Take the subscription's report of the period for sending; None when it was sent, is
    being sent, or failed MAX_ATTEMPTS times."""
    found = conn.scalar(
        text(f"""
        INSERT INTO est.report_dispatch AS d (subscription_id, profile_id, period_label, run_id,
                                              delivery, status)
        VALUES (:sub, :profile, :label, :run, :delivery, 'sending')
        ON CONFLICT (subscription_id, profile_id, period_label) DO UPDATE SET
            status = 'sending', attempts = d.attempts + 1, run_id = EXCLUDED.run_id,
            delivery = EXCLUDED.delivery, error = NULL, attempted_at = now()
        WHERE d.attempts < :max AND (d.status = 'failed' OR (d.status = 'sending'
              AND d.attempted_at < now() - interval '{STALE_AFTER}'))
        RETURNING d.id
    """),
        {
            "sub": item.subscription_id,
            "profile": item.profile_id,
            "label": period.label,
            "run": item.run_id,
            "delivery": item.delivery,
            "max": MAX_ATTEMPTS,
        },
    )
    return int(found) if found is not None else None


def _finish(conn: Connection, dispatch_id: int, error: str | None) -> None:
    """Record how the sending went."""
    conn.execute(
        text("UPDATE est.report_dispatch SET status = :status, error = :error WHERE id = :id"),
        {"id": dispatch_id, "status": "failed" if error else "sent", "error": error},
    )


def file_name(area_code: str, period: RunPeriod) -> str:
    """The report file's name: lagesbild-1285-2026-W48.pdf."""
    return f"lagesbild-{area_code}-{period.label}.pdf"


def report_url(base_url: str | None, area_code: str, period: RunPeriod) -> str:
    """The report's address: absolute with EST_PUBLIC_BASE_URL, else the API path."""
    path = f"/api/v1/areas/{area_code}/reports/{period.label}.pdf"
    return f"{base_url.rstrip('/')}{path}" if base_url else path


def compose(report: content.Report, delivery: str, base_url: str | None) -> mail.Message:
    """The Swedish subject and text of a report mail, from the viewer report's values."""
    assert report.viewer, "a report mail tells viewer values only"
    area, period, k = report.run.area_name, report.period, report.k
    title = words.period_title(period)
    total = report.figures[0] if report.figures else None
    lines = [
        f"Lägesbilden för {area}, {title} ({words.day_span(period.first_day, period.end_day)}), "
        "är klar.",
        "",
    ]
    if total is not None:
        lines.append(
            f"{total.name}: {_about(total.this, k)} händelser, förra veckan "
            f"{_about(total.previous, k)}."
        )
    lines.append(f"Hotspotar: {len(report.hotspots)}.")
    changed = [f.name for f in report.changed]
    lines.append("Förändring utöver slumpen: " + (", ".join(changed) if changed else "ingen") + ".")
    lines.append("")
    url = report_url(base_url, report.run.area_code, period)
    if delivery == "attachment":
        lines.append(f"Rapporten (visningsversionen) är bifogad som PDF. Den finns också på {url}")
    else:
        lines.append(f"Rapporten: {url}")
        lines.append(
            "Den öppnas med er nyckel till EST Lägesbild; analytiker med behörighet till "
            "händelserna får analytikerversionen där."
        )
    lines += [
        "",
        "Meddelandet innehåller bara det som visas i lägesbilden: avrundade antal i rutor med "
        f"minst {k} händelser, aldrig enskilda händelser eller deras platser.",
        f"Er organisation prenumererar på lägesbilden för {area}; organisationens "
        "administratörer ändrar det i EST Lägesbild.",
    ]
    return mail.Message(f"Lägesbild {area}, {title}", "\n".join(lines) + "\n")


def _about(value: Any, k: int) -> str:
    """A shown count in a sentence: "cirka 20", or "< 5"."""
    shown = words.count(value, k, viewer=True)
    return shown if shown.startswith("<") else f"cirka {shown}"

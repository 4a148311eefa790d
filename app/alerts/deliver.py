"""Sending the due alert deliveries, retrying with backoff, and logging every attempt.

A delivery is committed pending (by the run that made its event) before anything is sent.
Each is then sent in a transaction of its own that holds its row (`FOR UPDATE SKIP LOCKED`):
two processes sending at once each take other rows, and a process that dies mid-way leaves
the row pending for the next one (the receiver may then get it twice: the event id header lets
it drop the second). A failed attempt is tried again after 1, 5 and 30 minutes, 2 and 12 hours;
after the sixth the delivery is failed. A paused subscription, or one whose organisation lost
its grant on the area, fails its pending deliveries at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import Connection, Engine, text

from app.alerts import mail, webhook
from app.alerts.events import GRANTED
from app.settings import Settings

log = logging.getLogger("est")

RETRY_DELAYS_S = (60, 300, 1800, 7200, 43200)  # after the first … fifth failed attempt
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
MAX_ERROR_LENGTH = 500
BATCH = 500  # deliveries tried in one call at most


@dataclass
class DeliveryReport:
    """What one call sent: deliveries sent, to be retried, and given up."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def describe(self) -> str:
        """E.g. "2 sent, 1 to retry, 0 failed"."""
        return f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"


@dataclass(frozen=True)
class Due:
    """A delivery to try, with its event and subscription."""

    id: int
    attempts: int
    event_id: int
    payload: dict[str, Any]
    channel: str
    target: str
    secrets: tuple[str, ...]
    active: bool
    granted: bool


@dataclass(frozen=True)
class Attempt:
    """How one try went; `final` when trying again is of no use."""

    sent: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False
    duration_ms: int = 0


def deliver_due(
    engine: Engine, settings: Settings, now: datetime | None = None, limit: int = BATCH
) -> DeliveryReport:
    """Send every pending delivery whose time has come (at most `limit`); say how it went."""
    now = now or datetime.now(UTC)
    report = DeliveryReport()
    tried: list[int] = []
    while len(tried) < limit:
        with engine.begin() as conn:
            due = _next_due(conn, now, tried)
            if due is None:
                break
            tried.append(due.id)
            status = _record(conn, due, attempt(due, settings), now)
        setattr(report, status, getattr(report, status) + 1)
    return report


def _next_due(conn: Connection, now: datetime, tried: list[int]) -> Due | None:
    """Lock the next due delivery that no other process holds (and this call has not tried)."""
    row = conn.execute(
        text(f"""
        SELECT d.id, d.attempts, d.event_id, e.payload, s.channel, s.target, s.secret,
               s.previous_secret, s.active, {GRANTED} AS granted
        FROM est.alert_delivery d
        JOIN est.alert_subscription s ON s.id = d.subscription_id
        JOIN est.alert_event e ON e.id = d.event_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= :now
          AND d.id <> ALL(CAST(:tried AS bigint[]))
        ORDER BY d.next_attempt_at, d.id
        LIMIT 1
        FOR UPDATE OF d SKIP LOCKED
    """),
        {"now": now, "tried": tried},
    ).one_or_none()
    if row is None:
        return None
    secrets = tuple(s for s in (row.secret, row.previous_secret) if s)
    return Due(
        row.id,
        row.attempts,
        row.event_id,
        row.payload,
        row.channel,
        row.target,
        secrets,
        row.active,
        row.granted,
    )


def map_url(base_url: str | None, payload: dict[str, Any]) -> str | None:
    """The map page of an event: its area, period and hotspot (None without a base URL)."""
    if base_url is None:
        return None
    query = {"area": payload["area"]["code"], "week": payload["period"]}
    if "hotspot" in payload:
        query["hotspot"] = payload["hotspot"]["id"]
    return f"{base_url.rstrip('/')}/map?{urlencode(query)}"


def message_body(event_id: int, payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What a webhook receives: the event's id, its payload and the map link."""
    return {"event_id": event_id, **payload, "map_url": map_url(settings.public_base_url, payload)}


def attempt(due: Due, settings: Settings) -> Attempt:
    """Try one delivery once; any failure is an attempt that failed, with its reason."""
    if not due.active:
        return Attempt(False, error="the subscription is paused", final=True)
    if not due.granted:
        return Attempt(False, error="the organisation holds no grant on the area", final=True)
    began = time.perf_counter()
    try:
        tried = _webhook(due, settings) if due.channel == "webhook" else _mail(due, settings)
    except Exception as exc:  # a receiver or server failing in any way is a failed attempt
        detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
        tried = Attempt(False, error=str(detail))
    took = int((time.perf_counter() - began) * 1000)
    error = tried.error[:MAX_ERROR_LENGTH] if tried.error else None
    return Attempt(tried.sent, tried.status_code, error, tried.final, took)


def _webhook(due: Due, settings: Settings) -> Attempt:
    target = webhook.check_url(due.target, settings.alert_allow_hosts)  # DNS may have changed
    body = orjson.dumps(message_body(due.event_id, due.payload, settings))
    headers = webhook.headers(due.event_id, body, due.secrets)
    answer = webhook.post(target, body, headers, settings.alert_timeout_s)
    if 200 <= answer.status < 300:
        return Attempt(True, answer.status)
    said = f"answered {answer.status} {answer.reason}".strip()
    if 300 <= answer.status < 400:
        said += ": redirects are not followed"
    return Attempt(False, answer.status, said)


def _mail(due: Due, settings: Settings) -> Attempt:
    message = mail.compose(due.payload, map_url(settings.public_base_url, due.payload))
    mail.send(settings, due.target, message, due.event_id)
    return Attempt(True)


def _record(conn: Connection, due: Due, tried: Attempt, now: datetime) -> str:
    """Log the attempt and move the delivery on; return sent, retrying or failed."""
    number = due.attempts + 1
    next_at: datetime | None = None
    if tried.sent:
        status = "sent"
    elif tried.final or number >= MAX_ATTEMPTS:
        status = "failed"
    else:
        status = "pending"
        next_at = now + timedelta(seconds=RETRY_DELAYS_S[number - 1])
    conn.execute(
        text("""
        INSERT INTO est.alert_attempt (delivery_id, attempt, attempted_at, outcome, status_code,
                                       error, duration_ms)
        VALUES (:id, :n, :now, :outcome, :code, :error, :ms)
    """),
        {
            "id": due.id,
            "n": number,
            "now": now,
            "outcome": "sent" if tried.sent else "failed",
            "code": tried.status_code,
            "error": tried.error,
            "ms": tried.duration_ms,
        },
    )
    conn.execute(
        text("""
        UPDATE est.alert_delivery SET status = :status, attempts = :n, next_attempt_at = :next,
            last_attempt_at = :now, last_error = :error, last_status_code = :code,
            delivered_at = CASE WHEN :sent THEN CAST(:now AS timestamptz) END
        WHERE id = :id
    """),
        {
            "id": due.id,
            "status": status,
            "n": number,
            "next": next_at,
            "now": now,
            "error": tried.error,
            "code": tried.status_code,
            "sent": tried.sent,
        },
    )
    if not tried.sent:
        log.warning("alert delivery %s attempt %s: %s", due.id, number, tried.error)
    return "retrying" if status == "pending" else status


def delivery_counts(conn: Connection) -> list[dict[str, Any]]:
    """Pending and failed deliveries per area and channel of every subscription (for /metrics)."""
    rows = conn.execute(
        text("""
        SELECT a.code AS area, s.channel,
               count(d.id) FILTER (WHERE d.status = 'pending')::integer AS pending,
               count(d.id) FILTER (WHERE d.status = 'failed')::integer AS failed
        FROM est.alert_subscription s
        JOIN est.area a ON a.id = s.area_id
        LEFT JOIN est.alert_delivery d ON d.subscription_id = s.id
        GROUP BY 1, 2 ORDER BY 1, 2
    """)
    ).all()
    return [dict(r._mapping) for r in rows]

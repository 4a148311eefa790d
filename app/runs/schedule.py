"""The nightly schedule: the night's runs of every area and profile, and the retention purge.

Every night at EST_RECOMPUTE_SCHEDULE (local time in the deployment's zone; 03:30 by default)
the night's work is due: the run of the week that holds the day before (so Monday night gives
the week that just closed its final run, and Tuesday to Sunday nights recompute the open week
so far), for every area and active profile, then the purge. A time the clocks skip (02:30 on
the last Sunday of March) is taken as the moment after the gap; a time they repeat (the last
Sunday of October) as its first occurrence.

Exactly one process does each piece, whether it is a replica's scheduler thread or `est
recompute --all --nightly` from cron: each piece is a row of est.nightly_claim, inserted by the
one that claims it (the unique key lets one win). The claim keeps a heartbeat while it works; a
claim whose heartbeat is stale (its process died) or that failed is taken over, up to
MAX_ATTEMPTS times. A night missed while nothing ran is caught up when a scheduler starts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from app.alerts.deliver import deliver_due
from app.db.deployment import read_deployment
from app.db.jobs import STALE_AFTER_S, Job, JobTable
from app.reports.mailing import mail_weekly_reports
from app.runs import recompute as runs
from app.runs import scale
from app.runs.profiles import Profile
from app.runs.purge import purge
from app.settings import Settings

log = logging.getLogger("est")

CLAIMS = JobTable("est.nightly_claim", "est.run_status")
MAX_ATTEMPTS = 3


def parse_clock(value: str) -> time:
    """HH:MM as a time of day; ValueError otherwise."""
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day such as 03:30") from None


def slot_instant(night: date, at: time, tz: str) -> datetime:
    """When the night's work is due: `at` on that day, local; a skipped time is taken as the
    moment after the gap, a repeated one as its first occurrence."""
    zone = ZoneInfo(tz)
    local = datetime.combine(night, at, zone)  # fold=0: the first of a repeated time
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):  # inside the spring gap
        return back
    return local


def due_night(now: datetime, at: time, tz: str) -> date:
    """The latest night whose work is due at `now`."""
    today = now.astimezone(ZoneInfo(tz)).date()
    return today if slot_instant(today, at, tz) <= now else today - timedelta(days=1)


def night_period(night: date, tz: str) -> runs.RunPeriod:
    """The week a night computes: the one that holds the day before."""
    day = night - timedelta(days=1)
    return runs.RunPeriod.week(day - timedelta(days=day.weekday()), tz)


def claimant() -> str:
    """Who claims: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def claim(
    engine: Engine,
    night: date,
    task: str,
    area_id: int = 0,
    profile_id: int = 0,
    *,
    who: str,
    stale_after_s: float = STALE_AFTER_S,
) -> Job | None:
    """Claim one piece of a night's work; None when another has it (or it is done)."""
    key = {"night": night, "task": task, "area": area_id, "profile": profile_id, "who": who}
    with engine.begin() as conn:
        claim_id = conn.scalar(
            text("""
            INSERT INTO est.nightly_claim (night, task, area_id, profile_id, status, claimed_by,
                                           started_at, heartbeat_at)
            VALUES (:night, :task, :area, :profile, 'running', :who, clock_timestamp(),
                    clock_timestamp())
            ON CONFLICT (night, task, area_id, profile_id) DO NOTHING
            RETURNING id
        """),
            key,
        )
        if claim_id is None:  # taken: take it over if it failed or its process died
            claim_id = conn.scalar(
                text("""
                UPDATE est.nightly_claim SET status = 'running', claimed_by = :who,
                    attempts = attempts + 1, started_at = clock_timestamp(),
                    heartbeat_at = clock_timestamp(), finished_at = NULL, error = NULL
                WHERE night = :night AND task = :task AND area_id = :area
                  AND profile_id = :profile AND attempts < :max
                  AND (status = 'failed' OR (status = 'running'
                       AND heartbeat_at < clock_timestamp() - make_interval(secs => :stale)))
                RETURNING id
            """),
                {**key, "max": MAX_ATTEMPTS, "stale": stale_after_s},
            )
    return Job(engine, CLAIMS, int(claim_id)) if claim_id is not None else None


@dataclass
class NightReport:
    """What one process did of a night's work."""

    night: date
    week: str
    outcomes: list[runs.Outcome] = field(default_factory=list)
    taken_elsewhere: int = 0
    purged: bool = False


def run_night(
    engine: Engine,
    settings: Settings,
    night: date,
    *,
    who: str | None = None,
    area_codes: list[str] | None = None,
    stale_after_s: float = STALE_AFTER_S,
    on_outcome: Callable[[runs.Outcome], None] | None = None,
    runner: scale.Runner | None = None,
) -> NightReport:
    """Do whatever of the night's work nobody else has claimed: runs (on the runner's
    workers, several at once, when it has them), then the purge."""
    who = who or claimant()
    where = runner or scale.Local()
    with engine.connect() as conn:
        tz = read_deployment(conn).timezone
        pairs = runs.profiles_to_run(conn, area_codes, None)
    period = night_period(night, tz)
    report = NightReport(night, period.label)

    def one(pair: tuple[str, Profile]) -> runs.Outcome | None:
        code, profile = pair
        job = claim(
            engine,
            night,
            "recompute",
            profile.area_id,
            profile.id,
            who=who,
            stale_after_s=stale_after_s,
        )
        if job is None:
            return None
        try:
            with job.beating():
                outcome = runs.recompute(engine, code, profile, period, runner=where)
            with engine.begin() as conn:
                job.finish(conn, run_id=outcome.run_id, outcome=outcome.status)
        except Exception as exc:  # recorded in the claim (and the run); the others go on
            job.fail(f"{type(exc).__name__}: {exc}")
            outcome = runs.Outcome(code, profile.name, period.label, "failed", None, str(exc))
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    for outcome in scale.each(one, pairs, where.parallel):
        if outcome is None:
            report.taken_elsewhere += 1
        else:
            report.outcomes.append(outcome)
    mail_weekly_reports(engine, settings, night, area_codes)  # Monday nights: the closed week
    if area_codes is None:
        report.purged = _purge(engine, settings, night, who, stale_after_s)
    return report


def _purge(engine: Engine, settings: Settings, night: date, who: str, stale: float) -> bool:
    job = claim(engine, night, "purge", who=who, stale_after_s=stale)
    if job is None:
        return False
    try:
        with job.beating(), engine.begin() as conn:
            purge(conn, settings.retention_months, Path(settings.archive_dir))
            job.finish(conn, outcome="succeeded")
    except Exception as exc:
        job.fail(f"{type(exc).__name__}: {exc}")
        return False
    return True


def _night(engine: Engine, settings: Settings, night: date) -> NightReport:
    """The night's work on the runner the settings name (this process by default)."""
    with scale.runner(settings.recompute_workers, settings.dask_scheduler) as where:
        return run_night(engine, settings, night, runner=where)


class Scheduler:
    """A thread that does each night's work when it is due (see the module docstring), and
    sends the alerts that are due at every poll."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        runner: Callable[[date], object] | None = None,
        poll_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.at = parse_clock(settings.recompute_schedule)
        self.runner = runner or (lambda night: _night(engine, settings, night))
        self.poll_s = poll_s
        self.last_night: date | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime, tz: str | None = None) -> date | None:
        """Run the due night unless this scheduler already did; return the night it ran.

        Nights are counted in the deployment's time zone (read from the database unless given).
        """
        if tz is None:
            with self.engine.connect() as conn:
                tz = read_deployment(conn).timezone
        night = due_night(now, self.at, tz)
        if night == self.last_night:
            return None
        self.runner(night)
        self.last_night = night
        return night

    def start(self) -> None:
        """Start the thread: it catches up the due night at once, then waits for the next."""
        self._thread = threading.Thread(target=self._loop, name="nightly", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a night being computed ends as a stale claim if it is cut off)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(datetime.now(UTC))
            except Exception:  # the database is away: try again at the next poll
                log.exception("nightly schedule: the night's work failed; retrying later")
            try:  # every poll: new alerts after a night, retries when their time comes
                report = deliver_due(self.engine, self.settings)
                if report.sent or report.retrying or report.failed:
                    log.info("alerts: %s", report.describe())
            except Exception:
                log.exception("alerts: delivering failed; retrying at the next poll")
            self._stop.wait(self.poll_s)

"""The nightly schedule: each night's work done once, whoever runs it, across DST nights,
after a crash and after downtime; a manual run never doubles a running one."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from app.runs import recompute as runs
from app.runs import schedule
from app.runs.profiles import ensure_default_profiles
from app.settings import Settings

TZ = "Europe/Stockholm"
AREAS = ["1260", "1261"]  # Bjuv and Kävlinge: no other test stores incidents there


def test_a_skipped_time_runs_after_the_gap_and_a_repeated_one_at_its_first_occurrence() -> None:
    at = time(2, 30)
    spring = schedule.slot_instant(date(2026, 3, 29), at, TZ)
    autumn = schedule.slot_instant(date(2026, 10, 25), at, TZ)
    assert spring.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert autumn.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # first 02:30
    assert schedule.slot_instant(date(2026, 12, 2), time(3, 30), TZ).astimezone(UTC) == (
        datetime(2026, 12, 2, 2, 30, tzinfo=UTC)
    )


def test_the_dst_nights_of_2026_run_once_each(system_engine: Engine, settings: Settings) -> None:
    for start in (datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 10, 23, 12, tzinfo=UTC)):
        ran: list[date] = []
        scheduler = schedule.Scheduler(
            system_engine,
            settings.model_copy(update={"recompute_schedule": "02:30"}),
            runner=ran.append,
        )
        now = start
        while now < start + timedelta(days=4):
            scheduler.tick(now, TZ)
            now += timedelta(minutes=5)
        first = start.date()
        assert ran == [first + timedelta(days=k) for k in range(5)]  # each night once, in order


def test_a_night_missed_while_down_is_caught_up_at_start(
    system_engine: Engine, settings: Settings
) -> None:
    ran: list[date] = []
    scheduler = schedule.Scheduler(system_engine, settings, runner=ran.append)
    # started at 09:00 on 2 December: the night of 2 December (03:30) is due and runs at once
    assert scheduler.tick(datetime(2026, 12, 2, 8, tzinfo=UTC), TZ) == date(2026, 12, 2)
    assert scheduler.tick(datetime(2026, 12, 2, 20, tzinfo=UTC), TZ) is None
    # started at 01:00 local: the night before is the due one
    later = schedule.Scheduler(system_engine, settings, runner=ran.append)
    assert later.tick(datetime(2026, 12, 3, 0, tzinfo=UTC), TZ) == date(2026, 12, 2)


def _claims(engine: Engine, night: date) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status::text, claimed_by, attempts FROM est.nightly_claim "
                "WHERE night = :n AND task = 'recompute' ORDER BY id"
            ),
            {"n": night},
        ).all()
    return [tuple(r) for r in rows]


def test_two_schedulers_together_do_a_night_once(system_engine: Engine, settings: Settings) -> None:
    with system_engine.begin() as conn:
        ensure_default_profiles(conn)
    night = date(2026, 11, 10)
    reports: list[schedule.NightReport] = []

    def run(who: str) -> None:
        reports.append(
            schedule.run_night(system_engine, settings, night, who=who, area_codes=AREAS)
        )

    threads = [threading.Thread(target=run, args=(who,)) for who in ("replica-a", "replica-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [o for r in reports for o in r.outcomes]
    assert sorted(o.area for o in done) == AREAS  # every area once, by one of the two
    assert sum(r.taken_elsewhere for r in reports) == len(AREAS)
    assert [(o.status, o.week) for o in done] == [("succeeded", "2026-W46")] * len(AREAS), done
    claims = _claims(system_engine, night)
    assert len(claims) == len(AREAS) and all(c[0] == "succeeded" for c in claims)
    # a third scheduler (cron, a restarted replica) finds nothing left to do
    again = schedule.run_night(system_engine, settings, night, who="cron", area_codes=AREAS)
    assert again.outcomes == [] and again.taken_elsewhere == len(AREAS)


def test_a_killed_claim_is_taken_over_once_its_heartbeat_is_stale(
    system_engine: Engine, settings: Settings
) -> None:
    night = date(2026, 11, 18)  # week 47: not computed by the other tests
    with system_engine.begin() as conn:
        ensure_default_profiles(conn)
        area_id, profile_id = conn.execute(
            text(
                "SELECT a.id, p.id FROM est.area a JOIN est.analysis_profile p ON p.area_id = a.id "
                "WHERE a.code = :c AND p.organisation_id IS NULL"
            ),
            {"c": AREAS[0]},
        ).one()
        # a replica claimed it and died ten minutes ago
        conn.execute(
            text("""
            INSERT INTO est.nightly_claim (night, task, area_id, profile_id, status, claimed_by,
                                           started_at, heartbeat_at)
            VALUES (:n, 'recompute', :a, :p, 'running', 'dead', now() - interval '10 minutes',
                    now() - interval '10 minutes')
        """),
            {"n": night, "a": area_id, "p": profile_id},
        )
    fresh = schedule.claim(
        system_engine, night, "recompute", area_id, profile_id, who="x", stale_after_s=3600
    )
    assert fresh is None  # not stale yet by an hour's rule
    report = schedule.run_night(
        system_engine, settings, night, who="heir", area_codes=AREAS[:1], stale_after_s=60
    )
    assert [o.status for o in report.outcomes] == ["succeeded"]
    assert _claims(system_engine, night) == [("succeeded", "heir", 2)]


def test_a_manual_run_points_at_a_running_one_instead_of_doubling_it(
    system_engine: Engine,
) -> None:
    with system_engine.begin() as conn:
        ensure_default_profiles(conn)
        profile = runs.default_profile(conn, AREAS[1])
        running = conn.scalar(
            text("""
            INSERT INTO est.hotspot_run (area_id, profile_id, status, parameters, window_start,
                window_end, code_version, period_kind, period_label, started_at, heartbeat_at)
            VALUES (:a, :p, 'running', '{}', now(), now(), 'test', 'week', '2026-W44', now(), now())
            RETURNING id
        """),
            {"a": profile.area_id, "p": profile.id},
        )
    week = runs.RunPeriod.week(date(2026, 10, 26), TZ)
    now = datetime(2026, 12, 1, tzinfo=ZoneInfo(TZ))
    outcome = runs.start(system_engine, AREAS[1], profile, week, force=True, now=now)
    assert isinstance(outcome, runs.Outcome)
    assert outcome.status == "running" and outcome.run_id == running
    with system_engine.begin() as conn:
        conn.execute(text("DELETE FROM est.hotspot_run WHERE id = :id"), {"id": running})

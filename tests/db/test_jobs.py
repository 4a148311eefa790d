"""The job life cycle: wall-clock times, a heartbeat while the work runs, failure with a reason."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text

from app.db.jobs import IMPORT_JOBS, Job, sweep_stale


def _job_values(engine: Engine, source: str) -> dict[str, object]:
    with engine.connect() as conn:
        org = conn.scalar(text("SELECT id FROM est.organisation WHERE code = 'ingest-test'"))
    return {"organisation_id": org, "created_by": "test", "source": source, "mapping": {"a": 1}}


def _row(engine: Engine, job_id: int) -> object:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT status, started_at, heartbeat_at, finished_at, error, counts "
                "FROM est.import_job WHERE id = :id"
            ),
            {"id": job_id},
        ).one()


def test_a_job_beats_while_its_transaction_is_open_and_ends_with_wall_clock_times(
    system_engine: Engine, world: object
) -> None:
    job = Job.start(system_engine, IMPORT_JOBS, _job_values(system_engine, "job-ok"), 0.05)
    started = _row(system_engine, job.id)
    with system_engine.begin() as work, job.beating():
        work.execute(text("SELECT pg_sleep(0.4)"))
        beating = _row(system_engine, job.id)  # seen from outside the open transaction
        job.finish(work, counts={"rows": 3})
    done = _row(system_engine, job.id)
    assert started.status == "running" and started.heartbeat_at is not None
    assert beating.status == "running" and beating.heartbeat_at > started.heartbeat_at
    assert done.status == "succeeded" and done.counts == {"rows": 3}
    assert (done.finished_at - done.started_at).total_seconds() >= 0.4


def test_a_failed_job_says_why_and_its_work_is_not_committed(
    system_engine: Engine, world: object
) -> None:
    job = Job.start(system_engine, IMPORT_JOBS, _job_values(system_engine, "job-fail"))
    job.fail("the file ended inside a quoted field", counts={"rows": 7})
    row = _row(system_engine, job.id)
    assert (row.status, row.error, row.counts) == (
        "failed",
        "the file ended inside a quoted field",
        {"rows": 7},
    )
    assert row.finished_at >= row.started_at


def test_a_job_whose_heartbeat_stopped_is_marked_failed_by_the_next_start(
    system_engine: Engine, world: object
) -> None:
    dead = Job.start(system_engine, IMPORT_JOBS, _job_values(system_engine, "job-dead"))
    with system_engine.begin() as conn:  # as if its process died ten minutes ago
        conn.execute(
            text(
                "UPDATE est.import_job SET heartbeat_at = clock_timestamp() - interval '10 min' "
                "WHERE id = :id"
            ),
            {"id": dead.id},
        )
    alive = Job.start(system_engine, IMPORT_JOBS, _job_values(system_engine, "job-alive"))
    time.sleep(0.01)
    assert _row(system_engine, dead.id).status == "failed"
    assert "no heartbeat since" in _row(system_engine, dead.id).error
    assert _row(system_engine, alive.id).status == "running"
    with system_engine.begin() as conn:
        assert sweep_stale(conn, IMPORT_JOBS, stale_after_s=3600) == 0
    alive.fail("done with the test")

"""The life cycle of a job recorded in a table: start, heartbeat, finish, fail.

A job (a file import today, a hotspot run next) is a row with a status, started_at,
heartbeat_at, finished_at and error. `start` commits the row at once, so a job that dies is
on record too; while it works a thread writes heartbeat_at from a connection of its own (the
work's transaction is not committed yet, so it cannot); `finish` writes the outcome in the
work's transaction, so the data and its record commit together or not at all; `fail` writes
the reason in a transaction of its own. A running row whose heartbeat is older than
`stale_after_s` belonged to a process that died: `sweep_stale` marks it failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("est")

HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0


@dataclass(frozen=True)
class JobTable:
    """A table of jobs: its name and the enum type of its status column."""

    name: str
    status_type: str


IMPORT_JOBS = JobTable("est.import_job", "est.import_status")
HOTSPOT_RUNS = JobTable("est.hotspot_run", "est.run_status")


def _json(values: dict[str, Any]) -> dict[str, Any]:
    """Return values with dicts and lists as JSON text (the jsonb columns take them so)."""
    return {
        k: orjson.dumps(v, default=str).decode() if isinstance(v, dict | list) else v
        for k, v in values.items()
    }


def _assignments(values: dict[str, Any]) -> str:
    return "".join(f", {k} = :{k}" for k in values)


class Job:
    """One running job of a table; see the module docstring for its life cycle."""

    def __init__(
        self, engine: Engine, table: JobTable, job_id: int, heartbeat_s: float = HEARTBEAT_S
    ) -> None:
        self.engine = engine
        self.table = table
        self.id = job_id
        self.heartbeat_s = heartbeat_s

    @classmethod
    def start(
        cls,
        engine: Engine,
        table: JobTable,
        values: dict[str, Any],
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
    ) -> Job:
        """Record a running job (committed at once) and return it; mark dead ones failed."""
        columns = ", ".join(values)
        placeholders = ", ".join(f":{k}" for k in values)
        with engine.begin() as conn:
            sweep_stale(conn, table, stale_after_s)
            job_id = conn.scalar(
                text(
                    f"INSERT INTO {table.name} ({columns}, status, started_at, heartbeat_at) "
                    f"VALUES ({placeholders}, 'running', clock_timestamp(), clock_timestamp()) "
                    "RETURNING id"
                ),
                _json(values),
            )
        assert job_id is not None
        return cls(engine, table, int(job_id), heartbeat_s)

    def beat(self) -> None:
        """Write the heartbeat now, in a transaction of its own.

        A row locked by the work's own transaction (which is finishing the job) is skipped,
        not waited for: that transaction may wait for this beat to end before it commits.
        """
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"UPDATE {self.table.name} SET heartbeat_at = clock_timestamp() "
                    f"WHERE id = (SELECT id FROM {self.table.name} "
                    "WHERE id = :id AND status = 'running' FOR UPDATE SKIP LOCKED)"
                ),
                {"id": self.id},
            )

    @contextmanager
    def beating(self) -> Iterator[Job]:
        """Keep the heartbeat going on a thread while the block runs."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.heartbeat_s):
                try:
                    self.beat()
                except DBAPIError:  # the work itself will meet the same database trouble
                    log.warning("job %s %s: heartbeat failed", self.table.name, self.id)

        beater = threading.Thread(target=loop, name=f"heartbeat-{self.id}", daemon=True)
        beater.start()
        try:
            yield self
        finally:
            stop.set()
            beater.join()

    def finish(self, conn: Connection, **values: Any) -> None:
        """Record success and the outcome, in the work's own transaction."""
        conn.execute(
            text(
                f"UPDATE {self.table.name} SET status = 'succeeded', "
                "finished_at = clock_timestamp(), heartbeat_at = clock_timestamp()"
                f"{_assignments(values)} WHERE id = :id"
            ),
            {"id": self.id, **_json(values)},
        )

    def fail(self, reason: str, **values: Any) -> None:
        """Record failure and why, in a transaction of its own (the work was rolled back)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        f"UPDATE {self.table.name} SET status = 'failed', error = :error, "
                        "finished_at = clock_timestamp(), heartbeat_at = clock_timestamp()"
                        f"{_assignments(values)} WHERE id = :id"
                    ),
                    {"id": self.id, "error": reason[:2000], **_json(values)},
                )
        except DBAPIError:  # the database is gone: the stale heartbeat will tell later
            log.warning("job %s %s failed (%s); not recorded", self.table.name, self.id, reason)


def sweep_stale(conn: Connection, table: JobTable, stale_after_s: float = STALE_AFTER_S) -> int:
    """Mark running jobs whose heartbeat stopped as failed; return how many there were."""
    return int(
        conn.execute(
            text(
                f"UPDATE {table.name} SET status = 'failed', finished_at = heartbeat_at, "
                "error = 'the process stopped: no heartbeat since ' "
                "|| to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' "
                "WHERE status = 'running' "
                "AND heartbeat_at < clock_timestamp() - make_interval(secs => :stale)"
            ),
            {"stale": stale_after_s},
        ).rowcount
    )

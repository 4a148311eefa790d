"""Where a night's runs are computed: in this process, or on the workers of a Dask cluster.

Areas are independent, so a night is a map over (area, profile) pairs. The process that
coordinates it is the only one that talks to the database: for each pair it reads what the run
needs (app.runs.recompute.gather), hands that to a worker as arrays and parameters
(recompute.work, a pure function), and writes and publishes what comes back. Workers need no
database credentials, but they do receive incident coordinates: a Dask cluster runs whatever it
is sent and its traffic is the arrays, so it must be reached over TLS or a private network
(see the README, "Scaling out").

- `local()`: everything in this process (the default);
- `workers(n)`: a `dask.distributed` LocalCluster of n single-threaded worker processes;
- `scheduler(address)`: an existing cluster (`tls://host:8786`; plain `tcp://` only on loopback).

With workers, as many pairs as there are workers are in flight at once: while one worker
computes, the coordinator reads the next pair (PostgreSQL reads in its own processes), so the
database's work and the methods overlap.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from app.core.errors import InvalidInput
from app.runs import recompute as runs

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Local:
    """Compute in this process, one pair at a time."""

    parallel: int = 1

    def work(self, gathered: runs.Gathered) -> runs.Computed:
        return runs.work(gathered)

    def describe(self) -> str:
        return "in this process"


@dataclass
class OnDask:
    """Compute on a Dask cluster's workers; `parallel` pairs are in flight at once."""

    client: Any  # distributed.Client
    parallel: int
    where: str

    def work(self, gathered: runs.Gathered) -> runs.Computed:
        # scattered first: the arrays travel once, straight to a worker, not in the task graph
        data = self.client.scatter(gathered, hash=False)
        future = self.client.submit(runs.work, data, pure=False)
        computed: runs.Computed = future.result()
        return computed

    def describe(self) -> str:
        return self.where


Runner = Local | OnDask


@contextmanager
def runner(workers: int = 0, scheduler: str | None = None) -> Iterator[Runner]:
    """The runner of a recompute: an existing cluster, a LocalCluster of `workers` processes,
    or (neither given) this process. Clusters started here are closed on leaving."""
    if scheduler and workers:
        raise InvalidInput("give --workers or --scheduler, not both", field="workers")
    if scheduler:
        with _remote(scheduler) as made:
            yield made
        return
    if workers < 0:
        raise InvalidInput("workers: give 0 (in this process) or more", field="workers")
    if workers == 0:
        yield Local()
        return
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield OnDask(client, workers, f"{workers} local Dask workers")


def check_scheduler_address(address: str) -> None:
    """A cluster is reached over TLS; plain tcp only to this machine (the arrays are incident
    coordinates and the cluster runs what it is sent)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme == "tls":
        return
    if parts.scheme in ("tcp", "") and parts.hostname:
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if loopback:
            return
    raise InvalidInput(
        f"scheduler: {address!r} is not a tls:// address; a Dask cluster off this machine is "
        "reached over TLS only (see the README, 'Scaling out')",
        field="scheduler",
    )


@contextmanager
def _remote(address: str) -> Iterator[Runner]:
    check_scheduler_address(address)
    from distributed import Client

    with Client(address, timeout=30) as client:
        workers = client.scheduler_info().get("workers", {})
        if not workers:
            raise InvalidInput(f"scheduler: {address} has no workers", field="scheduler")
        ours = runs.code_version()
        theirs = set(client.run(runs.code_version).values())
        if theirs != {ours}:
            raise InvalidInput(
                f"scheduler: the workers run {', '.join(sorted(theirs))}, this is {ours}: "
                "install the same version on them",
                field="scheduler",
            )
        yield OnDask(client, len(workers), f"{len(workers)} Dask workers at {address}")


def each(fn: Callable[[T], R], items: Sequence[T], parallel: int) -> list[R]:
    """fn of every item, `parallel` at a time, in the items' order."""
    if parallel <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="run") as pool:
        return list(pool.map(fn, items))

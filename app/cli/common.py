"""What every command group shares: the consoles, engines, and errors turned into exit codes.

Commands are thin: they parse options, call the layer that does the work, and print. Heavy
libraries (SQLAlchemy's ORM, pandas, geopandas, numba) are imported inside the commands that
use them, so that `est --help` starts at once.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from app.core import errors

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

    from app.runs.analyze import Points

console = Console()
err = Console(stderr=True)

# Exit status per kind of failure, so that scripts can tell "fix your input" from "set up first"
# or "try again". The API maps the same types to HTTP statuses (app.api.errors.PROBLEMS).
EXIT_CODES: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 1,
    errors.NotFound: 1,
    errors.Conflict: 1,
    errors.Forbidden: 1,
    errors.Unauthorized: 1,
    errors.TooLarge: 1,
    errors.NotReady: 3,  # a set-up step is missing: the message names the command
    errors.Unavailable: 4,  # the database or another service: try again
    errors.RateLimited: 4,
}


def exit_code(exc: errors.DomainError) -> int:
    """The exit status of a domain error: its own type's, else its nearest base's, else 1."""
    for kind in type(exc).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return 1


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as an error and leave with `code`."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code=code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn a domain error, or a CRS or mapping the user gave, into a message and exit status."""
    from geo.crs import CrsError

    try:
        yield
    except errors.DomainError as exc:
        fail(exc.detail, exit_code(exc))
    except CrsError as exc:
        fail(str(exc))


def engine(role: str) -> Engine:
    """An engine without a pool for one command, connecting as `role`."""
    from sqlalchemy import create_engine, pool

    from app.settings import get_settings

    return create_engine(get_settings().role_url(role), poolclass=pool.NullPool)


def system_engine() -> Engine:
    """The engine of the deployment's system role: what commands on the data use."""
    from app.settings import SYSTEM_ROLE

    return engine(SYSTEM_ROLE)


def owner_engine() -> Engine:
    """The engine of the schema's owner: migrations."""
    from app.settings import OWNER_ROLE

    return engine(OWNER_ROLE)


def cli_actor() -> str:
    """Who the audit log names for a command: the operating-system user (or just `cli`)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
        return "cli"


def parse_date(value: str | None, option: str) -> datetime | None:
    """A date or time option in UTC, or None; a clear message when it is no date.

    YYYY-MM-DD (or a time without an offset) is read as UTC; an explicit offset, as in
    2017-07-01T00:00-05:00, is kept and converted.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be a date YYYY-MM-DD (or a time with an offset), got {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def read_file_points(
    path: Path,
    mapping: str,
    crs: str | None,
    timezone: str | None,
    metric_crs: str | None,
    since: str | None,
    until: str | None,
) -> Points:
    """The file's points for a command on files (in a `reported()` block)."""
    from app.ingest.mapping import load_mapping
    from app.runs.analyze import read_points
    from app.settings import get_settings

    start, end = parse_date(since, "--from"), parse_date(until, "--to")
    return read_points(
        path,
        load_mapping(mapping),
        default_timezone=get_settings().timezone,
        crs=crs,
        timezone=timezone,
        metric_crs=metric_crs,
        since=start,
        until=end,
    )


def area_polygon(path: Path, points: Points, area_crs: str | None = None) -> object:
    """A study-area polygon file in the points' CRS, or a message saying why it cannot be
    (`area_crs`: the file's CRS when its own is missing or wrong)."""
    from pyogrio.errors import DataSourceError

    from app.runs.evaluate import read_area

    if not path.is_file():
        fail(f"--area: no file {path}")
    try:
        return read_area(path, points, area_crs)
    except (DataSourceError, ValueError) as exc:
        fail(f"--area: cannot read {path} as polygons: {exc}")

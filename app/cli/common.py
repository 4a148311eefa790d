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
    from sqlalchemy import Engine

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
    """A YYYY-MM-DD option as midnight UTC, or None; a clear message when it is no date."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        fail(f"{option} must be a date YYYY-MM-DD, got {value!r}")

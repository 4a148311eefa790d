"""Domain errors: one type per kind of failure, with a detail that says what to fix.

They carry no HTTP status: `app.api.errors` maps each type to its status and problem type for
the service, and the command line maps the same types to its messages and exit codes.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure the caller should hear about; `extra` adds fields to the answer."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthorized(DomainError):
    """No credentials, or credentials that do not prove who the caller is."""


class SessionEnded(Unauthorized):
    """A map-page session that ended, or a request of the page without one: log in again."""


class Forbidden(DomainError):
    """The caller is known but its role may not do this."""


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class Conflict(DomainError):
    """The request conflicts with the current state."""


class InvalidInput(DomainError):
    """The request is well-formed but its content is invalid."""


class InvalidParameter(InvalidInput):
    """A query parameter that is unknown or cannot be read (OGC API answers these with 400)."""


class TooLarge(DomainError):
    """More data in one request than the service accepts."""


class RateLimited(DomainError):
    """The caller sent more requests than its rate limit allows."""

    def __init__(self, detail: str, retry_after_s: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A dependency (the database) is not there right now; trying again later may work."""


class NotReady(DomainError):
    """The deployment lacks something an operator must set up first (areas, migrations)."""


class Rejected(InvalidInput):
    """Records were rejected and the import was all or nothing: nothing was stored."""

"""RFC 9457 problem+json for every error; one exception type per kind of failure."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the web framework loads with the service, not with every CLI command
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("est")


class Problem(Exception):
    """An error a client should see: status, a short title and a detail that says what to fix."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(Problem):
    """No credentials, or credentials that do not prove who the caller is."""

    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        # Basic first: QGIS and ArcGIS answer a Basic challenge with the key as the password.
        super().__init__(
            detail, headers={"WWW-Authenticate": 'Basic realm="EST Lagesbild", Bearer'}
        )


class Forbidden(Problem):
    """The caller is known but its role may not do this."""

    status = 403
    title = "Forbidden"


class NotFound(Problem):
    """The thing does not exist, or the caller may not know that it does."""

    status = 404
    title = "Not found"


class Conflict(Problem):
    """The request conflicts with the current state."""

    status = 409
    title = "Conflict"


class Unprocessable(Problem):
    """The request is well-formed but its content is invalid."""

    status = 422
    title = "Unprocessable content"


class PayloadTooLarge(Problem):
    """The request body is larger than the service accepts."""

    status = 413
    title = "Content too large"


class TooManyRequests(Problem):
    """The caller sent more requests than its rate limit allows."""

    status = 429
    title = "Too many requests"


class ServiceUnavailable(Problem):
    """A dependency (the database) is not there right now."""

    status = 503
    title = "Service unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Return a problem+json response."""
    from fastapi.responses import JSONResponse

    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, a problem+json response without a stack trace."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, request.url.path, exc.headers, **exc.extra
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(exc.status_code, title, detail, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(422, "Invalid request", detail, request.url.path, errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal server error", "the server failed; the error is logged", request.url.path
        )

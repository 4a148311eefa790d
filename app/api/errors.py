"""The error table: each domain error type is answered with its status as RFC 9457 problem+json.

No stack trace ever reaches a client: an error the table does not know is logged and answered
with a plain 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core import errors

if TYPE_CHECKING:  # the web framework loads with the service, not with every CLI command
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("est")


@dataclass(frozen=True)
class ProblemKind:
    """How one kind of error is answered."""

    status: int
    title: str
    type: str = "about:blank"


# Basic first: QGIS and ArcGIS answer a Basic challenge with the key as the password.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="EST Lagesbild", Bearer'}

PROBLEMS: dict[type[Exception], ProblemKind] = {
    errors.Unauthorized: ProblemKind(401, "Unauthorized"),
    errors.Forbidden: ProblemKind(403, "Forbidden"),
    errors.NotFound: ProblemKind(404, "Not found"),
    errors.Conflict: ProblemKind(409, "Conflict"),
    errors.TooLarge: ProblemKind(413, "Content too large"),
    errors.InvalidParameter: ProblemKind(400, "Bad request"),
    errors.InvalidInput: ProblemKind(422, "Unprocessable content"),
    errors.Rejected: ProblemKind(422, "Import rejected"),
    errors.RateLimited: ProblemKind(429, "Too many requests"),
    errors.Unavailable: ProblemKind(503, "Service unavailable"),
    errors.NotReady: ProblemKind(503, "Service not set up"),
}


def _library_errors() -> dict[type[Exception], ProblemKind]:
    """Errors of the libraries (geo, clustering) that name bad input: 422 as well."""
    from clustering.gistar import TooFewIncidents
    from geo.crs import CrsError

    return {CrsError: PROBLEMS[errors.InvalidInput], TooFewIncidents: PROBLEMS[errors.InvalidInput]}


def kind_of(exc: Exception) -> ProblemKind | None:
    """Return how an error is answered: by its type or the nearest base type in the table."""
    table = {**PROBLEMS, **_library_errors()}
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def headers_of(exc: Exception) -> dict[str, str]:
    """Return the HTTP headers an error's answer carries (a challenge, Retry-After)."""
    if isinstance(exc, errors.SessionEnded):
        return {}  # a Basic challenge would make the browser ask for a password over the page
    if isinstance(exc, errors.Unauthorized):
        return dict(CHALLENGE)
    if isinstance(exc, errors.RateLimited):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}


def problem_response(
    status: int,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    problem_type: str = "about:blank",
    **extra: Any,
) -> JSONResponse:
    """Return a problem+json response."""
    from fastapi.responses import JSONResponse

    body: dict[str, Any] = {
        "type": problem_type,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: Exception, instance: str | None = None) -> JSONResponse:
    """Return the answer to a domain error (or a plain 500 for one the table does not know)."""
    kind = kind_of(exc)
    if kind is None:
        return problem_response(
            500, "Internal server error", "the server failed; the error is logged", instance
        )
    detail = exc.detail if isinstance(exc, errors.DomainError) else str(exc)
    extra = exc.extra if isinstance(exc, errors.DomainError) else {}
    return problem_response(
        kind.status, kind.title, detail, instance, headers_of(exc), kind.type, **extra
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, a problem+json response without a stack trace."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers) if exc.headers else None  # 405 carries Allow
        return problem_response(exc.status_code, title, detail, request.url.path, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in found) or "invalid request"
        return problem_response(422, "Invalid request", detail, request.url.path, errors=found)

    async def _known(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, request.url.path)

    for error_type in {**PROBLEMS, **_library_errors()}:
        app.add_exception_handler(error_type, _known)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(exc, request.url.path)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; extension members may follow (errors, results…).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """The problem+json answers every route may give, for the OpenAPI document."""
    said = {
        400: "Bad request: an unknown or unreadable parameter (or a NUL byte in one)",
        401: "No valid credentials",
        403: "Not allowed for this role",
        404: "Not found, or not yours",
        409: "Conflict",
        413: "Body too large",
        422: "Invalid input: the detail names the field and row",
        429: "Too many requests (see Retry-After)",
        503: "The database or the identity provider is not reachable, or a query ran too long",
    }
    return {
        status: {
            "description": text,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status, text in said.items()
    }


NO_NUL = "^[^\\u0000]*$"  # what RefuseNulBytes lets through, said in the document


def document_text_rules(document: dict[str, Any]) -> dict[str, Any]:
    """Say in an OpenAPI document that no text parameter may hold a NUL byte."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                _no_nul(parameter.get("schema", {}))
    return document


def _no_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and "format" not in schema:
        schema.setdefault("pattern", NO_NUL)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            _no_nul(part)
    if isinstance(schema.get("items"), dict):
        _no_nul(schema["items"])

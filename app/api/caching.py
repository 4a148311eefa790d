"""HTTP caching of answers made from published runs: a strong ETag, 304 on If-None-Match,
and headers that let the caller's browser keep an answer but no shared cache.

The ETag says what the answer reads (the runs, and which version of each the caller gets),
who asks (role, organisation) and what is asked (path and parameters): a newly published run,
a changed grant or another question gives another tag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from app.access.auth import Principal


def etag(
    request: Request, layer: str, principal: Principal, runs: Sequence[Any], base: str = ""
) -> str:
    """A strong ETag of an answer made from published runs: what it reads (the runs, and which
    version of each the caller gets), who asks (role, organisation), what it asks, and the base
    of the answer's absolute links when it has any."""
    said = orjson.dumps(
        [
            request.app.version,
            base,
            layer,
            principal.role.value,
            principal.organisation_id,
            request.url.path,
            sorted(request.query_params.multi_items()),
            runs,
        ]
    )
    return '"' + hashlib.sha256(said).hexdigest()[:32] + '"'


CACHE_HEADERS = {
    # a browser may keep it and asks again after a minute (304 while nothing was published);
    # no shared cache may serve one caller's answer to another
    "Cache-Control": "private, max-age=60",
    "Vary": "Authorization, Cookie",
}


def cached(request: Request, tag: str, build: Callable[[], Response]) -> Response:
    """304 when the client holds the answer (If-None-Match), else the answer; both with the
    ETag and the caching headers."""
    headers = {"ETag": tag, **CACHE_HEADERS}
    held = request.headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in held.split(",")}
    if tag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    response = build()
    response.headers.update(headers)
    return response

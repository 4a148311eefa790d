"""HTTP caching of answers made from published runs: a strong ETag, 304 on If-None-Match,
and headers that let the caller's browser keep an answer but no shared cache.

The ETag says what the answer reads (the runs, and which version of each the caller gets),
who asks (role, organisation) and what is asked (path and parameters): a newly published run,
a changed grant or another question gives another tag.

The tag also keys AnswerCache, the service's own memory of tiles: the same tag means the same
runs in the same versions for the same organisation, role and question, so the same bytes. A
published run's layers do not change; a purged or newly published run, or a changed grant, is
another tag. Entries are still let go after a while, so nothing stale outlives that.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
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


class AnswerCache:
    """Bodies of answers kept by their ETag in this worker's memory: the least recently used
    go first once `max_bytes` are held, and none is kept longer than `keep_s`."""

    def __init__(self, max_bytes: int, keep_s: float = 600.0) -> None:
        self.max_bytes = max_bytes
        self.keep_s = keep_s
        self._held: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, tag: str) -> bytes | None:
        """The body kept under the tag, if it is still fresh."""
        with self._lock:
            found = self._held.get(tag)
            if found is None:
                return None
            if time.monotonic() - found[0] > self.keep_s:
                self._drop(tag)
                return None
            self._held.move_to_end(tag)
            return found[1]

    def put(self, tag: str, body: bytes) -> None:
        """Keep a body (not one larger than a tenth of the whole budget)."""
        if len(body) > self.max_bytes // 10:
            return
        with self._lock:
            if tag in self._held:
                self._drop(tag)
            self._held[tag] = (time.monotonic(), body)
            self._size += len(body)
            while self._size > self.max_bytes:
                self._drop(next(iter(self._held)))

    def _drop(self, tag: str) -> None:
        _, body = self._held.pop(tag)
        self._size -= len(body)

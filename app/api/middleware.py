"""Hardening that applies to every request: body size limit, request ids, rate limits."""

from __future__ import annotations

import threading
import time
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import PROBLEMS, problem_response
from app.core.errors import RateLimited, TooLarge


class BodySizeLimit:
    """Refuse request bodies over a size with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length up front and count streamed bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body is larger than {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await problem_response(413, PROBLEMS[TooLarge].title, detail, scope["path"])(
                scope, receive, send
            )
            return
        seen = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Tell the app the client is gone; it stops reading and we answer instead.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await problem_response(413, PROBLEMS[TooLarge].title, detail, scope["path"])(
                scope, receive, send
            )


class RateLimiter:
    """A sliding one-minute window of requests per caller, in this process.

    Several worker processes each keep their own window, so the effective limit is the
    setting times the number of workers; a proxy in front can enforce a global one.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, caller: str, what: str = "requests a minute with this key") -> None:
        """Count a request by caller, or raise 429 when it is over its limit."""
        self.refuse_if_over(caller, what)
        self.count(caller)

    def refuse_if_over(self, caller: str, what: str) -> None:
        """Raise 429 when the caller has used up its minute, without counting this request."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(caller, deque())
            while hits and hits[0] <= now - 60.0:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry = max(1, int(60.0 - (now - hits[0])) + 1)
                raise RateLimited(
                    f"more than {self.per_minute} {what}; try again in {retry} s",
                    retry_after_s=retry,
                )

    def count(self, caller: str) -> None:
        """Count one event of the caller."""
        with self._lock:
            self._hits.setdefault(caller, deque()).append(time.monotonic())


class HeadAsGet:
    """Answer HEAD wherever GET answers: the GET's status and headers, without its body.

    FastAPI registers GET routes for GET only; GDAL's /vsicurl/, QGIS and caching proxies
    probe a URL with HEAD before they read it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a HEAD request as a GET and drop the body it sends."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def headers_only(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
            elif not ended and not message.get("more_body", False):
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class RefuseNulBytes:
    """Answer 400 to a NUL byte in the path or a query parameter, naming where it is.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail deep in a query; it is
    refused here, once, for every route. (JSON bodies are checked by app.api.schemas.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the decoded path and each query parameter before the app sees them."""
        if scope["type"] == "http":
            where = _nul_in(scope)
            if where is not None:
                detail = f"{where} contains a NUL byte (%00), which no text may hold"
                await problem_response(400, "Bad request", detail, scope["path"])(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def _nul_in(scope: Scope) -> str | None:
    from urllib.parse import parse_qsl

    if "\x00" in scope["path"]:
        return "the path"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"query parameter {name.replace(chr(0), '')!r}"
    return None


def client_address(
    scope_client: tuple[str, int] | None, forwarded_for: str | None, trusted_proxies: list[str]
) -> str:
    """The address a request comes from: the peer's, or behind a trusted proxy the last
    address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = scope_client[0] if scope_client else "unknown"
    if peer not in trusted_proxies or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return peer

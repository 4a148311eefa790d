"""Absolute links of /ogc answers, right behind a reverse proxy.

The scheme, host and path prefix come from X-Forwarded-Proto, X-Forwarded-Host and
X-Forwarded-Prefix when the request comes from a trusted proxy (EST_TRUSTED_PROXIES), else from
the request itself and EST_ROOT_PATH.
"""

from __future__ import annotations

from fastapi import Request

from app.settings import Settings


class Links:
    """Makes the links of one answer."""

    def __init__(self, request: Request, settings: Settings) -> None:
        headers = request.headers
        peer = request.client.host if request.client else ""
        proxied = peer in settings.trusted_proxies

        def forwarded(name: str) -> str | None:
            value = headers.get(name) if proxied else None
            return value.split(",")[0].strip() if value else None

        scheme = forwarded("x-forwarded-proto") or request.url.scheme
        host = forwarded("x-forwarded-host") or request.url.netloc
        prefix = forwarded("x-forwarded-prefix")
        prefix = (prefix if prefix is not None else settings.root_path).rstrip("/")
        self.base = f"{scheme}://{host}{prefix}"

    def href(self, path: str, query: str = "") -> str:
        """The absolute URL of a path of the service (and a query string)."""
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    def to(self, path: str, rel: str, media_type: str, title: str) -> dict[str, str]:
        """A link to a path of the service."""
        return {"href": self.href(path), "rel": rel, "type": media_type, "title": title}

    def same(
        self, request: Request, rel: str, media_type: str, title: str, cursor: str | None = None
    ) -> dict[str, str]:
        """A link to the request's own URL with every parameter, the cursor replaced."""
        url = request.url
        if cursor is not None:
            url = url.remove_query_params("cursor").include_query_params(cursor=cursor)
        return {
            "href": self.href(url.path, url.query),
            "rel": rel,
            "type": media_type,
            "title": title,
        }

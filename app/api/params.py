"""Request parameters every route parses the same way: bbox, time window, paging.

Each is a FastAPI dependency typed with `Annotated`, so a route declares `window: WindowDep`
and gets a checked value, and a wrong value is a 422 problem naming the parameter.
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from app.api.deps import SettingsDep
from app.core.errors import InvalidInput

BBox = tuple[float, float, float, float]
MAX_OFFSET = 2**63 - 1  # PostgreSQL's bigint: a larger offset is a 422, not a database error


def parse_bbox(value: str | None) -> BBox | None:
    """Parse "minlon,minlat,maxlon,maxlat" (CRS84)."""
    if value is None:
        return None
    try:
        minx, miny, maxx, maxy = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat in degrees") from None
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidInput("bbox must have minlon < maxlon and minlat < maxlat, in degrees")
    return minx, miny, maxx, maxy


def bbox_param(
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CRS84)")] = None,
) -> BBox | None:
    """The optional bbox of a request."""
    return parse_bbox(bbox)


BBoxDep = Annotated[BBox | None, Depends(bbox_param)]


def require_zone(name: str, value: datetime | None) -> None:
    """Refuse a time without a time zone: its instant would depend on the server."""
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone, e.g. 2026-05-04T00:00:00+02:00")


@dataclass(frozen=True)
class Window:
    """A half-open time window [since, until), either end open; both ends have a zone."""

    since: datetime | None
    until: datetime | None


def window_param(
    since: Annotated[datetime | None, Query(description="at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="before (ISO 8601)")] = None,
) -> Window:
    """An optional time window."""
    require_zone("since", since)
    require_zone("until", until)
    return Window(since, until)


WindowDep = Annotated[Window, Depends(window_param)]


@dataclass(frozen=True)
class Page:
    """Which slice of a list a request asks for; `next_url` links to the slice after it."""

    limit: int
    offset: int

    def next_url(self, request: Request, total: int) -> str | None:
        """The URL of the next page, or None on the last one."""
        if self.offset + self.limit >= total:
            return None
        nxt = request.url.include_query_params(offset=self.offset + self.limit, limit=self.limit)
        return str(nxt)


def paging(default: int, maximum: int) -> Callable[..., Page]:
    """A paging dependency of a JSON list: `default` items per page, at most `maximum`."""

    def page_param(
        limit: Annotated[int, Query(ge=1, le=maximum, description="items per page")] = default,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
    ) -> Page:
        return Page(limit, offset)

    return page_param


# JSON lists (areas, the audit trail): 100 a page, at most 1000
ListPageDep = Annotated[Page, Depends(paging(default=100, maximum=1000))]


Key = tuple[datetime, int]  # (occurred_from, id): where a page of incidents ends


def encode_key(key: Key) -> str:
    """The `after` value of a next link: opaque to clients, readable by `decode_key`."""
    raw = f"{key[0].isoformat()}|{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(value: str) -> Key:
    """The key an `after` value carries, or a 422 naming the parameter."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, key_id = text.split("|")
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError
        return when, int(key_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput("after must be the value of a next link, as given") from None


@dataclass(frozen=True)
class KeysetPage:
    """A page that starts after a key (keyset paging: no offset, however deep)."""

    limit: int
    after: Key | None

    def next_url(self, request: Request, last: Key) -> str:
        """The URL of the page after the one that ends with `last`."""
        url = request.url.remove_query_params("after")
        return str(url.include_query_params(after=encode_key(last)))


def keyset_page_param(
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, description="features per page")] = 1000,
    after: Annotated[
        str | None, Query(max_length=200, description="from the next link of the page before")
    ] = None,
) -> KeysetPage:
    """Paging of features: at most EST_MAX_PAGE_SIZE per page, each page after a key."""
    if limit > settings.max_page_size:
        raise InvalidInput(f"limit may be at most {settings.max_page_size}")
    return KeysetPage(limit, decode_key(after) if after is not None else None)


KeysetPageDep = Annotated[KeysetPage, Depends(keyset_page_param)]

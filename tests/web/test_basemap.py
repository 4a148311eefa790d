"""The basemap: none unless EST_BASEMAP_URL names one, and then drawn from that server only,
with its attribution and in the page's content security policy."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import serve
from tests.web.conftest import Web, log_in, wait_ready

VIEWER = ("kommun-1285", "viewer")


def png(side: int = 256, grey: int = 200) -> bytes:
    """A grey square as PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\0" + bytes([grey]) * side for _ in range(side))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png()
ATTRIBUTION = "© Provkartan"


@pytest.fixture(scope="module")
def tile_server() -> Iterator[tuple[str, list[str]]]:
    """A raster tile server on loopback, and the paths asked of it."""
    asked: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    httpd.shutdown()


@pytest.fixture(scope="module")
def with_basemap(web: Web, tile_server: tuple[str, list[str]]) -> Iterator[str]:
    """The service of the web world with a basemap from the tile server."""
    origin, _ = tile_server
    settings = web.settings.model_copy(
        update={
            "basemap_url": f"{origin}/{{z}}/{{x}}/{{y}}.png",
            "basemap_attribution": ATTRIBUTION,
        }
    )
    yield from serve(settings)


def test_without_a_basemap_the_page_asks_no_other_server(page: Any, server: str, web: Web) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    log_in(page, server, web.token(*VIEWER))
    wait_ready(page)
    own = urlsplit(server).netloc
    others = [
        u for u in asked if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != own
    ]
    assert asked and others == []
    policy = page.request.get(f"{server}/").headers["content-security-policy"]
    assert "127.0.0.1" not in policy


def test_a_configured_basemap_is_drawn_from_its_server_with_its_attribution(
    page: Any, with_basemap: str, web: Web, tile_server: tuple[str, list[str]]
) -> None:
    origin, asked = tile_server
    log_in(page, with_basemap, web.token(*VIEWER))
    wait_ready(page)
    page.wait_for_function("document.querySelector('.maplibregl-ctrl-attrib') !== null")
    assert any(path.endswith(".png") and path.count("/") == 3 for path in asked), asked
    z, x, y = (int(v) for v in asked[-1].removesuffix(".png").strip("/").split("/"))
    assert 0 <= x < 2**z and 0 <= y < 2**z
    attribution = page.eval_on_selector(".maplibregl-ctrl-attrib", "e => e.textContent")
    assert ATTRIBUTION in attribution
    policy = page.request.get(f"{with_basemap}/").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
    assert origin in directives["img-src"] and origin in directives["connect-src"]
    assert origin not in directives.get("script-src", "")

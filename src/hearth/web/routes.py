"""Serves the dashboard at `/` next to the WebSocket, on the gateway's own port.

The bundle is committed package data, so a wheel install serves it without Node. Every
response carries a Content-Security-Policy that allows only this origin's own script, style
and WebSocket: no inline script, no third-party origin, so a reply rendered from Markdown
cannot run code even if the sanitiser missed something.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

STATIC = Path(__file__).resolve().parent / "static"

#: `connect-src 'self'` covers ws:// and wss:// to the same host and port (CSP level 3).
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # A gateway upgrade replaces the bundle under the same name: always revalidate.
    "Cache-Control": "no-cache",
}

#: The files the page may load, by the name it asks for; nothing else is served.
_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


async def index(request: Request) -> Response:
    page = STATIC / "index.html"
    if not page.is_file():
        return _secure(
            PlainTextResponse("the dashboard is not built: run `make web` in the source tree", 503)
        )
    return _secure(FileResponse(page, media_type="text/html; charset=utf-8"))


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = _ASSETS.get(name)
    path = STATIC / name
    if media_type is None or not path.is_file():
        return _secure(PlainTextResponse("not found", 404))
    return _secure(FileResponse(path, media_type=media_type))


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/static/{name}", asset, methods=["GET", "HEAD"]),
    ]

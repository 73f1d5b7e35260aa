"""Serves the web terminal: ``GET /`` is its page, ``/web/...`` its static files (the package
``tradingfloor.web``; plain HTML, CSS and JavaScript modules, no build step)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["WEB_PREFIX", "add_web_terminal", "web_root"]

WEB_PREFIX: Final = "/web"
_HEADERS: Final = {
    # the terminal's code talks only to its own origin; no framing by other sites
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def web_root() -> Path:
    """The directory that holds ``index.html`` and the terminal's assets."""
    return Path(str(files("tradingfloor.web")))


def add_web_terminal(app: FastAPI) -> None:
    root = web_root()
    index = root / "index.html"

    @app.get("/", include_in_schema=False)
    async def terminal() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=_HEADERS)

    app.mount(WEB_PREFIX, StaticFiles(directory=root), name="web")

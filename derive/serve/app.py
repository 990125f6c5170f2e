"""The web app: a Starlette application serving the page (``static/``) and the JSON API
(:mod:`derive.serve.api`), its work done by a pool of worker processes (:mod:`derive.serve.pool`).

``tracegrad serve`` runs it with uvicorn on 127.0.0.1:8000.  The page needs no network: its
scripts, styles and fonts are the app's own files (the Content-Security-Policy allows nothing else).
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from derive.serve.api import Api, error_response, handlers
from derive.serve.pool import WorkerPool

__all__ = ["MAX_BODY", "MAX_UPLOAD", "STATIC", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 256 * 1024
"""Bytes of a JSON request body."""
MAX_UPLOAD = 1024 * 1024
"""Bytes of a write-up sent to ``/api/grade``."""

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class _SecurityHeaders:
    """Headers on every response: the page loads nothing from elsewhere and runs no inline script."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", _CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(pool_size: int = 2, time_limit: float = 10.0, memory_limit: int | None = 2 << 30,
               queue_timeout: float = 30.0, max_body: int = MAX_BODY, max_upload: int = MAX_UPLOAD,
               pdf_time_limit: float = 60.0, cache_size: int = 256) -> Starlette:
    """The app; its pool of ``pool_size`` workers starts with the app (its lifespan) and stops with it.

    ``time_limit``: seconds per request (``pdf_time_limit`` for a PDF); ``memory_limit``: bytes of
    each worker's address space (None: unlimited); ``queue_timeout``: seconds a request waits for a
    free worker; ``max_body`` / ``max_upload``: bytes of a JSON body / of an uploaded write-up;
    ``cache_size``: answers kept for requests asked again (0: none).

    >>> app = create_app(pool_size=2)
    >>> sorted(r.path for r in app.routes if r.path.startswith("/api/"))[:3]
    ['/api/check', '/api/codegen', '/api/derive']
    """
    pool = WorkerPool(pool_size, time_limit, memory_limit, queue_timeout)
    api = Api(pool, max_body, max_upload, pdf_time_limit, cache_size)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def not_found(request: Request, exc: Any) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = getattr(exc, "detail", "") or ("not found" if status == 404 else "error")
        return error_response(f"{request.url.path}: {detail}", status, "input")

    async def internal(request: Request, exc: Exception) -> Response:   # a defect: still JSON, one line
        first = str(exc).splitlines()[0] if str(exc) else ""
        return error_response(f"internal error ({type(exc).__name__}: {first})", 500, "internal")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool.start()
        try:
            yield
        finally:
            pool.close()

    routes = [Route("/", index, methods=["GET"]),
              *(Route(path, endpoint, methods=[method]) for path, (method, endpoint) in handlers(api).items()),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_SecurityHeaders)],
                    exception_handlers={404: not_found, 405: not_found, Exception: internal})
    app.state.pool = pool
    return app

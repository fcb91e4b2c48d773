"""The FastAPI application: :func:`create_app` builds it over a store, :func:`serve` runs it with uvicorn.

``create_app(store, settings)`` opens the store (a URL, or an open :class:`~truescore.store.Store`),
keeps one :class:`~truescore.api.state.ApiState` per process (the trust engine's Rater and the item
summaries, warmed at startup), mounts the per-resource routers, the error handlers, the body-size
limit, optional CORS, and the web page at ``/`` (static files from ``truescore/web``).

Every response carries the security headers of :data:`SECURITY_HEADERS` (a Content-Security-Policy that
allows only this origin's scripts, no framing, ``nosniff``, no referrer). ``/docs`` is Swagger UI served
from the files of the ``fastapi-offline`` package (no CDN), started by ``web/docs.js`` so that no inline script is
needed. :func:`serve` reports "serving" only once uvicorn listens, and raises :class:`ServeError` when it
cannot (port in use, store unusable at start-up).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import truescore
from truescore.api.errors import BodyLimit, install_error_handlers
from truescore.api.jobs import JobRunner
from truescore.api.limits import Gate
from truescore.api.routes import api_router
from truescore.api.state import ApiState
from truescore.config import Settings, get_settings
from truescore.errors import TruescoreError
from truescore.store import Store

__all__ = ["SECURITY_HEADERS", "WEB_DIR", "SecurityHeaders", "ServeError", "app_from_env", "create_app", "serve"]

log = logging.getLogger("truescore.api")

#: the static web page (index.html, app.js, style.css)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"

_DESCRIPTION = """
Honest product ratings over one event store.

* **Reliability** (seed 000): `GET /items/{id}/quality`, `GET /users/{id}/reliability`.
* **Trust** (seed 003, QRP-0001/0002): `GET /items/{id}/rating?observer=` — the rating an observer should
  see, "4.5 ± 0.4 based on 3 trusted reviews", agree/split, "via Bob"; `GET /items/{id}/baseline` and the
  Schema.org `AggregateRating` at `GET /items/{id}/schema-org`.
* **Text** (seed 004): `GET /reviews/{id}/scores`. **Ranking**: `GET /items/{id}/love`, `GET /rankings`.
* **Writes** (`POST /reviews`, `/votes`, `/trust`, `/flags`; one event or a list) need an API key:
  `Authorization: Bearer <key>` from `truescore keys create`. `POST /fit` and `POST /score` start jobs.

Errors are JSON `{"detail": "...", "errors": [{"row", "field", "reason"}]}`.
"""

#: the Content-Security-Policy of every response: scripts, styles, images and requests from this origin only
#: (``data:`` images for Swagger UI's icons), no plugins, no framing, forms only to this origin.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Swagger UI sets style attributes on its elements, so /docs also allows inline styles (never inline scripts)
_CSP_DOCS = _CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

#: headers added to every response
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>TrueScore API - docs</title>
  <link rel="stylesheet" href="/docs-assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs-assets/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


class SecurityHeaders:
    """ASGI middleware: add :data:`SECURITY_HEADERS` to every response (errors and static files too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        self._docs_headers = [(k, _CSP_DOCS.encode() if k == b"content-security-policy" else v)
                              for k, v in self._headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._docs_headers if scope.get("path", "").startswith("/docs") else self._headers

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


_TAGS = [
    {"name": "service", "description": "Health, topics, observers."},
    {"name": "items", "description": "Items and every engine's view of them."},
    {"name": "users", "description": "Rater reliability."},
    {"name": "reviews", "description": "Review scores and review writes."},
    {"name": "events", "description": "Votes, trust statements, flags."},
    {"name": "rankings", "description": "Products ranked by fused quality."},
    {"name": "jobs", "description": "Background fits and scoring."},
]


def create_app(store: str | Store | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the API over ``store`` (URL or open Store; default ``settings.database_url``).

    Parameters
    ----------
    store : str or Store, optional
        A URL is opened (and closed at shutdown); an open Store is used as is.
    settings : Settings, optional
        Defaults to the process settings (``truescore.get_settings()``).
    """
    settings = settings if settings is not None else get_settings()
    owned = not isinstance(store, Store)
    opened = store if isinstance(store, Store) else Store.open(store if store is not None else settings.database_url)
    state = ApiState(opened, settings)
    runner = JobRunner(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await anyio.to_thread.run_sync(_warm, state)
        except Exception as exc:
            app.state.startup_error = exc  # serve() reports it, instead of a bind problem
            raise
        state.start_refresher()
        try:
            yield
        finally:
            state.close()
            runner.shutdown()
            if owned:
                opened.close()

    app = FastAPI(title="TrueScore API", version=truescore.__version__, description=_DESCRIPTION,
                  openapi_tags=_TAGS, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.truescore = state
    app.state.jobs = runner
    #: why the start-up (the engine state built from the store) failed, if it did
    app.state.startup_error = None
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    # outermost: the key is checked and rate-limited from the headers, before the body is read (issue 10)
    app.add_middleware(Gate, store=opened, settings=settings, limiter=state.limiter)
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecurityHeaders)
    app.include_router(api_router)
    _mount_docs(app)
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI (5.x, for OpenAPI 3.1) at /docs from the files the fastapi-offline package ships (MIT;
    Swagger UI itself Apache-2.0): nothing is loaded from a CDN."""
    from importlib.resources import files

    assets = files("fastapi_offline") / "static"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_HTML)


def _warm(state: ApiState) -> None:
    """Build the cached engine state before the first request (the Rater and the item summaries), then
    move everything built so far out of the garbage collector's way: the long-lived engine state holds
    millions of objects, and scanning them in full collections was the main source of latency spikes."""
    _ = state.rater
    state.summaries()
    gc.collect()
    gc.freeze()


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory truescore.api.app:app_from_env`` (one app per worker process)."""
    return create_app(os.environ.get("TRUESCORE_DATABASE_URL"))


class ServeError(TruescoreError, RuntimeError):
    """The server could not start serving (address in use, store unusable at start-up)."""


def serve(url: str | None = None, host: str | None = None, port: int | None = None, *,
          settings: Settings | None = None, workers: int | None = None, log_level: str = "info",
          on_serving: Callable[[str], None] | None = None) -> None:
    """Serve the API and the web page with uvicorn until interrupted.

    Parameters
    ----------
    url : str, optional
        Store URL (default ``settings.database_url``).
    host, port : optional
        Default ``settings.api.host`` / ``settings.api.port`` (127.0.0.1:8000).
    workers : int, optional
        Server processes (default ``settings.api.workers`` = 1); each keeps its own cached state.
    on_serving : callable, optional
        Called with the address (``http://host:port``) once the server listens, and only then.

    Raises
    ------
    ServeError
        If the address cannot be bound or the app does not start (the store cannot be used).
    """
    import uvicorn

    settings = settings if settings is not None else get_settings()
    host = host or settings.api.host
    port = port or settings.api.port
    workers = workers or settings.api.workers
    address = f"http://{host}:{port}"
    common: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                              "access_log": settings.api.access_log, "http": settings.api.http}
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        if url is not None:
            os.environ["TRUESCORE_DATABASE_URL"] = url
        config = uvicorn.Config("truescore.api.app:app_from_env", factory=True, workers=workers, **common)
        try:
            sock = config.bind_socket()
        except SystemExit:
            raise ServeError(f"cannot serve at {address}: {_bind_problem(host, port)}") from None
        if on_serving is not None:
            on_serving(address)
        Multiprocess(config, sockets=[sock]).run()
        return
    app = create_app(url, settings)
    config = uvicorn.Config(app, **common)
    server = _server(config, None if on_serving is None else (lambda: on_serving(address)))
    try:
        server.run()
    except SystemExit:
        if app.state.startup_error is not None:  # uvicorn exits the same way when the app fails to start
            raise ServeError(_startup_problem(address, app.state.startup_error)) from None
        raise ServeError(f"cannot serve at {address}: {_bind_problem(host, port)}") from None
    if not server.started:
        if app.state.startup_error is not None:
            raise ServeError(_startup_problem(address, app.state.startup_error))
        raise ServeError(f"the server at {address} did not start: the app failed at start-up (see the log above)")


def _server(config: Any, on_serving: Callable[[], None] | None) -> Any:
    """A uvicorn server that calls ``on_serving`` once it listens (after the app's start-up)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_serving is not None:
                on_serving()

    return Server(config)


def _startup_problem(address: str, exc: BaseException) -> str:
    """One line saying why the app did not start: building its engine state from the store failed."""
    first = (str(exc).strip().splitlines() or [""])[0]
    hint = ("the store holds events the engines refuse, written before the write rules applied to them: fix or "
            "delete them; " if isinstance(exc, ValueError) else "")
    return (f"the server at {address} did not start: building the engine state from the store failed: "
            f"{type(exc).__name__}: {first} ({hint}traceback in the log above)")


def _bind_problem(host: str, port: int) -> str:
    """Why ``host:port`` cannot be bound now (probed again for a readable reason)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        return exc.strerror or str(exc)
    return "the address could not be bound (see the log above)"

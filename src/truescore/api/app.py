"""The FastAPI application: :func:`create_app` builds it over a store, :func:`serve` runs it with uvicorn.

``create_app(store, settings)`` opens the store (a URL, or an open :class:`~truescore.store.Store`),
keeps one :class:`~truescore.api.state.ApiState` per process (the trust engine's Rater and the item
summaries, warmed at startup), mounts the per-resource routers, the error handlers, the body-size
limit, optional CORS, and the web page at ``/`` (static files from ``truescore/web``).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import truescore
from truescore.api.errors import BodyLimit, install_error_handlers
from truescore.api.jobs import JobRunner
from truescore.api.limits import Gate
from truescore.api.routes import api_router
from truescore.api.state import ApiState
from truescore.config import Settings, get_settings
from truescore.store import Store

__all__ = ["WEB_DIR", "app_from_env", "create_app", "serve"]

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
        await anyio.to_thread.run_sync(_warm, state)
        state.start_refresher()
        try:
            yield
        finally:
            state.close()
            runner.shutdown()
            if owned:
                opened.close()

    app = FastAPI(title="TrueScore API", version=truescore.__version__, description=_DESCRIPTION,
                  openapi_tags=_TAGS, lifespan=lifespan)
    app.state.truescore = state
    app.state.jobs = runner
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    # outermost: the key is checked and rate-limited from the headers, before the body is read (issue 10)
    app.add_middleware(Gate, store=opened, settings=settings, limiter=state.limiter)
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.include_router(api_router)
    if WEB_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    return app


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


def serve(url: str | None = None, host: str | None = None, port: int | None = None, *,
          settings: Settings | None = None, workers: int | None = None, log_level: str = "info") -> None:
    """Serve the API and the web page with uvicorn until interrupted.

    Parameters
    ----------
    url : str, optional
        Store URL (default ``settings.database_url``).
    host, port : optional
        Default ``settings.api.host`` / ``settings.api.port`` (127.0.0.1:8000).
    workers : int, optional
        Server processes (default ``settings.api.workers`` = 1); each keeps its own cached state.
    """
    import uvicorn

    settings = settings if settings is not None else get_settings()
    host = host or settings.api.host
    port = port or settings.api.port
    workers = workers or settings.api.workers
    if workers > 1:
        if url is not None:
            os.environ["TRUESCORE_DATABASE_URL"] = url
        uvicorn.run("truescore.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=settings.api.access_log, http=settings.api.http)
    else:
        uvicorn.run(create_app(url, settings), host=host, port=port, log_level=log_level,
                    access_log=settings.api.access_log, http=settings.api.http)

"""Error answers: every 4xx carries a readable ``detail``; bad bodies also list ``errors`` by row and field.

- request validation (FastAPI/pydantic) -> 422 with ``errors: [{row, field, reason}]``, the rows being
  1-based elements of a posted batch (1 for a single object), like the importer's row numbers;
- :class:`BadRows` (the importer refused rows) -> 422 in the same shape;
- :class:`BodyLimit` middleware -> 413 for bodies larger than ``api.max_body_bytes``;
- :class:`~truescore.store.StoreError`, and any database error that means the store cannot be used now
  (unreachable, connection lost, read-only, locked, full: :func:`truescore.store.errors.unavailable_reason`)
  -> 503 with a one-line reason, never the SQL;
- anything else -> logged with its traceback and answered 500 with a generic message: a last resort,
  not a substitute for validation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from truescore.api.schemas import ErrorPublic, RowErrorPublic
from truescore.errors import TruescoreError
from truescore.store import StoreError
from truescore.store.errors import unavailable_reason

__all__ = ["ERROR_RESPONSES", "BadRows", "BodyLimit", "error_responses", "install_error_handlers"]

log = logging.getLogger("truescore.api")


class BadRows(TruescoreError):
    """Rows of a posted body failed validation; answered 422."""

    def __init__(self, errors: Sequence[RowErrorPublic], detail: str) -> None:
        super().__init__(detail)
        self.errors = list(errors)
        self.detail = detail


_TEXT = {400: "Body is not valid JSON text.", 401: "No API key.", 403: "API key unknown or revoked.",
         404: "Not found.",
         409: "Conflict: an event id re-posted with other content, or the engine a job needs is not in this build.",
         413: "Body or batch too large.", 422: "Invalid parameters or body (rows and fields named).",
         429: "Over the API key's rate limit or daily quota (see Retry-After).",
         503: "The database cannot be used."}


def error_responses(*codes: int, json_content: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries (body :class:`ErrorPublic`) for ``codes``.

    ``json_content=True`` states the media type explicitly, for routes whose success answers are not
    ``application/json`` (errors always are).
    """
    if json_content:
        ref = {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}
        return {code: {"description": _TEXT.get(code, "Error."), "content": {"application/json": ref}}
                for code in codes}
    return {code: {"model": ErrorPublic, "description": _TEXT.get(code, "Error.")} for code in codes}


#: every read endpoint can answer these
ERROR_RESPONSES = error_responses(401, 403, 404, 422, 429, 503)


def _union_branch(loc: Sequence[Any]) -> tuple[str | None, list[Any]]:
    """Split pydantic's union tag off a body location: ('body', 'list[X]', 3, 'rating') -> ('list', [3, 'rating'])."""
    rest = list(loc[1:]) if loc and loc[0] == "body" else list(loc)
    if rest and isinstance(rest[0], str) and (rest[0].startswith("list[") or rest[0][:1].isupper()):
        return ("list" if rest[0].startswith("list[") else "object"), rest[1:]
    return None, rest


def validation_rows(exc: RequestValidationError) -> list[RowErrorPublic]:
    """Pydantic errors as (row, field, reason), keeping only the union branch matching the body's shape."""
    body = getattr(exc, "body", None)
    shape = "list" if isinstance(body, list) else "object"
    rows: list[RowErrorPublic] = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        where = loc[0] if loc else "body"
        branch, rest = _union_branch(loc)
        if where == "body" and branch is not None and branch != shape:
            continue
        row: int | None = None
        if where == "body":
            if rest and isinstance(rest[0], int):
                row = rest[0] + 1
                rest = rest[1:]
            elif shape == "object":
                row = 1
        name = ".".join(str(p) for p in rest if not (isinstance(p, str) and p.startswith("function-"))) or where
        if where != "body":
            name = ".".join(str(p) for p in loc[1:]) or where
            name = f"{where} parameter {name}"
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "value_error":  # a domain rule's own words, as the importer and the library say them
            msg = msg.removeprefix("Value error, ")
        key = (row, name, msg)
        if key not in seen:
            seen.add(key)
            rows.append(RowErrorPublic(row=row, field=name, reason=msg))
    if not rows:
        rows.append(RowErrorPublic(row=None, field="body", reason="the request body is not valid"))
    return rows


def _summary(rows: Sequence[RowErrorPublic]) -> str:
    shown = "; ".join(
        f"row {r.row}, field {r.field}: {r.reason}" if r.row is not None else f"{r.field}: {r.reason}"
        for r in rows[:5]
    )
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    return f"invalid request: {shown}{more}"


def _error(code: int, detail: str, errors: Sequence[RowErrorPublic] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorPublic(detail=detail, errors=list(errors) if errors is not None else None).model_dump()
    if body["errors"] is None:
        del body["errors"]
    return JSONResponse(body, status_code=code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers described in the module docstring."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        rows = validation_rows(exc)
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, _summary(rows), rows)

    @app.exception_handler(BadRows)
    async def _bad_rows(request: Request, exc: BadRows) -> JSONResponse:
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.detail, exc.errors)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, f"the store cannot be used: {unavailable_reason(exc)}",
                      headers={"Retry-After": "5"})

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        reason = unavailable_reason(exc)
        if reason is None:
            log.exception("database error on %s %s", request.method, request.url.path)
            return _error(status.HTTP_500_INTERNAL_SERVER_ERROR,
                          f"internal error ({exc.__class__.__name__}); it was logged on the server")
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, reason)
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, f"the store cannot be used: {reason}",
                      headers={"Retry-After": "5"})

    # SQLAlchemy's errors, and the drivers' own (the bulk writers use the driver's cursor directly)
    for db_error in _driver_errors():
        app.add_exception_handler(db_error, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(status.HTTP_500_INTERNAL_SERVER_ERROR,
                      f"internal error ({exc.__class__.__name__}); it was logged on the server")


def _driver_errors() -> list[type[Exception]]:
    import sqlite3

    errors: list[type[Exception]] = [DBAPIError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return errors
    return [*errors, psycopg.Error]


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than ``limit`` bytes with 413, by Content-Length
    up front and by counting streamed bytes otherwise."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(send, declared)
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(received, self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge as exc:
            if not started:
                await self._refuse(send, exc.size)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps({"detail": _too_large(size, self.limit)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI re-raises HTTPExceptions from body reading, so the
    client gets the 413 from the exception middleware (or from :class:`BodyLimit` if it escapes)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(413, _too_large(size, limit))
        self.size = size


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size} bytes or more exceeds the limit of {limit} bytes (api.max_body_bytes)"

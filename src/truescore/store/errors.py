"""Why the database cannot be used, in one line: for the API's 503 answers and the CLI's error line.

A database that is unreachable (connection refused or lost, server shutting down), read-only (a SQLite
file opened read-only, a PostgreSQL transaction in read-only mode), locked past its timeout or full is
an *operational* failure: the request was fine, the store is not. :func:`unavailable_reason` tells those
apart from programming errors (which stay 500 / a traceback in the log) and reduces the driver's message
to its first line, without the SQL statement SQLAlchemy appends.
"""

from __future__ import annotations

from truescore.errors import TruescoreError

__all__ = ["StoreError", "unavailable_reason"]

class StoreError(TruescoreError, RuntimeError):
    """The store cannot be opened or used (bad URL, unreachable server, unknown table)."""


#: SQLSTATE classes and codes of PostgreSQL that mean "the store cannot be used now"
_PG_UNAVAILABLE = ("08", "53", "57", "25006", "42P01")  # 42P01: a table is gone (database dropped)
_MAX_REASON = 300


def unavailable_reason(exc: BaseException) -> str | None:
    """One line saying why the store cannot be used, if ``exc`` is such a failure; else None."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, StoreError):
        return _first_line(str(exc))
    if isinstance(exc, DBAPIError):
        orig: BaseException | None = exc.orig
        operational = isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
    else:  # the bulk writers use the driver's cursor directly: its own exception classes
        orig = exc
        operational = _driver_operational(exc)
        if not operational and not hasattr(exc, "sqlstate"):
            return None
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if not (operational or (sqlstate and sqlstate.startswith(_PG_UNAVAILABLE))):
        return None
    return _first_line(str(orig) if orig is not None else str(exc)) or exc.__class__.__name__


def _driver_operational(exc: BaseException) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError | sqlite3.InterfaceError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."

"""What the command lines share: the consoles, the one-line error, opening a store, a progress bar, a table.

Used by :mod:`truescore.cli` and :mod:`truescore.spark.cli` (which the first registers), so neither
imports the other.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from truescore.errors import MissingResultError, StaleResultError, TruescoreError

if TYPE_CHECKING:
    from truescore.store import Store

__all__ = ["CliError", "console", "err_console", "format_value", "open_store", "progress_bar",
           "require_existing_sqlite", "run_app", "table"]

# piped output (logs, CI, `make demo | tee`) gets room for the result tables
console = Console(width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True)


class CliError(TruescoreError):
    """An error to show as one line, with exit code 1."""


def open_store(db: str | None, *, create: bool = False) -> Store:
    """The store at ``db``; a SQLite file that does not exist is refused unless ``create`` (a mistyped
    ``--db`` would otherwise leave a new, empty store behind and report on nothing)."""
    from truescore.store import Store

    if not create:
        require_existing_sqlite(db, hint="check --db, or create the store with `truescore import` or "
                                          "`truescore synth`")
    return Store.open(db)


def require_existing_sqlite(db: str | None, hint: str = "check --db, or give --create to start a new, empty "
                                                          "store there") -> None:
    """Refuse a SQLite file that does not exist (a mistyped --db would serve a new, empty store)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from truescore.config import get_settings

    url = db if db is not None else get_settings().database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # Store.open names the bad URL
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:") \
            or parsed.database.startswith("file:"):
        return
    if not Path(parsed.database).is_file():
        raise CliError(f"no store at {parsed.database}: {hint}")


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar that appears only once the work has taken more than a second."""
    started = time.perf_counter()
    state: dict[str, Any] = {"progress": None, "task": None}

    def update(done: int, total: int | None) -> None:
        if state["progress"] is None:
            if time.perf_counter() - started < 1.0:
                return
            prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err_console, transient=True)
            prog.start()
            state["progress"], state["task"] = prog, prog.add_task(description, total=total)
        state["progress"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if state["progress"] is not None:
            state["progress"].stop()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if col in (columns[0],) else "right")
    for row in rows:
        table.add_row(*[format_value(v) for v in row])
    return table


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


_ONE_LINE_ERRORS: tuple[type[BaseException], ...] = (CliError, ValueError, FileNotFoundError, PermissionError,
                                                     MissingResultError, StaleResultError)


def run_app(app: typer.Typer, argv: list[str] | None = None) -> None:
    """Run a typer app as a console entry point: expected errors become one readable line and exit code 1
    (``MissingResultError`` and ``StaleResultError`` among them: they name the command to run)."""
    from sqlalchemy.exc import DBAPIError

    from truescore.store import StoreError

    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except _ONE_LINE_ERRORS as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except StoreError as exc:  # the driver's message can run over several lines: keep the first
        from truescore.store.errors import unavailable_reason

        err_console.print(f"error: {unavailable_reason(exc)}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except DBAPIError as exc:  # the database refused: one line, never the SQL statement
        from truescore.store.errors import unavailable_reason

        reason = unavailable_reason(exc)
        line = f"the store cannot be used: {reason}" if reason else \
            f"database error: {str(exc.orig).strip().splitlines()[0] if exc.orig else exc.__class__.__name__}"
        err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except Exception as exc:  # click usage errors and anything unexpected
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        from truescore.store.errors import unavailable_reason

        reason = unavailable_reason(exc)  # the driver's own exception (bulk writes use its cursor)
        if reason is not None:
            err_console.print(f"error: the store cannot be used: {reason}", markup=False, highlight=False)
            sys.exit(1)
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""  # a Java or driver trace is many lines: keep the first
        err_console.print(f"error: {exc.__class__.__name__}: {first}", markup=False, highlight=False)
        sys.exit(1)

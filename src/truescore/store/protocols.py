"""What the write rules and the importer need of a store: a typed port, so that they sit above
:class:`~truescore.store.Store` (whose ``add_reviews`` calls them) without importing it back.

:class:`~truescore.store.Store` has every method here; mypy checks that structurally wherever a ``Store`` is
passed as :class:`EventTables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import Connection

__all__ = ["EventTables"]


class EventTables(Protocol):
    """The event tables of a store, as the write rules (:mod:`.write_rules`) and the importer (:mod:`.ingest`)
    read and write them."""

    dialect: str

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def bulk_load(self, table: str = "reviews") -> AbstractContextManager[None]: ...

    def insert_columns(self, table: str, columns: dict[str, list[Any]], conn: Connection | None = None) -> int: ...

    def insert_rows(self, table: str, rows: list[dict[str, Any]], conn: Connection | None = None) -> int: ...

    def has_rows(self, table: str) -> bool: ...

    def existing_ids(self, table: str, ids: Sequence[str]) -> set[str]: ...

    def rows_by_key(self, table: str, keys: Sequence[Any]) -> dict[Any, dict[str, Any]]: ...

    def current_reviews(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]: ...



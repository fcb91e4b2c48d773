"""The event store: the only code of truescore that speaks SQL.

``Store.open(url)`` serves both the embedded SQLite default (``sqlite:///truescore.db``, in WAL mode) and
PostgreSQL (``postgresql+psycopg://...``) through SQLAlchemy Core. Writes are batched and idempotent by
key (the same review added twice is stored once); reads hand the engines domain objects, pandas frames
or the compact :class:`~truescore.domain.RatingSnapshot` arrays with ratings normalised to [0, 1].
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError, SQLAlchemyError

from truescore.domain import (
    DEFAULT_TOPIC,
    Flag,
    FlagReason,
    Item,
    RatingSnapshot,
    Review,
    TrustEdge,
    TrustEdgeArrays,
    User,
    UserRole,
    Verdict,
    Vote,
    from_epoch,
    snapshot_from_frame,
    to_epoch,
)
from truescore.store import schema
from truescore.store.changes import DERIVED, bump_seq, current_seq
from truescore.store.errors import StoreError
from truescore.store.migrate import migrate_integrity_columns, migrate_service_tables

__all__ = ["DEFAULT_TOPIC", "Store", "StoreError"]


_CHUNK = 5000
#: above this many (user, item) pairs, :meth:`Store.current_reviews` joins a temporary table of them
_PAIRS_JOIN = 1000
_pairs_lookup = Table("_pairs_lookup", MetaData(), Column("user_id", String(256)), Column("item_id", String(256)),
                      prefixes=["TEMPORARY"])


def _epoch(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_epoch(value)
    return float(value)


def _chunks(rows: Iterable[dict[str, Any]], size: int = _CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _topic_clause(column: Any, topic: str | None) -> Any:
    """``column`` is ``topic`` or one of its descendants (``topic.*``)."""
    if topic is None:
        return None
    return or_(column == topic, column.like(topic.replace("%", r"\%").replace("_", r"\_") + ".%", escape="\\"))


class Store:
    """Event store over SQLite or PostgreSQL.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Use :meth:`open` rather than the constructor.

    Examples
    --------
    >>> store = Store.open("sqlite://")          # in memory
    >>> store.add_reviews([Review("r1", "lamp", "ann", 4.0)])
    1
    >>> store.reviews_of_item("lamp")[0].rating
    4.0

    :meth:`add_reviews` applies the write rules the importer and the HTTP API apply (docs/rules.md):

    >>> store.add_reviews([Review("r2", "lamp", "bob", 7.0)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    truescore.domain.RowsRefused: 1 of 1 reviews are invalid, nothing was written: row 1, field rating: 7 is ...
    >>> store.add_reviews([Review("r3", "lamp", "bob", 1.0, supersedes="r1")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    truescore.domain.RuleError: row 1, field supersedes: review 'r1' is not by 'bob' on item 'lamp': a review ...
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self._local = threading.local()
        #: what this process opened: the SQLite file's (device, inode) and the store's id (store_meta)
        self._file: str | None = None
        self._inode: tuple[int, int] | None = None
        self.store_id: str | None = None
        #: tables seen holding a row: :meth:`has_rows` only saves look-ups, so a table emptied since is
        #: still looked up (and found empty), which is correct, only not the shortcut
        self._seen_rows: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True) -> Store:
        """Open (and by default create) the store at ``url``.

        ``None`` takes ``settings.database_url`` (``TRUESCORE_DATABASE_URL``), else
        ``sqlite:///truescore.db``. ``postgresql://`` URLs use the psycopg 3 driver.
        """
        if url is None:
            from truescore.config import get_settings

            url = get_settings().database_url
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"invalid database URL {url!r}: {exc}") from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {backend!r} in {url!r}: use sqlite:/// or postgresql+psycopg://")
        kwargs: dict[str, Any] = {"future": True}
        if backend == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(parsed, **kwargs)
        if backend == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if create:
            try:
                schema.metadata.create_all(engine)
                migrate_service_tables(engine)
                store._ensure_indexes()
                migrate_integrity_columns(engine)
            except OperationalError as exc:
                raise StoreError(f"cannot open {parsed.render_as_string(hide_password=True)}: {exc.orig}") from None
        database = parsed.database if backend == "sqlite" else None
        if database and database != ":memory:" and not database.startswith("file:"):
            store._file = database
        store._remember_identity()
        return store

    # ------------------------------------------------------------------ identity (issue 20)
    def _remember_identity(self) -> None:
        """Note what was opened, so a store deleted or replaced under this process is noticed."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                st = os.stat(self._file)
                self._inode = (st.st_dev, st.st_ino)
        with contextlib.suppress(SQLAlchemyError), self.engine.connect() as conn:
            self.store_id = self._read_store_id(conn)

    @staticmethod
    def _read_store_id(conn: Connection) -> str | None:
        meta = schema.store_meta
        value = conn.execute(select(meta.c.value).where(meta.c.key == "store_id")).scalar()
        return None if value is None else str(value)

    def identity_problem(self, conn: Connection | None = None) -> str | None:
        """Why this store object no longer writes to the store it opened, or None: its SQLite file was
        deleted, moved or replaced (the open connection would write to an unlinked file: lost at restart),
        or the database was dropped (its tables are gone) or created anew (another store id)."""
        if self._file is not None and self._inode is not None:
            try:
                st = os.stat(self._file)
            except FileNotFoundError:
                return f"the store file {self._file} was deleted or moved while open: nothing can be written to it"
            except OSError as exc:
                return f"the store file {self._file} cannot be checked: {exc.strerror}"
            if (st.st_dev, st.st_ino) != self._inode:
                return f"the store file {self._file} was replaced by another file while open"
        if self.store_id is None:
            return None
        try:
            if conn is not None:
                found = self._read_store_id(conn)
            else:
                with self.engine.connect() as own:
                    found = self._read_store_id(own)
        except (ProgrammingError, OperationalError) as exc:
            if "no such table" not in str(exc) and getattr(getattr(exc, "orig", None), "sqlstate", None) != "42P01":
                raise  # unreachable, locked, ...: the caller's usual one-line 503
            return "the store's tables are gone: the database was dropped or emptied while open"
        if found != self.store_id:
            return "the database was replaced by another store while open (its store id changed)"
        return None

    def check_identity(self, conn: Connection | None = None) -> None:
        """Raise :class:`StoreError` (the API's 503) if :meth:`identity_problem` finds one."""
        problem = self.identity_problem(conn)
        if problem is not None:
            raise StoreError(problem)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_indexes(self) -> None:
        """Create any index of the schema that is missing (e.g. after an interrupted :meth:`bulk_load`)."""
        with self.engine.begin() as conn:
            for table in schema.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)

    @contextmanager
    def bulk_load(self, table: str = "reviews") -> Iterator[None]:
        """Load many rows into ``table`` faster: while the table is empty on entry, its secondary indexes
        are dropped for the load and rebuilt (one sort each) at the end. Otherwise a no-op. An interrupted
        load leaves the rows that were committed; the next :meth:`open` rebuilds the indexes."""
        tbl = self._table(table)
        with self.engine.connect() as conn:
            empty = conn.execute(select(tbl.c[next(iter(tbl.primary_key.columns)).name]).limit(1)).first() is None
        if not empty or not tbl.indexes:
            yield
            return
        with self.engine.begin() as conn:
            for index in tbl.indexes:
                index.drop(conn, checkfirst=True)
        try:
            yield
        finally:
            self._ensure_indexes()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction; pass the connection to the ``add_*`` methods to group writes.

        Transactions nest: inside an open ``transaction()`` of the same thread, another ``transaction()``
        (and every ``add_*`` call without ``conn``) joins the outer one, so a caller can make a whole
        import one transaction. When the outermost transaction wrote events, it increments the
        store-wide change sequence (table ``changes``) before it commits; :attr:`last_seq` is then the
        value it wrote, in this thread."""
        outer = getattr(self._local, "txn", None)
        if outer is not None:
            yield outer[0]
            return
        with self.engine.begin() as conn:
            self.check_identity(conn)  # never acknowledge a write to a store that is gone
            state = [conn, False]
            self._local.txn = state
            try:
                yield conn
                if state[1]:
                    self._local.last_seq = bump_seq(conn)
            finally:
                self._local.txn = None

    @property
    def last_seq(self) -> int | None:
        """The change sequence written by this thread's last committed transaction that wrote events."""
        return getattr(self._local, "last_seq", None)

    def mark_changed(self, conn: Connection) -> None:
        """Events were written or deleted on ``conn``: bump the change sequence (once, at commit when
        ``conn`` is this thread's open :meth:`transaction`, else now)."""
        outer = getattr(self._local, "txn", None)
        if outer is not None and outer[0] is conn:
            outer[1] = True
        else:
            bump_seq(conn)

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    # ------------------------------------------------------------------ low-level writes
    def _insert(self, table: Table) -> Any:
        return (sqlite_dialect if self.dialect == "sqlite" else pg_dialect).insert(table)

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
        """Insert ``rows``, replacing the non-key columns of keys already present."""
        if not rows:
            return 0
        cols = list(rows[0])
        self._bulk(conn, table, cols, [tuple(r[c] for c in cols) for r in rows], update=True)
        return len(rows)

    def _bulk(self, conn: Connection, table: Table, cols: list[str], values: list[tuple[Any, ...]],
              update: bool) -> int:
        """Bulk insert through the driver: ``executemany`` on SQLite, ``COPY`` into a temporary table and
        one ``INSERT ... SELECT`` on PostgreSQL. Conflicting keys are skipped (``update=False``) or have
        their other columns replaced (``update=True``). Returns the number of rows inserted or updated.

        The SQL is generated from the table's SQLAlchemy metadata; only column names known to the
        table are accepted.
        """
        unknown = [c for c in cols if c not in table.c]
        if unknown:
            raise StoreError(f"table {table.name} has no column(s) {', '.join(unknown)}")
        keys = [c.name for c in table.primary_key.columns]
        col_sql = ", ".join(cols)
        updates = [c for c in cols if c not in keys]
        # verdicts: a later one (by created_at; at the same time, the later row) replaces the earlier one
        newer = table.name == "verdicts"
        if update and updates:
            conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(
                f"{c} = excluded.{c}" for c in updates)
            if newer:
                conflict += (f" WHERE excluded.created_at > {table.name}.created_at OR (excluded.created_at = "
                             f"{table.name}.created_at AND excluded.verdict <> {table.name}.verdict)")
        else:
            conflict = "ON CONFLICT DO NOTHING"
        if table.name in schema.EVENT_TABLES:
            self.mark_changed(conn)
        dbapi: Any = conn.connection.driver_connection
        if self.dialect == "sqlite":
            cur = dbapi.cursor()
            before = dbapi.total_changes
            cur.executemany(
                f"INSERT INTO {table.name} ({col_sql}) VALUES ({', '.join('?' * len(cols))}) {conflict}", values)
            cur.close()
            return int(dbapi.total_changes - before)
        tmp = f"_load_{table.name}"
        with dbapi.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {table.name} INCLUDING DEFAULTS, "
                        "_seq bigserial) ON COMMIT DELETE ROWS")
            cur.execute(f"TRUNCATE {tmp}")
            with cur.copy(f"COPY {tmp} ({col_sql}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            # a batch may repeat a key: keep its first row, as SQLite's row-by-row insert does (verdicts: the
            # latest, as SQLite's row-by-row replacement of an earlier verdict by a later one does)
            key_sql = ", ".join(keys)
            order = "created_at DESC, _seq DESC" if newer else "_seq"
            cur.execute(f"INSERT INTO {table.name} ({col_sql}) SELECT DISTINCT ON ({key_sql}) {col_sql} "
                        f"FROM {tmp} ORDER BY {key_sql}, {order} {conflict}")
            return int(cur.rowcount)

    # ------------------------------------------------------------------ event writes
    def add_users(self, users: Iterable[User], conn: Connection | None = None) -> int:
        """Insert or update users (a later statement of a user's profile replaces the earlier one), validated
        as the importer validates a users file (ids, times, the display name's size, the role); see
        :meth:`_add_rows`."""
        rows = [
            {"id": u.id, "created_at": _epoch(u.created_at), "display_name": u.display_name, "role": str(u.role)}
            for u in users
        ]
        return self._add_rows("users", rows, conn)

    def add_items(self, items: Iterable[Item], conn: Connection | None = None) -> int:
        """Insert or update items (a placeholder made from a review is replaced by the real item), validated
        as the importer validates an items file (ids, the topic rule, the title's size, times)."""
        rows = [
            {"id": i.id, "topic": i.topic, "title": i.title, "created_at": _epoch(i.created_at)} for i in items
        ]
        return self._add_rows("items", rows, conn)

    def _add_rows(self, kind: str, rows: list[dict[str, Any]], conn: Connection | None) -> int:
        """The library's write of ``kind`` events: the importer's validation (the same rules and messages,
        docs/rules.md), then one transaction (``conn``'s, when given); see
        :func:`truescore.store.ingest.write_rows`.

        Raises
        ------
        truescore.domain.RowsRefused
            Rows break the rules (each named with its row, 1-based in the call, field and reason); nothing
            is written.
        """
        from truescore.store.ingest import write_rows

        return write_rows(self, kind, rows, conn=conn)

    def add_reviews(self, reviews: Iterable[Review], conn: Connection | None = None) -> int:
        """Insert reviews by the write rules of every door (docs/rules.md); unknown users and items get
        placeholder rows.

        Each review is validated as the importer validates a row (ids, a finite rating inside a bounded
        scale, times, text sizes from the process settings), then the event rules apply, as for an
        ``admin`` key of the HTTP API (:mod:`truescore.store.write_rules`): a review id already stored, or
        earlier in ``reviews``, with the same content is a no-op (not counted); with other content
        (``created_at`` included) it is refused; ``supersedes`` may name only the author's own review of
        the same item; a review later (by ``created_at``, then id) than its author's current review of
        the item replaces it and is stored with ``supersedes`` naming it.

        Parameters
        ----------
        reviews : iterable of Review
        conn : sqlalchemy.Connection, optional
            Write on this connection; default one transaction of its own (nothing of a refused call is
            written).

        Returns
        -------
        int
            Reviews inserted.

        Raises
        ------
        truescore.domain.RowsRefused
            Reviews break the validation rules; every problem is named with its row (1-based position in
            ``reviews``), field and reason, in the text the HTTP API answers with its 422.
        truescore.domain.ConflictError
            A review id is stored, or repeated, with other content.
        truescore.domain.RuleError
            A review supersedes another user's review, a review of another item or one that does not exist.
        """
        rows = [
            {
                "id": r.id,
                "item_id": r.item_id,
                "user_id": r.user_id,
                "rating": float(r.rating),
                "min_rating": float(r.min_rating),
                "max_rating": float(r.max_rating),
                "title": r.title,
                "text": r.text,
                "created_at": _epoch(r.created_at),
                "is_recommended": r.is_recommended,
                "is_incentivized": r.is_incentivized,
                "verified_purchase": r.verified_purchase,
                "photo_count": int(r.photo_count or 0),
                "supersedes": r.supersedes,
            }
            for r in reviews
        ]
        return self.add_review_rows(rows, conn=conn)

    def add_review_rows(self, rows: list[dict[str, Any]], conn: Connection | None = None) -> int:
        """:meth:`add_reviews` for row dicts (the columns of ``reviews``, times as epoch seconds, and
        optionally an item's ``topic`` and ``item_title``), with the same validation and rules; a row
        without ``created_at`` gets the time of the write (then not compared with a stored review's).
        See :func:`truescore.store.ingest.write_rows`."""
        return self._add_rows("reviews", rows, conn)

    def insert_columns(self, table: str, columns: dict[str, list[Any]], conn: Connection | None = None) -> int:
        """Insert already-validated, column-oriented rows (Python values, None for missing) into an event
        table: the importer's and the generator's path. Users and items are upserted; other events are
        idempotent by key. Reviews create placeholder users and items they refer to. Returns new rows."""
        tbl = self._table(table)
        names = list(columns)
        values = list(zip(*(columns[c] for c in names), strict=True))
        if not values:
            return 0
        with self._conn(conn) as c:
            if table == "reviews":
                first = pd.DataFrame({"u": columns["user_id"], "i": columns["item_id"], "t": columns["created_at"]})
                users = first.groupby("u", sort=False)["t"].min()
                items = first.groupby("i", sort=False)["t"].min()
                self._bulk(c, schema.users, ["id", "created_at", "role"],
                           [(u, float(t), "person") for u, t in users.items()], update=False)
                self._bulk(c, schema.items, ["id", "created_at", "topic"],
                           [(i, float(t), DEFAULT_TOPIC) for i, t in items.items()], update=False)
            return self._bulk(c, tbl, names, values, update=table in ("users", "items", "verdicts"))

    def add_votes(self, votes: Iterable[Vote], conn: Connection | None = None) -> int:
        """Insert helpful/unhelpful votes; one vote per (review, voter), the first one stored wins. Validated
        as the importer validates a votes file: ids, times, and the review must be stored (committed)."""
        rows = [
            {"review_id": v.review_id, "voter_id": v.voter_id, "helpful": v.helpful,
             "created_at": _epoch(v.created_at)}
            for v in votes
        ]
        return self._add_rows("votes", rows, conn)

    def add_trust(self, edges: Iterable[TrustEdge], conn: Connection | None = None) -> int:
        """Append trust statements; the latest statement per (truster, trustee, domain) is the current one.
        Validated as the importer validates a trust file: ids (no trust in oneself), the domain's topic rule,
        a level in 0..1, times."""
        rows = [
            {"truster_id": e.truster_id, "trustee_id": e.trustee_id, "domain": e.domain, "level": e.level,
             "created_at": _epoch(e.created_at), "valid_until": _epoch(e.valid_until)}
            for e in edges
        ]
        return self._add_rows("trust", rows, conn)

    def add_flags(self, flags: Iterable[Flag], conn: Connection | None = None) -> int:
        """Insert moderation flags; one per (review, flagger). Validated as the importer validates a flags
        file: ids, the reason, a severity in 0..10, times, and the review must be stored (committed)."""
        rows = [
            {"review_id": f.review_id, "flagger_id": f.flagger_id, "reason": str(f.reason),
             "severity": f.severity, "created_at": _epoch(f.created_at)}
            for f in flags
        ]
        return self._add_rows("flags", rows, conn)

    def add_verdicts(self, verdicts: Iterable[Verdict], conn: Connection | None = None) -> int:
        """Insert moderators' verdicts (issue 21 item 3): each on exactly one stored review (``review_id``) or
        stored account (``user_id``), ``fake`` or ``genuine``; a later verdict on the same review or account
        by the same moderator replaces the earlier one. Validated as the importer validates a verdicts file
        (the same rules and messages); returns the rows inserted or replaced."""
        rows = [
            {"review_id": v.review_id, "user_id": v.user_id, "verdict": str(v.verdict),
             "moderator_id": v.moderator_id, "created_at": _epoch(v.created_at)}
            for v in verdicts
        ]
        return self._add_rows("verdicts", rows, conn)

    def insert_rows(self, table: str, rows: list[dict[str, Any]], conn: Connection | None = None) -> int:
        """Insert already-validated row dicts into an event table; see :meth:`insert_columns`."""
        if not rows:
            return 0
        return self.insert_columns(table, {c: [r[c] for r in rows] for c in rows[0]}, conn=conn)

    def has_rows(self, table: str) -> bool:
        """Does ``table`` hold any row? (One indexed look-up: the write rules skip their look-ups in an
        empty table, e.g. the first import into a new store.) Once True, True for the life of the object:
        the answer only decides whether the write rules look rows up."""
        if table in self._seen_rows:
            return True
        tbl = self._table(table)
        key = next(iter(tbl.primary_key.columns))
        with self.engine.connect() as c:
            found = c.execute(select(key).limit(1)).first() is not None
        if found:
            self._seen_rows.add(table)
        return found

    def existing_ids(self, table: str, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` present as primary keys of ``users``, ``items`` or ``reviews``."""
        tbl = self._table(table)
        found: set[str] = set()
        with self.engine.connect() as c:
            for start in range(0, len(ids), 900):
                chunk = list(ids[start : start + 900])
                found.update(c.execute(select(tbl.c.id).where(tbl.c.id.in_(chunk))).scalars())
        return found

    def rows_by_key(self, table: str, keys: Sequence[Any]) -> dict[Any, dict[str, Any]]:
        """Stored rows of ``table`` by primary key (a value, or a tuple for composite keys) for ``keys``;
        the write path's look-up for idempotence and conflict checks."""
        tbl = self._table(table)
        cols = [c.name for c in tbl.primary_key.columns]
        out: dict[Any, dict[str, Any]] = {}
        keys = list(dict.fromkeys(keys))
        with self.engine.connect() as c:
            for start in range(0, len(keys), 400):
                chunk = keys[start : start + 400]
                if len(cols) == 1:
                    q = select(tbl).where(tbl.c[cols[0]].in_(chunk))
                else:
                    q = select(tbl).where(or_(*(and_(*(tbl.c[n] == v for n, v in zip(cols, k, strict=True)))
                                                for k in chunk)))
                for row in c.execute(q).mappings():
                    key = row[cols[0]] if len(cols) == 1 else tuple(row[n] for n in cols)
                    out[key] = dict(row)
        return out

    def current_reviews(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The current review (id, created_at) of each (user_id, item_id) pair that has one.

        Many pairs (a large import into a store that has reviews) are matched in one join with a temporary
        table of them, a few with one query per 300 pairs."""
        r = schema.reviews
        pairs = list(dict.fromkeys(pairs))
        out: dict[tuple[str, str], dict[str, Any]] = {}
        cols = (r.c.id, r.c.user_id, r.c.item_id, r.c.created_at)
        if len(pairs) > _PAIRS_JOIN:
            p = _pairs_lookup
            with self.engine.connect() as c:
                p.create(c, checkfirst=True)
                try:
                    c.execute(p.delete())
                    c.execute(insert(p), [{"user_id": u, "item_id": i} for u, i in pairs])
                    q = select(*cols).join(p, and_(p.c.user_id == r.c.user_id, p.c.item_id == r.c.item_id))
                    for row in c.execute(q.where(self._live_reviews())):
                        out[(row.user_id, row.item_id)] = {"id": row.id, "created_at": row.created_at}
                finally:
                    p.drop(c, checkfirst=True)
                    c.commit()
            return out
        with self.engine.connect() as c:
            for start in range(0, len(pairs), 300):
                chunk = pairs[start : start + 300]
                q = select(r.c.id, r.c.user_id, r.c.item_id, r.c.created_at).where(
                    or_(*(and_(r.c.user_id == u, r.c.item_id == i) for u, i in chunk)), self._live_reviews())
                for row in c.execute(q):
                    out[(row.user_id, row.item_id)] = {"id": row.id, "created_at": row.created_at}
        return out

    # ------------------------------------------------------------------ row -> domain
    @staticmethod
    def _review(row: Any) -> Review:
        return Review(
            id=row.id, item_id=row.item_id, user_id=row.user_id, rating=row.rating,
            created_at=from_epoch(row.created_at), min_rating=row.min_rating, max_rating=row.max_rating,
            title=row.title, text=row.text, is_recommended=row.is_recommended,
            is_incentivized=row.is_incentivized, verified_purchase=row.verified_purchase,
            photo_count=row.photo_count or 0, supersedes=row.supersedes,
        )

    @staticmethod
    def _vote(row: Any) -> Vote:
        return Vote(row.review_id, row.voter_id, bool(row.helpful), from_epoch(row.created_at))

    @staticmethod
    def _edge(row: Any) -> TrustEdge:
        return TrustEdge(
            row.truster_id, row.trustee_id, row.domain, row.level, from_epoch(row.created_at),
            None if row.valid_until is None or row.valid_until != row.valid_until else from_epoch(row.valid_until),
        )

    def _live_reviews(self) -> Any:
        """Current reviews: not superseded by another review, and the latest (by ``created_at``, then id)
        of their author on their item; one current rating per (user, item), the others are history."""
        r, newer, later = schema.reviews, schema.reviews.alias("newer"), schema.reviews.alias("later")
        superseded = select(newer.c.id).where(newer.c.supersedes == r.c.id).exists()
        replaced = select(later.c.id).where(
            later.c.user_id == r.c.user_id, later.c.item_id == r.c.item_id,
            or_(later.c.created_at > r.c.created_at, and_(later.c.created_at == r.c.created_at, later.c.id > r.c.id)),
        ).exists()
        return and_(~superseded, ~replaced)

    # ------------------------------------------------------------------ reads
    def get_user(self, user_id: str) -> User | None:
        with self.engine.connect() as c:
            row = c.execute(select(schema.users).where(schema.users.c.id == user_id)).first()
        if row is None:
            return None
        return User(row.id, from_epoch(row.created_at), row.display_name, UserRole(row.role))

    def get_item(self, item_id: str) -> Item | None:
        with self.engine.connect() as c:
            row = c.execute(select(schema.items).where(schema.items.c.id == item_id)).first()
        return None if row is None else Item(row.id, row.topic, row.title, from_epoch(row.created_at))

    def get_review(self, review_id: str) -> Review | None:
        with self.engine.connect() as c:
            row = c.execute(select(schema.reviews).where(schema.reviews.c.id == review_id)).first()
        return None if row is None else self._review(row)

    def reviews_of_item(self, item_id: str) -> list[Review]:
        """Current (not superseded) reviews of an item, oldest first."""
        r = schema.reviews
        q = select(r).where(r.c.item_id == item_id, self._live_reviews()).order_by(r.c.created_at, r.c.id)
        with self.engine.connect() as c:
            return [self._review(row) for row in c.execute(q)]

    def reviews_by_user(
        self, user_id: str, topic: str | None = None, since: datetime | float | None = None
    ) -> list[Review]:
        """A user's reviews, optionally only in ``topic`` (and its subtopics) and since a time."""
        r, i = schema.reviews, schema.items
        q = select(r).where(r.c.user_id == user_id, self._live_reviews())
        if topic is not None:
            q = q.join(i, i.c.id == r.c.item_id).where(_topic_clause(i.c.topic, topic))
        if since is not None:
            q = q.where(r.c.created_at >= _epoch(since))
        with self.engine.connect() as c:
            return [self._review(row) for row in c.execute(q.order_by(r.c.created_at))]

    def review_counts_in_topic(
        self, user_ids: Sequence[str], topic: str | None = None, since: datetime | float | None = None
    ) -> dict[str, int]:
        """Number of reviews by each of ``user_ids`` in ``topic`` (and subtopics) since a time."""
        r, i = schema.reviews, schema.items
        out = dict.fromkeys(user_ids, 0)
        with self.engine.connect() as c:
            for start in range(0, len(user_ids), 900):
                chunk = list(user_ids[start : start + 900])
                q = select(r.c.user_id, func.count()).where(r.c.user_id.in_(chunk), self._live_reviews())
                if topic is not None:
                    q = q.join(i, i.c.id == r.c.item_id).where(_topic_clause(i.c.topic, topic))
                if since is not None:
                    q = q.where(r.c.created_at >= _epoch(since))
                for uid, n in c.execute(q.group_by(r.c.user_id)):
                    out[uid] = int(n)
        return out

    def votes_on_reviews(self, review_ids: Sequence[str]) -> list[Vote]:
        v = schema.votes
        out: list[Vote] = []
        with self.engine.connect() as c:
            for start in range(0, len(review_ids), 900):
                chunk = list(review_ids[start : start + 900])
                out.extend(self._vote(row) for row in c.execute(select(v).where(v.c.review_id.in_(chunk))))
        return out

    def votes_on_user_reviews(self, user_id: str, topic: str | None = None) -> list[Vote]:
        """Votes cast on the reviews written by ``user_id`` (optionally in ``topic`` and subtopics)."""
        v, r, i = schema.votes, schema.reviews, schema.items
        q = select(v).join(r, r.c.id == v.c.review_id).where(r.c.user_id == user_id, self._live_reviews())
        if topic is not None:
            q = q.join(i, i.c.id == r.c.item_id).where(_topic_clause(i.c.topic, topic))
        with self.engine.connect() as c:
            return [self._vote(row) for row in c.execute(q)]

    def trust_frame(self, domain: str | None = None, at: datetime | float | None = None) -> pd.DataFrame:
        """Current trust edges: the latest statement per (truster, trustee, domain) as of ``at`` (now),
        without statements that expired (``valid_until <= at``) or withdrew trust (level 0)."""
        t = schema.trust
        now = time.time() if at is None else _epoch(at)
        q = select(t).where(t.c.created_at <= now)
        if domain is not None:
            q = q.where(t.c.domain == domain)
        with self.engine.connect() as c:
            df = pd.DataFrame(c.execute(q).mappings().all(), columns=[col.name for col in t.columns])
        if df.empty:
            return df
        df = df.sort_values("created_at", kind="stable")
        df = df.drop_duplicates(["truster_id", "trustee_id", "domain"], keep="last")
        live = (df["valid_until"].isna() | (df["valid_until"] > now)) & (df["level"] > 0)
        return df[live].reset_index(drop=True)

    def trust_edges(self, domain: str | None = None, at: datetime | float | None = None) -> list[TrustEdge]:
        """Current trust edges as domain objects; see :meth:`trust_frame`."""
        return [self._edge(row) for row in self.trust_frame(domain, at).itertuples(index=False)]

    def trust_edge_arrays(self, domain: str | None = None, at: datetime | float | None = None) -> TrustEdgeArrays:
        df = self.trust_frame(domain, at)
        if df.empty:
            empty = np.array([], dtype=object)
            return TrustEdgeArrays(empty, empty.copy(), empty.copy(), np.array([]), np.array([]))
        return TrustEdgeArrays(
            df["truster_id"].to_numpy(object), df["trustee_id"].to_numpy(object), df["domain"].to_numpy(object),
            df["level"].to_numpy(float), df["created_at"].to_numpy(float),
        )

    def flags_on_reviews(self, review_ids: Sequence[str]) -> list[Flag]:
        f = schema.flags
        out: list[Flag] = []
        with self.engine.connect() as c:
            for start in range(0, len(review_ids), 900):
                chunk = list(review_ids[start : start + 900])
                for row in c.execute(select(f).where(f.c.review_id.in_(chunk))):
                    out.append(Flag(row.review_id, row.flagger_id, FlagReason(row.reason), row.severity,
                                    from_epoch(row.created_at)))
        return out

    def _item_filter(self, topic: str | None, q: str | None) -> list[Any]:
        i = schema.items
        clauses = []
        if topic is not None:
            clauses.append(_topic_clause(i.c.topic, topic))
        if q:
            pattern = "%" + q.lower().replace("%", r"\%").replace("_", r"\_") + "%"
            clauses.append(or_(func.lower(i.c.title).like(pattern, escape="\\"),
                               func.lower(i.c.id).like(pattern, escape="\\")))
        return clauses

    def items(self, topic: str | None = None, q: str | None = None, limit: int = 50, offset: int = 0) -> list[Item]:
        """Items in ``topic`` (and subtopics) whose id or title contains ``q``, ordered by id."""
        i = schema.items
        query = select(i).where(and_(True, *self._item_filter(topic, q))).order_by(i.c.id)
        query = query.limit(limit).offset(offset)
        with self.engine.connect() as c:
            return [Item(row.id, row.topic, row.title, from_epoch(row.created_at)) for row in c.execute(query)]

    def count_items(self, topic: str | None = None, q: str | None = None) -> int:
        query = select(func.count()).select_from(schema.items).where(and_(True, *self._item_filter(topic, q)))
        with self.engine.connect() as c:
            return int(c.execute(query).scalar_one())

    def topics(self) -> list[tuple[str, int]]:
        """Every item topic with its number of items."""
        i = schema.items
        with self.engine.connect() as c:
            rows = c.execute(select(i.c.topic, func.count()).group_by(i.c.topic).order_by(i.c.topic))
            return [(t, int(n)) for t, n in rows]

    def users(self, role: UserRole | None = None) -> list[User]:
        u = schema.users
        q = select(u).order_by(u.c.id)
        if role is not None:
            q = q.where(u.c.role == str(role))
        with self.engine.connect() as c:
            return [User(row.id, from_epoch(row.created_at), row.display_name, UserRole(row.role))
                    for row in c.execute(q)]

    def counts(self) -> dict[str, int]:
        """Row count of every event and derived table."""
        out = {}
        with self.engine.connect() as c:
            for name in (*schema.EVENT_TABLES, *schema.DERIVED_KEYS):
                out[name] = int(c.execute(select(func.count()).select_from(self._table(name))).scalar_one())
        return out

    # ------------------------------------------------------------------ frames and snapshots
    def _frame(self, query: Any) -> pd.DataFrame:
        with self.engine.connect() as c:
            result = c.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def review_frame(self, topic: str | None = None, *, with_text: bool = True) -> pd.DataFrame:
        """Current reviews as a DataFrame (every review column plus the item's ``topic``)."""
        r, i = schema.reviews, schema.items
        cols = [c for c in r.columns if with_text or c.name not in ("text", "title")]
        q = select(*cols, i.c.topic).join(i, i.c.id == r.c.item_id).where(self._live_reviews())
        if topic is not None:
            q = q.where(_topic_clause(i.c.topic, topic))
        return self._frame(q.order_by(r.c.created_at, r.c.id))

    def vote_frame(self) -> pd.DataFrame:
        return self._frame(select(schema.votes))

    def flag_frame(self) -> pd.DataFrame:
        return self._frame(select(schema.flags))

    def verdict_frame(self) -> pd.DataFrame:
        """Every stored verdict: ``target`` (review | user), ``target_id``, ``moderator_id`` ("" for none),
        ``verdict`` (fake | genuine), ``created_at``."""
        return self._frame(select(schema.verdicts))

    def item_frame(self) -> pd.DataFrame:
        return self._frame(select(schema.items))

    def user_frame(self) -> pd.DataFrame:
        return self._frame(select(schema.users))

    def snapshot(self, topic: str | None = None) -> RatingSnapshot:
        """All current ratings (optionally of one topic and its subtopics) as compact arrays.

        Users and items get dense integer indices (first appearance order), ratings are normalised to
        [0, 1] with each review's own scale, and each item's display scale is the most common scale of
        its reviews.
        """
        r, i = schema.reviews, schema.items
        q = select(r.c.id, r.c.user_id, r.c.item_id, r.c.rating, r.c.min_rating, r.c.max_rating,
                   r.c.created_at, i.c.topic).join(i, i.c.id == r.c.item_id).where(self._live_reviews())
        if topic is not None:
            q = q.where(_topic_clause(i.c.topic, topic))
        df = self._frame(q.order_by(r.c.created_at, r.c.id))
        return snapshot_from_frame(df)

    # ------------------------------------------------------------------ derived tables
    def _table(self, name: str) -> Table:
        try:
            return schema.metadata.tables[name]
        except KeyError:
            raise StoreError(f"unknown table {name!r}; tables: {', '.join(sorted(schema.metadata.tables))}") from None

    def write_derived(self, table: str, records: Iterable[dict[str, Any]], model_version: str) -> int:
        """Replace the derived rows of ``records`` (by key), stamped with ``model_version`` and now."""
        if table not in schema.DERIVED_KEYS:
            raise StoreError(f"{table!r} is not a derived table; choose one of {', '.join(schema.DERIVED_KEYS)}")
        fitted_at = time.time()
        rows = []
        for rec in records:
            row = dict(rec)
            if isinstance(row.get("details"), dict | list):
                row["details"] = json.dumps(row["details"])
            row["model_version"] = model_version
            row["fitted_at"] = fitted_at
            rows.append(row)
        with self.engine.begin() as c:
            n = self._upsert(c, self._table(table), rows)
            bump_seq(c, DERIVED)
            return n

    def import_derived(self, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
        """Load derived rows computed elsewhere (e.g. a Spark run) in ONE transaction, keeping each row's
        own ``model_version`` and ``fitted_at``; rows replace those with the same key. Returns rows per table."""
        out: dict[str, int] = {}
        with self.engine.begin() as c:
            for name, df in frames.items():
                if name not in schema.DERIVED_KEYS:
                    raise StoreError(f"{name!r} is not a derived table; choose one of {', '.join(schema.DERIVED_KEYS)}")
                tbl = self._table(name)
                for col in ("model_version", "fitted_at", schema.DERIVED_KEYS[name]):
                    if col not in df.columns:
                        raise StoreError(f"{name}: column {col!r} is missing")
                clean = df.astype(object).where(df.notna(), None)
                rows = clean.to_dict(orient="records")
                if name == "rings":  # a run's rings replace the table, as truescore score does
                    c.execute(tbl.delete())
                out[name] = self._upsert(c, tbl, rows)
            bump_seq(c, DERIVED)
        return out

    def read_derived(self, table: str, key: str | None = None) -> list[dict[str, Any]]:
        """Derived rows of ``table``: the one with id ``key``, or all of them."""
        if table not in schema.DERIVED_KEYS:
            raise StoreError(f"{table!r} is not a derived table; choose one of {', '.join(schema.DERIVED_KEYS)}")
        tbl = self._table(table)
        q = select(tbl)
        if key is not None:
            q = q.where(tbl.c[schema.DERIVED_KEYS[table]] == key)
        with self.engine.connect() as c:
            return [dict(row) for row in c.execute(q).mappings()]

    # ------------------------------------------------------------------ runs of the jobs (staleness)
    def change_seq(self) -> int:
        """The store-wide change sequence: incremented by every committed transaction that wrote events."""
        return current_seq(self.engine)

    def derived_seq(self) -> int:
        """The derived-results sequence: incremented by every write of derived results or of a run record."""
        return current_seq(self.engine, DERIVED)

    def mark_derived_changed(self) -> None:
        """Derived results were written outside :meth:`write_derived` (e.g. the integrity columns)."""
        with self.engine.begin() as c:
            bump_seq(c, DERIVED)

    def record_run(self, job: str, model_version: str, *, seq: int, details: dict[str, Any] | None = None) -> None:
        """Remember that ``job`` (fit, text, integrity, rank) wrote its results with ``model_version`` from
        the events as of change sequence ``seq``; replaces the job's previous record."""
        row = {"job": job, "model_version": model_version, "seq": int(seq), "finished_at": time.time(),
               "details": json.dumps(details or {}, sort_keys=True)}
        with self.transaction() as c:
            self._upsert(c, schema.model_runs, [row])
            bump_seq(c, DERIVED)

    def last_run(self, job: str) -> dict[str, Any] | None:
        """The record of ``job``'s last run (``details`` decoded), or None if it never ran on this store."""
        tbl = schema.model_runs
        with self.engine.connect() as c:
            row = c.execute(select(tbl).where(tbl.c.job == job)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["details"] = json.loads(out["details"] or "{}")
        return out

    def has_text(self) -> bool:
        """Whether any current review has a non-blank text."""
        r = schema.reviews
        with self.engine.connect() as conn:
            q = select(r.c.id).where(self._live_reviews(), func.length(func.trim(r.c.text)) > 0).limit(1)
            return conn.execute(q).first() is not None

    def read_table(self, table: str) -> pd.DataFrame:
        """Any table (event or derived) as a DataFrame, for export."""
        return self._frame(select(self._table(table)))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache: bulk loads touch many B-tree pages
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()

"""The store-wide change sequence: what :class:`~truescore.store.Store` needs of the service layer, below
it so that the store and the service (keys, jobs, audit) do not import each other.

The change sequence is one row (``changes.id = 1``) whose ``seq`` every committed transaction that wrote
events increments; a reader that remembers the value it read knows whether the events changed since
(the API's refresh, and the jobs' staleness check of stored results). A second row (``changes.id = 2``,
:data:`DERIVED`) counts writes of derived results (a fit, scores, a ranking, run records), so a server
sees results another process (the CLI, a Spark import) wrote, within its refresh interval.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update

from truescore.store import schema

__all__ = ["DERIVED", "EVENTS", "bump_seq", "current_seq"]

#: the rows of the ``changes`` table: event writes, and derived-result writes
EVENTS = 1
DERIVED = 2

def bump_seq(conn: Connection, row: int = EVENTS) -> int:
    """Increment the change sequence ``row`` (:data:`EVENTS` or :data:`DERIVED`) on ``conn``; returns the new
    value (0 if the row is missing: a store from before the row, until its next open migrates it)."""
    c = schema.changes
    conn.execute(update(c).where(c.c.id == row).values(seq=c.c.seq + 1))
    return int(conn.execute(select(c.c.seq).where(c.c.id == row)).scalar() or 0)


def current_seq(engine: Engine, row: int = EVENTS) -> int:
    """The change sequence ``row`` now (0 for a store that never wrote one)."""
    c = schema.changes
    with engine.connect() as conn:
        value = conn.execute(select(c.c.seq).where(c.c.id == row)).scalar()
    return int(value or 0)

"""The store-wide change sequence: what :class:`~truescore.store.Store` needs of the service layer, below
it so that the store and the service (keys, jobs, audit) do not import each other.

The change sequence is one row (``changes.id = 1``) whose ``seq`` every committed transaction that wrote
events increments; a reader that remembers the value it read knows whether the events changed since
(the API's refresh, and the jobs' staleness check of stored results).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update

from truescore.store import schema

__all__ = ["bump_seq", "current_seq"]

def bump_seq(conn: Connection) -> int:
    """Increment the store-wide change sequence on ``conn``; returns the new value."""
    c = schema.changes
    conn.execute(update(c).where(c.c.id == 1).values(seq=c.c.seq + 1))
    return int(conn.execute(select(c.c.seq).where(c.c.id == 1)).scalar_one())


def current_seq(engine: Engine) -> int:
    """The change sequence now (0 for a store that never wrote an event)."""
    c = schema.changes
    with engine.connect() as conn:
        value = conn.execute(select(c.c.seq).where(c.c.id == 1)).scalar()
    return int(value or 0)

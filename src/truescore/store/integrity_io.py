"""Store side of the integrity engine: the columns and the table it writes (``review_scores.suspicion``,
``user_reliability.suspicion``, ``rings``) and the reads the integrity job and panel need. The columns'
migration for older stores is :func:`truescore.store.migrate.migrate_integrity_columns`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from truescore.store import schema
from truescore.store.store import Store

__all__ = ["read_rings", "replace_rings", "write_account_suspicion", "write_review_suspicion"]

_CHUNK = 50_000


def _executemany(store: Store, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    with store.engine.begin() as conn:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None, "a live connection has a driver connection"
        cur = dbapi.cursor()
        if store.dialect == "sqlite":
            cur.executemany(sql.replace("%s", "?"), rows)
        else:
            cur.executemany(sql, rows)
        cur.close()


def write_review_suspicion(store: Store, review_ids: Sequence[str] | np.ndarray, suspicion: np.ndarray,
                           reasons: Sequence[str], model_version: str, *, evidence: np.ndarray | None = None,
                           groups: Sequence[str | None] | None = None) -> int:
    """Set ``review_scores.suspicion`` (and reasons) of every review, with the fusion's ``integrity_evidence``
    and ``integrity_group`` when given; rows the text engine has not written are created with NULL text
    scores. Text scores already stored are kept."""
    now = time.time()
    total = 0
    # in key order: B-tree inserts and updates then touch each page once (several times faster on SQLite)
    order = sorted(range(len(review_ids)), key=lambda k: str(review_ids[k]))
    values = suspicion.tolist()
    ev = evidence.tolist() if evidence is not None else [None] * len(values)
    gr = list(groups) if groups is not None else [None] * len(values)
    for start in range(0, len(order), _CHUNK):
        rows = [(str(review_ids[k]), values[k], reasons[k] or None, ev[k], gr[k], model_version, now)
                for k in order[start:start + _CHUNK]]
        _executemany(store, "INSERT INTO review_scores (review_id, suspicion, suspicion_reasons, integrity_evidence, "
                     "integrity_group, model_version, fitted_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                     "ON CONFLICT (review_id) DO UPDATE SET suspicion = excluded.suspicion, "
                     "suspicion_reasons = excluded.suspicion_reasons, "
                     "integrity_evidence = excluded.integrity_evidence, integrity_group = excluded.integrity_group",
                     rows)
        total += len(rows)
    return total


def write_account_suspicion(store: Store, user_ids: Sequence[str] | np.ndarray, suspicion: np.ndarray,
                            reasons: Sequence[str]) -> int:
    """Set ``user_reliability.suspicion`` of every account that has a reliability row (after ``fit``)."""
    values = suspicion.tolist()
    rows = sorted(((values[k], reasons[k] or None, str(user_ids[k])) for k in range(len(user_ids))),
                  key=lambda row: row[2])
    for start in range(0, len(rows), _CHUNK):
        _executemany(store, "UPDATE user_reliability SET suspicion = %s, suspicion_reasons = %s WHERE user_id = %s",
                     rows[start:start + _CHUNK])
    return len(rows)


def replace_rings(store: Store, records: list[dict[str, Any]], model_version: str) -> int:
    """Replace the whole ``rings`` table with ``records`` (a refit may find different rings)."""
    now = time.time()
    rows = []
    for rec in records:
        row = dict(rec)
        for key in ("members", "targets", "evidence"):
            if not isinstance(row[key], str):
                row[key] = json.dumps(row[key])
        row["model_version"], row["fitted_at"] = model_version, now
        rows.append(row)
    with store.engine.begin() as conn:
        conn.execute(schema.rings.delete())
        if rows:
            conn.execute(schema.rings.insert(), rows)
    return len(rows)


def read_rings(store: Store) -> list[dict[str, Any]]:
    """Every stored ring, largest first, with members, targets and evidence decoded."""
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(schema.rings)).mappings()]
    for row in rows:
        for key in ("members", "targets", "evidence"):
            row[key] = json.loads(row[key])
    rows.sort(key=lambda r: (-r["n_members"] * r["n_targets"], r["ring_id"]))
    return rows


def item_review_suspicion(store: Store, item_id: str) -> list[dict[str, Any]]:
    """The current reviews of ``item_id`` (the store's one rule, :meth:`Store._live_reviews`) with their stored
    suspicion (None when not scored yet)."""
    r, s = schema.reviews, schema.review_scores
    q = (select(r.c.id, r.c.user_id, r.c.rating, r.c.min_rating, r.c.max_rating, r.c.created_at, s.c.suspicion,
                s.c.suspicion_reasons)
         .select_from(r.outerjoin(s, s.c.review_id == r.c.id)).where(r.c.item_id == item_id, store._live_reviews()))
    with store.engine.connect() as conn:
        return [dict(row) for row in conn.execute(q).mappings()]


def suspicion_frame(store: Store) -> Any:
    """``review_id, suspicion, suspicion_reasons`` of every scored review, as a DataFrame."""
    import pandas as pd

    s = schema.review_scores
    with store.engine.connect() as conn:
        res = conn.execute(select(s.c.review_id, s.c.suspicion, s.c.suspicion_reasons))
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def review_columns(store: Store, *, with_text: bool) -> Any:
    """The current reviews (as ``Store.review_frame``: every column but the text ones unless asked, plus the
    item's ``topic``) read through the driver's cursor: tuples straight into pandas, several times
    faster than row objects for a million reviews."""
    import pandas as pd

    r, i = schema.reviews, schema.items
    names = ["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at"]
    if with_text:
        names.append("text")
    q = (select(*(r.c[n] for n in names), i.c.topic).join(i, i.c.id == r.c.item_id)
         .where(store._live_reviews()).order_by(r.c.created_at, r.c.id))
    with store.engine.connect() as conn:
        result = conn.execute(q)
        rows = result.cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=[*names, "topic"])


def table_columns(store: Store, table: str, columns: list[str]) -> Any:
    """Some columns of a table, read through the driver's cursor (see :func:`review_columns`)."""
    import pandas as pd

    tbl = schema.metadata.tables[table]
    with store.engine.connect() as conn:
        rows = conn.execute(select(*(tbl.c[c] for c in columns))).cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)

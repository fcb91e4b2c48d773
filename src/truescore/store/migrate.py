"""Schema upgrades of stores created by earlier versions, run by :meth:`Store.open` (idempotent).

Below the store and its service modules, so that none of them imports another for its migration:
:func:`migrate_service_tables` (API keys, jobs, the change sequence) and :func:`migrate_integrity_columns`
(the integrity engine's columns of the derived tables).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, inspect, select, text

from truescore.store import schema

__all__ = ["migrate_integrity_columns", "migrate_service_tables"]

#: columns added to the service tables after their first release: table -> column -> SQL type
_ADDED_COLUMNS = {
    "api_keys": {"user_id": "VARCHAR(256)", "scopes": "VARCHAR(64)", "rate_limit": "INTEGER",
                 "daily_quota": "INTEGER"},
    "jobs": {"owner": "VARCHAR(128)"},
}


def migrate_service_tables(engine: Engine) -> None:
    """Bring a store created by an earlier version up to date: add the service columns that are missing
    (old keys keep NULL user and scopes, which means admin), the change-sequence rows and the store's id
    (idempotent)."""
    insp = inspect(engine)
    with engine.begin() as conn:
        for table, columns in _ADDED_COLUMNS.items():
            have = {c["name"] for c in insp.get_columns(table)}
            for name, sql_type in columns.items():
                if name not in have:
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}"))
        for row in (1, 2):  # event writes, derived-result writes (truescore.store.changes)
            if conn.execute(select(schema.changes.c.seq).where(schema.changes.c.id == row)).first() is None:
                conn.execute(schema.changes.insert().values(id=row, seq=0))
        meta = schema.store_meta
        if conn.execute(select(meta.c.value).where(meta.c.key == "store_id")).first() is None:
            conn.execute(meta.insert().values(key="store_id", value=uuid.uuid4().hex))


_NEW_COLUMNS = {"review_scores": ("suspicion", "suspicion_reasons", "integrity_evidence", "integrity_group"),
                "user_reliability": ("suspicion", "suspicion_reasons")}
#: SQL type of each added column on PostgreSQL and on SQLite
_TYPES = {"suspicion": ("DOUBLE PRECISION", "REAL"), "suspicion_reasons": ("TEXT", "TEXT"),
          "integrity_evidence": ("DOUBLE PRECISION", "REAL"), "integrity_group": ("VARCHAR(64)", "TEXT")}


def migrate_integrity_columns(engine: Engine) -> None:
    """Since issue 11: add the ``suspicion`` / ``suspicion_reasons`` columns to ``review_scores`` and
    ``user_reliability`` and let the text scores of ``review_scores`` be NULL (a review without text, or
    scored without the text models, still gets its suspicion). On PostgreSQL that is ``ALTER TABLE``;
    SQLite cannot drop a NOT NULL constraint, so there ``review_scores`` is rebuilt in one transaction,
    rows kept. Since issue 19: ``integrity_evidence`` and ``integrity_group``, the evidence and group the
    fusion reads (so the ranking uses what ``truescore score`` stored)."""
    insp = inspect(engine)
    tables = set(insp.get_table_names())
    with engine.begin() as conn:
        for table, cols in _NEW_COLUMNS.items():
            if table not in tables:
                continue
            have = {c["name"] for c in insp.get_columns(table)}
            for col in cols:
                if col not in have:
                    kind = _TYPES[col][0 if engine.dialect.name == "postgresql" else 1]
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {col} {kind}"))
        if "review_scores" not in tables:
            return
        strict = [c["name"] for c in inspect(conn).get_columns("review_scores")
                  if c["name"] in ("quality", "fake_probability", "sentiment") and not c["nullable"]]
        if not strict:
            return
        if engine.dialect.name == "postgresql":
            for col in strict:
                conn.execute(text(f"ALTER TABLE review_scores ALTER COLUMN {col} DROP NOT NULL"))
            return
        column_list = ", ".join(c.name for c in schema.review_scores.columns)
        conn.execute(text("ALTER TABLE review_scores RENAME TO _review_scores_old"))
        schema.review_scores.create(conn)
        conn.execute(text(f"INSERT INTO review_scores ({column_list}) SELECT {column_list} FROM _review_scores_old"))
        conn.execute(text("DROP TABLE _review_scores_old"))

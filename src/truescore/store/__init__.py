"""The event store (SQLite or PostgreSQL) and its importers; the only package that speaks SQL."""

from truescore.store.store import DEFAULT_TOPIC, Store, StoreError, snapshot_from_frame

__all__ = ["DEFAULT_TOPIC", "Store", "StoreError", "snapshot_from_frame"]

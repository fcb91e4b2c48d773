"""Results one job reads from another: present, and computed from the events as they are now.

Every job that writes results records its run in the store (``model_runs``: model version, the change
sequence of the events it read, details). A job that reads those results calls :func:`require_fresh`:
no record is a :class:`~truescore.errors.MissingResultError`, a record older than the store's last event
write a :class:`~truescore.errors.StaleResultError`; both say which command makes them current, so a
stale input is said, never silently recomputed.
"""

from __future__ import annotations

from typing import Any

from truescore.errors import MissingResultError, StaleResultError
from truescore.store import Store

__all__ = ["freshness", "require_fresh"]


def freshness(store: Store, job: str) -> tuple[dict[str, Any] | None, int]:
    """``(run, behind)``: the job's last run record (None if it never ran) and how many event writes
    (change-sequence steps) the store has had since it read its inputs (0 when current)."""
    run = store.last_run(job)
    if run is None:
        return None, 0
    return run, max(store.change_seq() - int(run["seq"]), 0)


def require_fresh(store: Store, job: str, what: str, command: str) -> dict[str, Any]:
    """The last run record of ``job``, which must exist and be current (see the module docstring)."""
    run, behind = freshness(store, job)
    if run is None:
        raise MissingResultError(f"the store has no {what}: run `{command}` first, or rank with --refit")
    if behind:
        raise StaleResultError(f"the stored {what} ({run['model_version']}) predates {behind:,} later write"
                               f"{'s' if behind != 1 else ''} of events: run `{command}` again, or rank with --refit")
    return run

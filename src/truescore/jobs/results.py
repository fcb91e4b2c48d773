"""Results one job reads from another: present, and computed from the events as they are now.

Every job that writes results records its run in the store (``model_runs``: model version, the change
sequence of the events it read, details). A job that reads those results calls :func:`require_fresh`:
no record is a :class:`~truescore.errors.MissingResultError`, a record older than the store's last event
write a :class:`~truescore.errors.StaleResultError`; both say which command makes them current, so a
stale input is said, never silently recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from truescore.errors import MissingResultError, StaleResultError
from truescore.store import Store

__all__ = ["RunRecord", "freshness", "require_fresh"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A job's last run as the store recorded it (``model_runs``).

    Attributes
    ----------
    job : str
        The job's name (``fit``, ``text``, ``integrity``, ``rank``).
    model_version : str
        The version its results were written with (e.g. ``vb-1``).
    seq : int
        The store's change sequence when the job read its inputs.
    finished_at : float
        When it finished (epoch seconds).
    details : dict
        What the job recorded about its run (JSON: the fit's hyperparameters, the integrity groups' names, ...).
    """

    job: str
    model_version: str
    seq: int
    finished_at: float
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        """The record of a ``model_runs`` row (:meth:`truescore.store.Store.last_run`)."""
        return cls(job=str(row["job"]), model_version=str(row["model_version"]), seq=int(row["seq"]),
                   finished_at=float(row["finished_at"]), details=dict(row.get("details") or {}))


def freshness(store: Store, job: str) -> tuple[RunRecord | None, int]:
    """``(run, behind)``: the job's last run record (None if it never ran) and how many event writes
    (change-sequence steps) the store has had since it read its inputs (0 when current)."""
    row = store.last_run(job)
    if row is None:
        return None, 0
    run = RunRecord.from_row(row)
    return run, max(store.change_seq() - run.seq, 0)


def require_fresh(store: Store, job: str, what: str, command: str) -> RunRecord:
    """The last run record of ``job``, which must exist and be current (see the module docstring)."""
    run, behind = freshness(store, job)
    if run is None:
        raise MissingResultError(f"the store has no {what}: run `{command}` first, or rank with --refit")
    if behind:
        raise StaleResultError(f"the stored {what} ({run.model_version}) predates {behind:,} later write"
                               f"{'s' if behind != 1 else ''} of events: run `{command}` again, or rank with --refit")
    return run

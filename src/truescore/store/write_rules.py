"""The event rules that need the store, applied by every door that writes events.

The rules themselves are decided in :mod:`truescore.domain` (:func:`~truescore.domain.repost_problem`,
:func:`~truescore.domain.supersede_problem`, :func:`~truescore.domain.item_change_problem`,
:func:`~truescore.domain.later_review`); this module looks up the stored events they compare with and
applies them to the rows of one write, in this order:

1. **conflicts** (:func:`check_conflicts`): an event key already stored, or earlier in the same write,
   with other content is refused (:class:`~truescore.domain.ConflictError`); the same content again is
   a no-op (the row is not new);
2. **supersedes**: a review may supersede (hide) only its author's own review of the same item, stored
   or earlier in the write (:class:`~truescore.domain.RuleError` on field ``supersedes``);
3. **item fields** (only for a writer that is not an administrator, ``admin=False``: the HTTP API's
   non-admin keys): an existing item's title and topic are not changed
   (:class:`~truescore.domain.ForbiddenChange`);
4. **one current review per (user, item)**: a review later (by ``created_at``, then id) than its
   author's current review of the item replaces it and is stored with ``supersedes`` naming it; an
   earlier one is history.

:meth:`Store.add_reviews <truescore.store.Store.add_reviews>`, the importer
(:func:`truescore.store.ingest.import_frame` / ``import_file``) and the HTTP API (``api/writes.py``) call
:func:`plan_reviews`; the API calls :func:`check_conflicts` for votes and flags. Rows are given as
columns (a mapping of field name to a sequence with one value per row, in the order of the write), with
validated values (clean ids, epoch seconds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from truescore.domain import (
    EVENT_CONTENT,
    EVENT_KEYS,
    ConflictError,
    ForbiddenChange,
    RuleError,
    item_change_problem,
    later_review,
    repost_problem,
    supersede_problem,
)
from truescore.store.protocols import EventTables

__all__ = ["ConflictCheck", "ReviewPlan", "check_conflicts", "plan_reviews"]

Columns = Mapping[str, Sequence[Any]]


@dataclass(slots=True)
class ConflictCheck:
    """What :func:`check_conflicts` found.

    Attributes
    ----------
    new : list of bool
        Per row: not stored yet (and not a repeat of an earlier row of the write).
    errors : list of ConflictError
        One per refused row, in row order.
    refused : list of int
        0-based indices of the refused rows.
    """

    new: list[bool]
    errors: list[ConflictError] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ReviewPlan:
    """The review rules applied to the rows of one write (:func:`plan_reviews`).

    Attributes
    ----------
    n_rows : int
        Rows in the write.
    new : list of bool
        Per row: not stored yet (an identical re-post is not new, and writing it is a no-op).
    supersedes : list
        Per row, the ``supersedes`` to store: the one given, or the author's current review of the item
        that a later review replaces.
    current : int array
        0-based indices (ascending) of the new rows that become their author's current review of their item.
    fresh : int array
        Those of ``current`` that are the author's first review of the item.
    errors : list of RuleError
        Every refused row's problem, in the order of the rules (conflicts, supersedes, item fields),
        then of the rows: a door that stops at the first problem raises ``errors[0]``.
    refused : list of int
        0-based indices of the refused rows (each has one error).
    """

    n_rows: int
    new: list[bool]
    supersedes: list[str | None]
    current: npt.NDArray[np.int64]
    fresh: npt.NDArray[np.int64]
    errors: list[RuleError]
    refused: list[int]


def _numbers(n: int, row_numbers: Sequence[int] | None) -> Sequence[int]:
    if row_numbers is None:
        return range(1, n + 1)
    if len(row_numbers) != n:
        raise ValueError(f"{len(row_numbers)} row numbers for {n} rows")
    return row_numbers


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (messages show ``4.0``, not ``np.float64(4.0)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _row(columns: Columns, k: int, fields: Sequence[str]) -> dict[str, Any]:
    return {f: _plain(columns[f][k]) for f in fields if f in columns}


def _keys(kind: str, columns: Columns, n: int) -> list[Any]:
    cols = EVENT_KEYS[kind]
    if len(cols) == 1:
        return list(columns[cols[0]])
    return list(zip(*(list(columns[c]) for c in cols), strict=True)) if n else []


def _repeated(keys: Sequence[Any]) -> np.ndarray:
    """Per key: does it occur more than once in ``keys``? (``DataFrame.duplicated(keep=False)`` without a
    frame: a write of one event pays microseconds, not a frame's construction.)"""
    counts = Counter(keys)
    return np.fromiter((counts[k] > 1 for k in keys), dtype=bool, count=len(keys))


def check_conflicts(store: EventTables, kind: str, columns: Columns, explicit_time: Sequence[bool], *,
                    row_numbers: Sequence[int] | None = None) -> ConflictCheck:
    """Which rows of a write of ``kind`` events are new, and which conflict with a stored event.

    Parameters
    ----------
    store : Store
        Where the stored events are looked up.
    kind : str
        ``"reviews"``, ``"votes"``, ``"flags"`` (``"trust"`` statements are appended: never a conflict).
    columns : mapping of str to sequence
        The rows' fields, one value per row; the key fields are required, content fields are compared
        when present.
    explicit_time : sequence of bool
        Per row: the writer gave ``created_at`` (it is then compared too; a time filled in by the write is
        not).
    row_numbers : sequence of int, optional
        1-based row numbers for the messages (default ``1 .. n``).

    Returns
    -------
    ConflictCheck
        An event key stored, or earlier in the write, with the same content is not new (a no-op); with
        other content its row is refused (:func:`truescore.domain.repost_problem`).
    """
    n = len(explicit_time)
    numbers = _numbers(n, row_numbers)
    new = [True] * n
    if kind not in EVENT_CONTENT or n == 0:
        return ConflictCheck(new)
    keys = _keys(kind, columns, n)
    fields = [*dict.fromkeys((*EVENT_KEYS[kind], *EVENT_CONTENT[kind], "created_at", "supersedes"))]
    stored = store.rows_by_key(kind, keys) if store.has_rows(kind) else {}
    repeated = _repeated(keys)
    if stored:
        repeated = repeated | np.fromiter((key in stored for key in keys), dtype=bool, count=n)
    check = ConflictCheck(new)
    earlier: dict[Any, tuple[int, dict[str, Any]]] = {}
    for k in np.flatnonzero(repeated).tolist():  # the other rows are the only ones with their key, not stored
        key = keys[k]
        row = _row(columns, k, fields)
        before, earlier_row = stored.get(key), None
        if before is None and key in earlier:
            earlier_row, before = earlier[key]
        if before is None:
            earlier[key] = (int(numbers[k]), row)
            continue
        problem = repost_problem(kind, row, before, compare_time=bool(explicit_time[k]), earlier_row=earlier_row)
        if problem is not None:
            check.errors.append(ConflictError(problem[0], problem[1], int(numbers[k])))
            check.refused.append(k)
        new[k] = False
    return check


def plan_reviews(store: EventTables, columns: Columns, explicit_time: Sequence[bool], *, admin: bool = True,
                 row_numbers: Sequence[int] | None = None) -> ReviewPlan:
    """Apply the review rules (module docstring) to the rows of one write of reviews.

    Parameters
    ----------
    store : Store
        Where stored reviews, users and items are looked up.
    columns : mapping of str to sequence
        ``id``, ``user_id``, ``item_id``, ``created_at`` (epoch seconds) and optionally ``supersedes``, the
        content fields (:data:`truescore.domain.EVENT_CONTENT`), ``topic`` and ``item_title``.
    explicit_time : sequence of bool
        Per row: the writer gave ``created_at``.
    admin : bool
        The writer is an administrator (the library, the importer, an ``admin`` API key): it may change an
        existing item's title and topic. Default True.
    row_numbers : sequence of int, optional
        1-based row numbers for the messages (default ``1 .. n``).

    Returns
    -------
    ReviewPlan
        Nothing is written; a refused row's problem is in ``errors`` and the row is left out of the
        later rules (a review that supersedes a refused row of the same write finds no such review).
    """
    n = len(explicit_time)
    numbers = _numbers(n, row_numbers)
    conflicts = check_conflicts(store, "reviews", columns, explicit_time, row_numbers=numbers)
    new = conflicts.new
    errors: list[RuleError] = list(conflicts.errors)
    out = set(conflicts.refused)
    ids = list(columns["id"])
    users = list(columns["user_id"])
    items = list(columns["item_id"])
    sup: list[str | None] = list(columns["supersedes"]) if "supersedes" in columns else [None] * n

    # supersedes: the author's own review of the same item, stored or earlier in this write
    asks = {k for k in range(n) if new[k] and k not in out and sup[k]}
    if asks:
        targets = {sup[k] for k in asks}
        stored = store.rows_by_key("reviews", list(targets))
        in_write: dict[str, int] = {}
        for k in (k for k in range(n) if k in asks or ids[k] in targets):
            if k in out:
                continue
            if new[k] and sup[k]:
                t = str(sup[k])
                j = in_write.get(t)
                target = stored.get(t) or (None if j is None else {"user_id": users[j], "item_id": items[j]})
                reason = supersede_problem(t, users[k], items[k], target)
                if reason is not None:
                    errors.append(RuleError("supersedes", reason, int(numbers[k])))
                    out.add(k)
                    continue
            if ids[k] in targets:
                in_write.setdefault(ids[k], k)

    # an existing item's title and topic: set at creation, changed only by an administrator
    if not admin:
        topics = list(columns["topic"]) if "topic" in columns else [None] * n
        titles = list(columns["item_title"]) if "item_title" in columns else [None] * n
        named = [k for k in range(n) if new[k] and k not in out and (topics[k] or titles[k])]
        known = store.rows_by_key("items", [items[k] for k in named]) if named else {}
        for k in named:
            item = known.get(items[k])
            problem = None if item is None else item_change_problem(
                items[k], {"topic": topics[k], "item_title": titles[k]}, item)
            if problem is not None:
                errors.append(ForbiddenChange(problem[0], problem[1], int(numbers[k])))
                out.add(k)

    # one current review per (user, item): a later review replaces the current one
    ok = np.array(new, dtype=bool)
    ok[sorted(out)] = False
    live = np.flatnonzero(ok)
    live_users = np.array(users, dtype=object)[live].tolist()
    live_items = np.array(items, dtype=object)[live].tolist()
    current_of: dict[tuple[str, str], tuple[float, str]] = {}
    if live_users and store.has_rows("reviews"):
        known_users = store.existing_ids("users", list(dict.fromkeys(live_users)))
        pairs = list(dict.fromkeys(p for p in zip(live_users, live_items, strict=True) if p[0] in known_users))
        stored_current = store.current_reviews(pairs) if pairs else {}
        current_of = {p: (float(r["created_at"]), r["id"]) for p, r in stored_current.items()}
    # the rows that need the rule in order: a pair repeated in the write, or with a stored current review;
    # every other row is its author's only review of the item: current, and a first rating
    in_order = _repeated(list(zip(live_users, live_items, strict=True)))
    if current_of:
        in_order = in_order | np.fromiter((p in current_of for p in zip(live_users, live_items, strict=True)),
                                          dtype=bool, count=len(live))
    chosen = np.zeros(n, dtype=bool)
    first = np.zeros(n, dtype=bool)
    chosen[live[~in_order]] = True
    first[live[~in_order]] = True
    created_at = columns["created_at"]
    for k in live[in_order].tolist():
        pair = (users[k], items[k])
        when = float(created_at[k])
        cur = current_of.get(pair)
        if cur is not None and not later_review(when, ids[k], cur[0], cur[1]):
            continue  # earlier than the current review: history only
        if cur is not None:
            if not sup[k]:
                sup[k] = cur[1]
        else:
            first[k] = True
        current_of[pair] = (when, ids[k])
        chosen[k] = True
    refused = sorted(out)
    return ReviewPlan(n_rows=n, new=new, supersedes=sup, current=np.flatnonzero(chosen),
                      fresh=np.flatnonzero(first), errors=errors, refused=refused)

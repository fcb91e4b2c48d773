"""The write path shared by ``POST /reviews``, ``/votes``, ``/trust`` and ``/flags``.

A body (one event or a list) is checked against its schema by FastAPI; then, in this order:

1. **authorisation** (:mod:`truescore.api.authz`): the key may write events by its own user only,
   unless it is ``admin`` (403 naming the rule);
2. **event rules** (:func:`plan_reviews`, :func:`_check_conflicts`): an event id already stored with
   other content is 409 (the same content is an idempotent no-op); ``supersedes`` may name only the
   author's own review of the same item (422); an item's title and topic are set when it is created
   and changed only by ``admin`` (403); a later review by a user of an item replaces the earlier one
   (it is stored with ``supersedes`` pointing at it, so every reader counts it once);
3. **quota**: the new events are charged to the key's daily quota (429 with Retry-After);
4. **one transaction**: the store's importer (:func:`truescore.store.ingest.import_frame`) validates
   every row as a file import does and writes them, together with one audit row, in a single
   transaction, or nothing (its row errors become a 422);
5. the rows are applied to the process's cached engine state under the same lock, so the next read
   sees them. The answer is sent only after the commit, so a write answered 2xx is durable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
from fastapi import HTTPException
from pydantic import BaseModel

from truescore.api.authz import AUTHOR_FIELD, Forbidden, authorize_events
from truescore.api.errors import BadRows
from truescore.api.limits import RateLimited
from truescore.api.schemas import RowErrorPublic, WriteResult
from truescore.api.state import ApiState
from truescore.store import Store, service
from truescore.store.ingest import ImportValidationError, import_frame
from truescore.store.service import Principal

__all__ = ["plan_reviews", "write_events"]

#: fields compared when an event id is posted again (created_at only when the client sent it)
_CONTENT = {
    "reviews": ("item_id", "user_id", "rating", "min_rating", "max_rating", "title", "text", "is_recommended",
                "is_incentivized", "verified_purchase", "photo_count"),
    "votes": ("helpful",),
    "flags": ("reason", "severity"),
}
_KEYS = {"reviews": ("id",), "votes": ("review_id", "voter_id"), "flags": ("review_id", "flagger_id"),
         "trust": ("truster_id", "trustee_id", "domain", "created_at")}


class Conflict(HTTPException):
    """409: an event id already stored with other content."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=409, detail=f"conflict: {detail}")


def _unprocessable(row: int, field: str, reason: str) -> BadRows:
    return BadRows([RowErrorPublic(row=row, field=field, reason=reason)], f"row {row}, field {field}: {reason}")


def _same(field: str, a: Any, b: Any) -> bool:
    """Is a posted value the stored one? Numbers to rounding, flag reasons in any case, None == ''."""
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    if field == "reason" and isinstance(a, str) and isinstance(b, str):
        return a.upper() == b.upper()
    if a is None or b is None:
        return a in (None, "") and b in (None, "")
    return bool(a == b)


def _key(kind: str, row: dict[str, Any]) -> Any:
    cols = _KEYS[kind]
    return row[cols[0]] if len(cols) == 1 else tuple(row[c] for c in cols)


def _check_conflicts(store: Store, kind: str, rows: list[dict[str, Any]], explicit_time: list[bool]
                     ) -> list[bool]:
    """409 for an id stored (or repeated in the batch) with other content; returns which rows are new."""
    if kind not in _CONTENT:
        return [True] * len(rows)
    stored = store.rows_by_key(kind, [_key(kind, r) for r in rows])
    seen: dict[Any, dict[str, Any]] = {}
    new = []
    for n, row in enumerate(rows, start=1):
        key = _key(kind, row)
        before = stored.get(key) or seen.get(key)
        if before is None:
            seen[key] = row
            new.append(True)
            continue
        fields = list(_CONTENT[kind])
        if explicit_time[n - 1]:
            fields.append("created_at")
        for f in fields:
            if f in row and not _same(f, row[f], before.get(f)):
                raise Conflict(f"row {n}: {kind[:-1]} {key!r} is already stored with another {f} "
                               f"({before.get(f)!r}, not {row[f]!r}); an event is immutable: post a new id "
                               "(a later review of the same item replaces the earlier one)")
        if kind == "reviews" and row.get("supersedes") and row["supersedes"] != before.get("supersedes"):
            raise Conflict(f"row {n}: review {key!r} is already stored with supersedes {before.get('supersedes')!r}")
        new.append(False)
    return new


def plan_reviews(store: Store, rows: list[dict[str, Any]], new: list[bool], principal: Principal
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply the review rules to the new rows of a batch (in place) and return ``(current, fresh)``: the
    rows that become their author's current review of their item (for the cached trust engine), and
    those among them that are a first rating (for the online reliability model)."""
    # supersedes: the author's own review of the same item, stored or earlier in this batch
    targets = {r["supersedes"] for r, is_new in zip(rows, new, strict=True) if is_new and r.get("supersedes")}
    stored = store.rows_by_key("reviews", list(targets)) if targets else {}
    in_batch: dict[str, dict[str, Any]] = {}
    for n, (row, is_new) in enumerate(zip(rows, new, strict=True), start=1):
        sup = row.get("supersedes")
        if is_new and sup:
            target = stored.get(sup) or in_batch.get(sup)
            if target is None:
                raise _unprocessable(n, "supersedes", f"review {sup!r} does not exist")
            if target["user_id"] != row["user_id"] or target["item_id"] != row["item_id"]:
                raise _unprocessable(n, "supersedes", f"review {sup!r} is not by {row['user_id']!r} on item "
                                     f"{row['item_id']!r}: a review may supersede only its author's own review of "
                                     "the same item")
        in_batch[row["id"]] = row
    # item title and topic: set at creation, changed only by admin
    if not principal.is_admin:
        named = [r for r, is_new in zip(rows, new, strict=True) if is_new and (r.get("topic") or r.get("item_title"))]
        items = store.rows_by_key("items", [r["item_id"] for r in named]) if named else {}
        for row in named:
            item = items.get(row["item_id"])
            if item is None:
                continue
            for f, col in (("topic", "topic"), ("item_title", "title")):
                if row.get(f) and row[f] != item[col]:
                    raise Forbidden(f"item {row['item_id']!r} exists: its {col} is set when it is created and "
                                    "changed only by an 'admin' key")
    # one current rating per (user, item): a later review replaces the current one
    pairs = [(r["user_id"], r["item_id"]) for r, is_new in zip(rows, new, strict=True) if is_new]
    current = store.current_reviews(pairs) if pairs else {}
    chosen: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    for row, is_new in zip(rows, new, strict=True):
        if not is_new:
            continue
        pair = (row["user_id"], row["item_id"])
        cur = current.get(pair)
        if cur is not None and (float(row["created_at"]), row["id"]) < (float(cur["created_at"]), cur["id"]):
            continue  # older than the current review: history only
        if cur is not None:
            if not row.get("supersedes"):
                row["supersedes"] = cur["id"]
        else:
            fresh.append(row)
        current[pair] = {"id": row["id"], "created_at": row["created_at"]}
        chosen.append(row)
    return chosen, fresh


def write_events(state: ApiState, kind: str, body: BaseModel | Sequence[BaseModel],
                 principal: Principal | None = None) -> WriteResult:
    """Authorise, check, charge and store ``body`` (events of ``kind``), then update the cached state;
    see the module docstring. ``principal=None`` (library callers) writes as an admin would."""
    events = [body] if isinstance(body, BaseModel) else list(body)
    limit = state.settings.api.max_batch
    if len(events) > limit:
        raise HTTPException(status_code=413, detail=f"batch of {len(events)} {kind} exceeds the limit of {limit} "
                                                    "events per request (api.max_batch)")
    if not events:
        return WriteResult(kind=kind, received=0, inserted=0)  # type: ignore[arg-type]
    principal = principal or Principal("library", "library", None, frozenset({"admin"}))
    now = time.time()
    rows: list[dict[str, Any]] = []
    explicit_time: list[bool] = []
    for event in events:
        row = event.model_dump(mode="json")
        explicit_time.append(row.get("created_at") is not None)
        if row.get("created_at") is None:
            row["created_at"] = now
        rows.append(row)
    authorize_events(principal, kind, rows, state.settings, state.user_roles)
    store = state.store
    with state.write_lock:
        new = _check_conflicts(store, kind, rows, explicit_time)
        if kind == "reviews":
            apply_rows, fresh = plan_reviews(store, rows, new, principal)
        else:
            apply_rows, fresh = [r for r, is_new in zip(rows, new, strict=True) if is_new], []
        n_new = sum(new)
        try:
            state.limiter.charge_events(principal, n_new)
        except RateLimited as exc:
            raise HTTPException(status_code=429, detail=exc.detail,
                                headers={"Retry-After": str(exc.retry_after)}) from None
        frame = pd.DataFrame(rows)
        try:
            with store.transaction() as conn:
                report = import_frame(store, frame, kind, source=f"POST /{kind}", settings=state.settings)
                if report.rows_inserted:
                    refs = [_key(kind, r) for r, is_new in zip(rows, new, strict=True) if is_new]
                    service.record_audit(conn, key_id=principal.key_id if principal.key_id != "library" else None,
                                         user_id=principal.user_id, action="write", kind=kind, refs=refs, at=now)
        except ImportValidationError as exc:
            state.limiter.refund_events(principal, n_new)
            errors = [RowErrorPublic(row=e.row, field=e.field, reason=e.reason) for e in exc.errors]
            bad = len({e.row for e in exc.errors})
            shown = "; ".join(str(e) for e in exc.errors[:5])
            more = f" (and {len(exc.errors) - 5} more)" if len(exc.errors) > 5 else ""
            raise BadRows(errors, f"{bad} of {len(rows)} {kind} are invalid, nothing was written: {shown}{more}") \
                from None
        except BaseException:
            state.limiter.refund_events(principal, n_new)
            raise
        seq = store.last_seq if report.rows_inserted else None
        state.apply(kind, apply_rows, report.rows_inserted, fresh, seq=seq)
    return WriteResult(kind=kind, received=len(rows), inserted=report.rows_inserted)  # type: ignore[arg-type]


def author_of(kind: str, row: dict[str, Any]) -> Any:
    return row.get(AUTHOR_FIELD[kind])

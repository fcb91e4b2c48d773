"""The write path shared by ``POST /reviews``, ``/votes``, ``/trust``, ``/flags`` and ``/verdicts``.

A body (one event or a list) is checked against its schema by FastAPI; then, in this order:

1. **authorisation** (:mod:`truescore.api.authz`): the key may write events by its own user only,
   unless it is ``admin`` (403 naming the rule);
2. **event rules**: the library's (:func:`truescore.store.write_rules.plan_reviews` and
   :func:`~truescore.store.write_rules.check_conflicts`, the rules ``Store.add_reviews`` and the
   importer apply too); their first problem is answered here: an event id already stored with other
   content is 409 (the same content is an idempotent no-op); ``supersedes`` may name only the author's
   own review of the same item (422); an item's title and topic are set when it is created and changed
   only by ``admin`` (403); a later review by a user of an item replaces the earlier one (it is stored
   with ``supersedes`` pointing at it, so every reader counts it once);
3. **quota**: the new events are charged to the key's daily quota (429 with Retry-After);
4. **one transaction**: the store's importer (:func:`truescore.store.ingest.import_frame`) validates
   every row as a file import does and writes them, together with one audit row, in a single
   transaction, or nothing (its row errors become a 422);
5. the rows are applied to the process's cached engine state under the same lock, so the next read
   sees them. The answer is sent only after the commit, so a write answered 2xx is durable.
"""

from __future__ import annotations

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
from truescore.domain import ConflictError, ForbiddenChange, RuleError, event_key, refusal_message
from truescore.store import Store, service
from truescore.store.ingest import ImportValidationError, import_frame
from truescore.store.service import Principal
from truescore.store.write_rules import ReviewPlan, check_conflicts, plan_reviews

__all__ = ["write_events"]


class Conflict(HTTPException):
    """409: an event id already stored with other content."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=409, detail=f"conflict: {detail}")


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names = dict.fromkeys(f for row in rows for f in row)
    return {f: [row.get(f) for row in rows] for f in names}


def _refuse(error: RuleError) -> Exception:
    """The HTTP answer to the first problem the event rules found (the messages of every earlier release)."""
    if isinstance(error, ConflictError):
        return Conflict(f"row {error.row}: {error.reason}")
    if isinstance(error, ForbiddenChange):
        return Forbidden(error.reason)
    row = int(error.row or 1)
    return BadRows([RowErrorPublic(row=row, field=error.field, reason=error.reason)], str(error))


def _apply_rules(store: Store, kind: str, rows: list[dict[str, Any]], explicit_time: list[bool],
                 principal: Principal) -> tuple[list[bool], ReviewPlan | None]:
    """The library's event rules (:mod:`truescore.store.write_rules`) on a posted batch: which rows are
    new, and for reviews the plan (``supersedes`` set in the rows, in place). The first problem is raised
    as its HTTP answer: 409 conflict, 403 an item's title or topic, 422 a supersedes."""
    if kind == "reviews":
        plan = plan_reviews(store, _columns(rows), explicit_time, admin=principal.is_admin)
        if plan.errors:
            raise _refuse(plan.errors[0])
        for row, sup in zip(rows, plan.supersedes, strict=True):
            row["supersedes"] = sup
        return plan.new, plan
    if kind == "verdicts":  # a later verdict replaces the earlier one: never a conflict, every row is written
        return [True] * len(rows), None
    check = check_conflicts(store, kind, _columns(rows), explicit_time)
    if check.errors:
        raise _refuse(check.errors[0])
    return check.new, None


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
        if kind == "verdicts" and row.get("moderator_id") is None and principal.user_id is not None:
            row["moderator_id"] = principal.user_id  # the key's user is the moderator
        rows.append(row)
    authorize_events(principal, kind, rows, state.settings, state.user_roles)
    store = state.store
    with state.write_lock:
        new, plan = _apply_rules(store, kind, rows, explicit_time, principal)
        if plan is not None:
            apply_rows, fresh = [rows[k] for k in plan.current.tolist()], [rows[k] for k in plan.fresh.tolist()]
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
                report = import_frame(store, frame, kind, source=f"POST /{kind}", settings=state.settings,
                                      review_plan=plan)
                if report.rows_inserted:
                    refs = [_audit_key(kind, r) for r, is_new in zip(rows, new, strict=True) if is_new]
                    service.record_audit(conn, key_id=principal.key_id if principal.key_id != "library" else None,
                                         user_id=principal.user_id, action="write", kind=kind, refs=refs, at=now)
        except ImportValidationError as exc:
            state.limiter.refund_events(principal, n_new)
            errors = [RowErrorPublic(row=e.row, field=e.field, reason=e.reason) for e in exc.errors]
            found = [RuleError(e.field, e.reason, e.row) for e in exc.errors]
            raise BadRows(errors, refusal_message(kind, len(rows), found)) from None
        except BaseException:
            state.limiter.refund_events(principal, n_new)
            raise
        seq = store.last_seq if report.rows_inserted else None
        state.apply(kind, apply_rows, report.rows_inserted, fresh, seq=seq)
    return WriteResult(kind=kind, received=len(rows), inserted=report.rows_inserted)  # type: ignore[arg-type]


def _audit_key(kind: str, row: dict[str, Any]) -> Any:
    """The event key an audit row names (a verdict: its stored key, target, target id and moderator)."""
    if kind == "verdicts":
        target = "review" if row.get("review_id") is not None else "user"
        return event_key(kind, {"target": target, "target_id": row.get(f"{target}_id"),
                                "moderator_id": row.get("moderator_id") or ""})
    return event_key(kind, row)


def author_of(kind: str, row: dict[str, Any]) -> Any:
    return row.get(AUTHOR_FIELD[kind])

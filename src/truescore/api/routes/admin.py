"""Admin endpoints: the audit trail and erasure of a user (``DELETE /users/{id}``, also the user's own key)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from truescore.api.authz import Forbidden
from truescore.api.deps import AdminKey, StateDep, WriteKey
from truescore.api.errors import error_responses
from truescore.api.jobs import EngineUnavailable, JobRunner
from truescore.api.params import UserId
from truescore.api.service_schemas import AuditPublic, ErasurePublic
from truescore.store import service

#: no control characters (NUL cannot be sent to PostgreSQL)
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

router = APIRouter(tags=["service"], responses=error_responses(401, 403, 422, 429, 503))


@router.get("/audit", response_model=AuditPublic)
def audit(state: StateDep, key: AdminKey,
          key_id: Annotated[str | None, Query(max_length=64, pattern=_PRINTABLE)] = None,
          user_id: Annotated[str | None, Query(max_length=256, pattern=_PRINTABLE)] = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
          before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Any:
    """Who wrote what and when, newest first (admin): one row per accepted write, deletion or erasure,
    with the key, its user and the event keys (never content). Page with ``before`` = the last row id."""
    return {"data": service.list_audit(state.store, key_id=key_id, user_id=user_id, limit=limit, before=before)}


@router.delete("/users/{user_id}", response_model=ErasurePublic, tags=["users"],
               responses=error_responses(401, 403, 404, 422, 429, 503))
def erase_user(request: Request, state: StateDep, key: WriteKey, user_id: UserId) -> Any:
    """Erase a user (an admin key, or the user's own key): their reviews, votes, trust statements and
    flags with the rows derived from them. The cached engine state is rebuilt at once and a fit is
    queued to recompute the items they touched; the audit keeps counts only."""
    if not key.is_admin and key.user_id != user_id:
        raise Forbidden(f"erasing user {user_id!r} needs that user's own key or an 'admin' key")
    if state.store.get_user(user_id) is None:
        raise HTTPException(status_code=404, detail=f"user {user_id!r} not found")
    report = service.erase_user(state.store, user_id, key_id=key.key_id)
    state.limiter.forget_keys()  # the user's keys are deleted: not one more request with them
    state.rebuild()
    if state.store.read_derived("item_quality") or state.store.read_derived("product_rankings"):
        runner: JobRunner = request.app.state.jobs
        with contextlib.suppress(EngineUnavailable):
            runner.submit("fit")
    return report.as_dict()

"""Users: rater reliability."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from truescore.api.deps import StateDep, read_access
from truescore.api.errors import ERROR_RESPONSES
from truescore.api.params import UserId
from truescore.api.schemas import ReliabilityPublic

router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(read_access)], responses=ERROR_RESPONSES)


@router.get("/{user_id}/reliability", response_model=ReliabilityPublic)
def user_reliability(state: StateDep, user_id: UserId) -> Any:
    """Seed 000: the rater's reliability E[alpha_u] with its credible interval and rating count (online
    estimate where the server has one, else the stored fit)."""
    if state.store.get_user(user_id) is None:
        raise HTTPException(status_code=404, detail=f"user {user_id!r} not found")
    live = state.reliability(user_id)
    if live is not None:
        return {**live, "source": "online", "model_version": "vb-online", "fitted_at": state.online_fitted_at}
    rows = state.store.read_derived("user_reliability", user_id)
    if not rows:
        raise HTTPException(status_code=404, detail=f"user {user_id!r} has no reliability estimate yet (no ratings, "
                                                    "or no fit: run POST /fit or `truescore fit`)")
    return {**rows[0], "source": "fit"}

"""Writing votes, trust statements, flags and verdicts (one event or a batch; needs an API key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from truescore.api.deps import StateDep, WriteKey
from truescore.api.errors import error_responses
from truescore.api.schemas import FlagCreate, TrustCreate, VerdictCreate, VoteCreate, WriteResult
from truescore.api.writes import write_events

router = APIRouter(tags=["events"], responses=error_responses(400, 401, 403, 409, 413, 422, 429, 503))


@router.post("/votes", response_model=WriteResult, status_code=status.HTTP_201_CREATED)
def post_votes(state: StateDep, key: WriteKey, body: VoteCreate | list[VoteCreate]) -> Any:
    """Helpful / unhelpful votes on stored reviews; the first vote of a voter on a review stands."""
    return write_events(state, "votes", body, key)


@router.post("/trust", response_model=WriteResult, status_code=status.HTTP_201_CREATED)
def post_trust(state: StateDep, key: WriteKey, body: TrustCreate | list[TrustCreate]) -> Any:
    """Trust statements; the latest per (truster, trustee, domain) is current, level 0 withdraws trust."""
    return write_events(state, "trust", body, key)


@router.post("/flags", response_model=WriteResult, status_code=status.HTTP_201_CREATED)
def post_flags(state: StateDep, key: WriteKey, body: FlagCreate | list[FlagCreate]) -> Any:
    """Moderation flags on stored reviews (they count for observers who trust the flagger as a moderator)."""
    return write_events(state, "flags", body, key)


@router.post("/verdicts", response_model=WriteResult, status_code=status.HTTP_201_CREATED)
def post_verdicts(state: StateDep, key: WriteKey, body: VerdictCreate | list[VerdictCreate]) -> Any:
    """Moderators' verdicts (fake | genuine) on stored reviews or accounts; a later verdict on the same target
    by the same moderator replaces the earlier one. Needs the 'moderate' or 'admin' scope ('write' alone: 403).
    ``truescore score`` learns from them (docs/integrity.md, "Learning from moderation")."""
    return write_events(state, "verdicts", body, key)

"""Reviews: the text engine's scores, and writing reviews."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from truescore.api.deps import StateDep, WriteKey, read_access
from truescore.api.errors import ERROR_RESPONSES, error_responses
from truescore.api.params import ReviewId
from truescore.api.schemas import ReviewCreate, ReviewScoresPublic, WriteResult
from truescore.api.writes import write_events

router = APIRouter(prefix="/reviews", tags=["reviews"])


@router.get("/{review_id}/scores", response_model=ReviewScoresPublic, dependencies=[Depends(read_access)],
            responses=ERROR_RESPONSES)
def review_scores(state: StateDep, review_id: ReviewId) -> Any:
    """Seed 004: the review's quality, fake probability and sentiment from the text engine."""
    if state.store.get_review(review_id) is None:
        raise HTTPException(status_code=404, detail=f"review {review_id!r} not found")
    rows = state.store.read_derived("review_scores", review_id)
    if not rows:
        raise HTTPException(status_code=404, detail=f"review {review_id!r} has not been scored yet: run POST /score "
                                                    "(or `truescore score`)")
    return rows[0]


@router.post("", response_model=WriteResult, status_code=status.HTTP_201_CREATED,
             responses=error_responses(400, 401, 403, 413, 422, 503))
def post_reviews(state: StateDep, key: WriteKey, body: ReviewCreate | list[ReviewCreate]) -> Any:
    """Store one review or a batch (all or nothing), validated like a file import; a review id already
    stored is skipped. Needs an API key. The reviews count in the next read."""
    return write_events(state, "reviews", body)

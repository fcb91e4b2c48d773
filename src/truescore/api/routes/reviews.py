"""Reviews: the text engine's scores, and writing reviews."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from truescore.api.authz import Forbidden
from truescore.api.deps import StateDep, WriteKey, read_access
from truescore.api.errors import ERROR_RESPONSES, error_responses
from truescore.api.params import ReviewId
from truescore.api.schemas import ReviewCreate, ReviewScoresPublic, WriteResult
from truescore.api.service_schemas import ErasurePublic
from truescore.api.writes import write_events
from truescore.store import service

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
             responses=error_responses(400, 401, 403, 409, 413, 422, 429, 503))
def post_reviews(state: StateDep, key: WriteKey, body: ReviewCreate | list[ReviewCreate]) -> Any:
    """Store one review or a batch (one transaction: all or nothing), validated like a file import. A key
    writes reviews by its own user (``admin``: anyone's). A review id already stored with the same
    content is skipped, with other content 409. A later review by a user of an item replaces the
    earlier one. The reviews count in the next read."""
    return write_events(state, "reviews", body, key)


@router.delete("/{review_id}", response_model=ErasurePublic,
               responses=error_responses(401, 403, 404, 422, 429, 503))
def delete_review(state: StateDep, key: WriteKey, review_id: ReviewId) -> Any:
    """Delete a review, with its author's earlier versions of it (the author's key, or an admin key);
    the votes, flags and text scores on them go too. Audited without content."""
    review = state.store.get_review(review_id)
    if review is None:
        raise HTTPException(status_code=404, detail=f"review {review_id!r} not found")
    if not key.is_admin and review.user_id != key.user_id:
        raise Forbidden(f"review {review_id!r} is by {review.user_id!r}: only its author's key or an 'admin' key "
                        "deletes it")
    with state.write_lock:  # as a write: the store and the cached state see it in the same order
        report = service.delete_review(state.store, review_id, key_id=key.key_id)
        if report is None:
            raise HTTPException(status_code=404, detail=f"review {review_id!r} not found")
        state.apply_deletion(report.user_id, report.items[0], report.review_ids, seq=report.seq)
    return report.as_dict()

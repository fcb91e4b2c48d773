"""Items: the paged list, one item, its reviews, and every engine's view of it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from truescore.api.deps import StateDep, read_access
from truescore.api.errors import ERROR_RESPONSES, error_responses
from truescore.api.params import ItemId, Limit, ObserverQuery, Offset, SearchQuery, TopicQuery
from truescore.api.schemas import (
    AggregateRatingPublic,
    ItemPublic,
    ItemsPublic,
    LovePublic,
    QualityPublic,
    RatingPublic,
    ReviewsPublic,
)
from truescore.api.state import ApiState, ranking_row
from truescore.api.views import item_view, rating_view, review_view
from truescore.domain import Item
from truescore.trust import WeightedRatingResult, aggregate_rating_jsonld
from truescore.trust.clock import parse_at

router = APIRouter(prefix="/items", tags=["items"], dependencies=[Depends(read_access)], responses=ERROR_RESPONSES)


class JsonLdResponse(JSONResponse):
    media_type = "application/ld+json"


def _item(state: ApiState, item_id: str) -> Item:
    item = state.store.get_item(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"item {item_id!r} not found")
    return item


def _found(result: WeightedRatingResult | None, item_id: str) -> WeightedRatingResult:
    if result is None:
        raise HTTPException(status_code=404, detail=f"item {item_id!r} not found")
    return result


@router.get("", response_model=ItemsPublic)
def list_items(state: StateDep, topic: TopicQuery = None, q: SearchQuery = None, limit: Limit = 50,
               offset: Offset = 0) -> Any:
    """Items of a topic (and its subtopics) whose id or title contains ``q``, by id, with their summaries:
    review count, plain mean, reliability quality, fused score with its uncertainty, love score."""
    limit = min(limit, state.settings.api.max_page)
    items = state.store.items(topic=topic, q=q, limit=limit, offset=offset)
    summaries = state.summaries().items
    return {"data": [item_view(i, summaries.get(i.id)) for i in items],
            "count": state.store.count_items(topic=topic, q=q), "limit": limit, "offset": offset}


@router.get("/{item_id}", response_model=ItemPublic)
def read_item(state: StateDep, item_id: ItemId) -> Any:
    """One item with its summary."""
    item = _item(state, item_id)
    return item_view(item, state.summaries().items.get(item_id))


@router.get("/{item_id}/reviews", response_model=ReviewsPublic)
def item_reviews(state: StateDep, item_id: ItemId, limit: Limit = 100, offset: Offset = 0) -> Any:
    """The item's current reviews (oldest first) with the text engine's scores where computed."""
    _item(state, item_id)
    limit = min(limit, state.settings.api.max_page)
    reviews = state.store.reviews_of_item(item_id)
    scores = state.summaries().review_scores
    page = reviews[offset : offset + limit]
    return {"data": [review_view(r, scores.get(r.id)) for r in page], "count": len(reviews), "limit": limit,
            "offset": offset}


@router.get("/{item_id}/quality", response_model=QualityPublic)
def item_quality(state: StateDep, item_id: ItemId) -> Any:
    """Seed 000: the item's quality from the reliability engine, with its posterior sd: the server's
    online estimate (updated by every review written through the API) where it has one, else the
    stored fit."""
    _item(state, item_id)
    live = state.quality(item_id)
    if live is not None:
        return {**live, "source": "online", "model_version": "vb-online", "fitted_at": state.online_fitted_at}
    rows = state.store.read_derived("item_quality", item_id)
    if not rows:
        raise HTTPException(status_code=404, detail=f"item {item_id!r} has no quality estimate yet (no ratings, or "
                                                    "no fit: run POST /fit or `truescore fit`)")
    return {**rows[0], "source": "fit"}


AtQuery = Annotated[
    str | None,
    Query(max_length=64, description="The rating as of this time: epoch seconds or ISO 8601 (e.g. "
          "2011-03-13T07:06:40Z); recency is measured from it and later events are ignored. Default: now."),
]


def _at(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_at(value)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"query parameter 'at': {exc}") from None


@router.get("/{item_id}/rating", response_model=RatingPublic)
async def item_rating(state: StateDep, item_id: ItemId, observer: ObserverQuery = None, topic: TopicQuery = None,
                paths: bool = Query(True, description="Include each contribution's full trust path."),
                at: AtQuery = None) -> Any:
    """Seed 003: the rating ``observer`` should see (QRP-0001 weights T x H x A x R x F), with the
    confidence line, agreement, the anonymous baseline and the personalization delta, and every
    contributing review with its factors and "via" intermediary; and the observer's personal estimate
    ``for_you`` with its sd and the pieces behind it (issue 13)."""
    who = observer if observer is not None else state.settings.trust.baseline_observer_id
    clock = _at(at)
    result = state.try_rating(item_id, who, topic, paths, at=clock)
    if result is False:  # the engine is busy (a write, a rebuild): wait in a worker thread, not in the event loop
        result = await run_in_threadpool(state.rating, item_id, who, topic, paths, clock)
    assert result is not True
    return rating_view(_found(result, item_id))


@router.get("/{item_id}/baseline", response_model=RatingPublic)
def item_baseline(state: StateDep, item_id: ItemId, topic: TopicQuery = None) -> Any:
    """QRP-0002: the anonymous baseline, the rating the operator root sees (the same for everyone)."""
    return rating_view(_found(state.baseline(item_id, topic), item_id))


@router.get("/{item_id}/schema-org", response_model=AggregateRatingPublic, response_class=JsonLdResponse,
            responses=error_responses(401, 403, 404, 422, 429, 503, json_content=True))
def item_schema_org(state: StateDep, item_id: ItemId, topic: TopicQuery = None) -> Any:
    """Schema.org AggregateRating (JSON-LD) of the anonymous baseline, for search engines."""
    item = _item(state, item_id)
    doc = aggregate_rating_jsonld(_found(state.baseline(item_id, topic), item_id), item_name=item.title or item.id)
    if doc is None:
        raise HTTPException(status_code=404, detail=f"item {item_id!r} has no baseline rating to publish: no review "
                                                    "is reachable from the operator root's trust graph")
    return AggregateRatingPublic.model_validate(doc)


@router.get("/{item_id}/love", response_model=LovePublic)
def item_love(state: StateDep, item_id: ItemId) -> Any:
    """The ranking engine's fused quality, love score (0-100) and tier, with the components behind it."""
    _item(state, item_id)
    rows = state.store.read_derived("product_rankings", item_id)
    if not rows:
        raise HTTPException(status_code=404, detail=f"item {item_id!r} has no ranking yet: run POST /fit "
                                                    "(or `truescore rank`)")
    return ranking_row(rows[0])

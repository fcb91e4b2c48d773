"""Engine results and store rows as plain JSON-ready dicts in the shape of :mod:`truescore.api.schemas`.

Pure field copying (no arithmetic): the trust engine's :class:`~truescore.trust.WeightedRatingResult` is
copied attribute by attribute, which is several times cheaper than ``dataclasses.asdict`` on a result
with many contributions; NaN becomes None.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from truescore.api.state import ItemSummary
from truescore.domain import Item, Review, to_epoch
from truescore.trust import ReviewContribution, WeightedRatingResult

__all__ = ["item_view", "rating_view", "review_view"]

_RESULT_FIELDS = [f for f in WeightedRatingResult.__dataclass_fields__ if f != "contributions"]
_CONTRIBUTION_FIELDS = list(ReviewContribution.__dataclass_fields__)


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def rating_view(result: WeightedRatingResult) -> dict[str, Any]:
    """Every field of the result, contributions included (largest weight first)."""
    out = {name: _clean(getattr(result, name)) for name in _RESULT_FIELDS}
    out["contributions"] = [
        {name: _clean(getattr(c, name)) for name in _CONTRIBUTION_FIELDS} for c in result.contributions
    ]
    return out


def item_view(item: Item, summary: ItemSummary | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.id, "topic": item.topic, "title": item.title,
                           "created_at": to_epoch(item.created_at)}
    if summary is not None:
        out.update(asdict(summary))
    return out


def review_view(review: Review, scores: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": review.id, "item_id": review.item_id, "user_id": review.user_id, "rating": review.rating,
        "min_rating": review.min_rating, "max_rating": review.max_rating, "title": review.title,
        "text": review.text, "created_at": to_epoch(review.created_at),
        "verified_purchase": review.verified_purchase, "is_incentivized": review.is_incentivized,
    }
    if scores is not None:
        for key in ("quality", "fake_probability", "sentiment"):
            out[key] = _clean(scores.get(key))
    return out

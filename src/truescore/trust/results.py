"""Typed results of the trust engine, with seed 003's (QRP-0001/0002) field names, and JSON-LD."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ReviewContribution",
    "TrustAnswer",
    "WeightedRatingResult",
    "aggregate_rating_jsonld",
]


@dataclass(slots=True)
class ReviewContribution:
    """One review's contribution to an observer's rating.

    Attributes
    ----------
    review_id, reviewer : str
    rating : float
        The review's rating on the item's display scale.
    original_rating, original_min, original_max : float
        The rating as given, on the review's own scale.
    T, H, A, R : float
        The four factors of seed 003.
    F : float
        Moderation factor (1 unless trusted moderators flagged the review).
    weight : float
        ``T * H * A * R * F``.
    age_days : float
    top_intermediary_quid : str or None
        First hop after the observer on the best trust path ("via Bob"); None for a direct edge.
    path : list of str or None
        The whole best path, observer first, reviewer last (None unless paths were requested).
    trust_domain : str or None
        Domain whose trust gave T (a parent of the topic when inherited).
    trust_source : str
        ``"path"``, ``"verified_purchase"`` (T raised by the retailer bootstrap) or ``"self"``.
    """

    review_id: str
    reviewer: str
    rating: float
    original_rating: float
    original_min: float
    original_max: float
    T: float
    H: float
    A: float
    R: float
    F: float
    weight: float
    age_days: float
    top_intermediary_quid: str | None = None
    path: list[str] | None = None
    trust_domain: str | None = None
    trust_source: str = "path"

    @property
    def top_intermediary(self) -> str | None:
        """Alias of :attr:`top_intermediary_quid` (the issue's name)."""
        return self.top_intermediary_quid

    def to_dict(self) -> dict[str, Any]:
        return _clean_fields(asdict(self))


@dataclass(slots=True)
class WeightedRatingResult:
    """An observer's trust-weighted rating of one item (QRP-0001), with the QRP-0002 extensions.

    Ratings are on the item's display scale ``[scale_min, scale_max]``; ``None`` means no contributor
    (never zero).

    Attributes
    ----------
    product, topic, observer : str
    rating : float or None
        ``sum(w * z) / sum(w)`` over contributions, shown on the display scale.
    total_weight : float
    contributing_reviews : int
    total_reviews_considered : int
        Reviews of the item other than the observer's own.
    unweighted_mean : float or None
        Plain mean of those reviews, for comparison.
    contributions : list of ReviewContribution
        Sorted by weight, largest first.
    confidence_range : float
        The "±" half-width on the display scale.
    confidence_pct : float
        QRP-0002 graph-density confidence in [0, 100].
    polarization : float
        QRP-0002 weighted spread in [0, 1].
    anonymous_baseline_rating : float or None
        The same computation for the configured baseline observer (the operator root).
    anonymous_baseline_total_weight : float
    personalization_delta : float or None
        ``rating - anonymous_baseline_rating``.
    display : str
        For example ``"4.5 ± 0.4 based on 3 trusted reviews"``.
    agreement : str or None
        ``"trusted sources agree"`` or ``"trusted sources split"`` (polarization threshold).
    scale_min, scale_max : float
        The item's display scale.
    computed_at : float
        Clock of the computation (UTC epoch seconds).
    for_you, for_you_sd : float or None
        The observer's personal estimate and its posterior sd (issue 13, :mod:`truescore.trust.personal`):
        always defined when computed (None only if personal estimates are disabled).
    for_you_explanation : str or None
        The pieces in words.
    for_you_public, for_you_public_sd : float or None
        Its prior (a): the crowd's estimate without the observer's own rating.
    for_you_calibration : float or None
        (c): how the observer usually rates against the crowd (display-scale difference, shrunk).
    for_you_calibration_ratings : int
    for_you_trust_mean : float or None
        (b): how far the trusted reviewers rate the item from the crowd (their calibration removed).
    for_you_trust_shift : float or None
        The part of it that for_you takes.
    for_you_trust_reviews : float
        Effective number of trusted reviews after agreement.
    for_you_trust_agreement : float or None
        Their weighted mean agreement with the observer (1 = an average trusted pair).
    """

    product: str
    topic: str
    observer: str
    rating: float | None
    total_weight: float
    contributing_reviews: int
    total_reviews_considered: int
    unweighted_mean: float | None
    contributions: list[ReviewContribution] = field(default_factory=list)
    confidence_range: float = 0.0
    confidence_pct: float = 0.0
    polarization: float = 0.0
    anonymous_baseline_rating: float | None = None
    anonymous_baseline_total_weight: float = 0.0
    personalization_delta: float | None = None
    display: str = ""
    agreement: str | None = None
    scale_min: float = 1.0
    scale_max: float = 5.0
    computed_at: float = 0.0
    for_you: float | None = None
    for_you_sd: float | None = None
    for_you_explanation: str | None = None
    for_you_public: float | None = None
    for_you_public_sd: float | None = None
    for_you_calibration: float | None = None
    for_you_calibration_ratings: int = 0
    for_you_trust_mean: float | None = None
    for_you_trust_shift: float | None = None
    for_you_trust_reviews: float = 0.0
    for_you_trust_agreement: float | None = None

    @property
    def item_id(self) -> str:
        return self.product

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with every field (NaN becomes None)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "contributions"}
        out["contributions"] = [c.to_dict() for c in self.contributions]
        return _clean_fields(out)


@dataclass(frozen=True, slots=True)
class TrustAnswer:
    """Topical trust of an observer in one user, with the path that gives it.

    Attributes
    ----------
    level : float
        T in [0, 1].
    path : list of str or None
        Observer first, target last; None when there is no trust.
    domain : str or None
        Domain of the winning path.
    steps : int
        Topic-inheritance steps up from the asked topic (level includes ``decay ** steps``).
    """

    level: float
    path: list[str] | None
    domain: str | None
    steps: int = 0

    @property
    def top_intermediary(self) -> str | None:
        return self.path[1] if self.path is not None and len(self.path) > 2 else None


def aggregate_rating_jsonld(result: WeightedRatingResult, *, item_name: str | None = None) -> dict[str, Any] | None:
    """Schema.org ``AggregateRating`` for a (baseline) result, or None when it has no rating.

    Search engines index one rating per page, so this is meant for
    :meth:`~truescore.trust.rater.Rater.anonymous_baseline_rating`, which is the same for every visitor.
    """
    if result.rating is None:
        return None
    doc: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "AggregateRating",
        "ratingValue": round(result.rating, 2),
        "ratingCount": result.contributing_reviews,
        "bestRating": result.scale_max,
        "worstRating": result.scale_min,
    }
    if item_name is not None:
        doc["itemReviewed"] = {"@type": "Product", "name": item_name}
    return doc


def _clean_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with every NaN, at any depth, as None (JSON has no NaN)."""
    return {k: _clean(v) for k, v in fields.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value

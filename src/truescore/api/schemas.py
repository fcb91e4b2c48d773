"""Request and response schemas of the HTTP API, one family per resource.

Write schemas (``*Create``) declare the types and bounds a client must respect, so the OpenAPI document
says what a valid body looks like; the store's importer (:func:`truescore.store.ingest.import_frame`)
then validates every row exactly as a file import would (scales, topics, references, sizes). Response
schemas (``*Public``) mirror the engines' typed results with their field names (seed 000's
``{"item_id", "quality"}``, seed 003's QRP-0001/0002 names).

Times are UTC epoch seconds (float) in responses; requests accept epoch seconds or ISO 8601 strings.

Write schemas apply the rule-set of :mod:`truescore.domain` (docs/rules.md) to each field they can judge
alone: strict JSON types (no booleans or strings for numbers, no numbers for booleans), ids NFC-normalised
without control/zero-width/bidi characters, timestamps in 1970..2200 converted to epoch seconds, topics.
Limits that are settings (``max_id_length``, ``max_text_bytes``, ``allowed_scales``) and rules across fields
(a rating inside one of the platform's scales, no trust in oneself) are applied by the importer with the
app's own settings object.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from truescore.domain import (
    MAX_PHOTOS,
    MAX_SEVERITY,
    MAX_TITLE_CHARS,
    MAX_TOPIC_CHARS,
    TOPIC_REGEX,
    FlagReason,
    clean_flag_reason,
    clean_timestamp,
    id_problem,
    text_problem,
    topic_problem,
)

__all__ = [
    "TOPIC_REGEX",
    "AggregateRatingPublic",
    "ContributionPublic",
    "ErrorPublic",
    "FlagCreate",
    "HealthPublic",
    "ItemPublic",
    "ItemsPublic",
    "JobPublic",
    "LovePublic",
    "ObserverPublic",
    "ObserversPublic",
    "QualityPublic",
    "RankingsPublic",
    "RatingPublic",
    "ReliabilityPublic",
    "ReviewCreate",
    "ReviewPublic",
    "ReviewScoresPublic",
    "ReviewsPublic",
    "RowErrorPublic",
    "TopicPublic",
    "TopicsPublic",
    "TrustCreate",
    "VerdictCreate",
    "VoteCreate",
    "WriteResult",
]



def _epoch(value: float | str) -> float:
    """Epoch seconds of a timestamp given as a JSON number or an ISO 8601 string (rule: domain.epoch_seconds)."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            pass
        else:
            raise ValueError(f"{value!r}: an epoch time must be a JSON number, not a string")
    return clean_timestamp(value, field="timestamp")


#: a timestamp in a request: epoch seconds (a JSON number) or ISO 8601, converted to epoch seconds
Timestamp = Annotated[Annotated[float, Strict()] | StrictStr, AfterValidator(_epoch)]


def _valid_text(value: str) -> str:
    """Refuse what no database can store: NUL characters and lone surrogates (invalid UTF-8)."""
    reason = text_problem(value)
    if reason is not None:
        raise ValueError(reason)
    return value


def _valid_id(value: str) -> str:
    """The domain's id rule (NFC, no control/zero-width/bidi); the length is the importer's (setting)."""
    clean, reason = id_problem(value, None)
    if reason is not None:
        raise ValueError(reason)
    return clean  # type: ignore[return-value]


def _valid_topic(value: str) -> str:
    clean, reason = topic_problem(value)
    if reason is not None:
        raise ValueError(reason)
    return clean  # type: ignore[return-value]


#: a string in a request body that a database can store
Text = Annotated[StrictStr, AfterValidator(_valid_text)]
#: an id in a request body (at most settings.max_id_length characters, checked with the app's settings)
Id = Annotated[StrictStr, AfterValidator(_valid_id)]
#: a topic / trust domain
Topic = Annotated[StrictStr, Field(max_length=MAX_TOPIC_CHARS, pattern=TOPIC_REGEX), AfterValidator(_valid_topic)]
#: a JSON number (never a boolean or a string)
Number = Annotated[float, Strict()]


def _id(description: str, **kwargs: Any) -> Any:
    return Field(description=description, **kwargs)


# ------------------------------------------------------------------------------------------ errors
class RowErrorPublic(BaseModel):
    """One problem with a request body: 1-based row (element of a batch; 1 for a single object)."""

    row: int | None = Field(description="1-based element of the posted batch (1 for a single object).")
    field: str = Field(description="Field name, e.g. 'rating'.")
    reason: str = Field(description="What is wrong, e.g. '7 is outside the scale 1..5'.")


class ErrorPublic(BaseModel):
    """Every 4xx/5xx answer: a readable message, and for bad bodies the rows and fields at fault."""

    detail: str
    errors: list[RowErrorPublic] | None = None


# ------------------------------------------------------------------------------------------ health
class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    database: str = Field(description="'sqlite' or 'postgresql'.")
    counts: dict[str, int] = Field(description="Rows per event and derived table.")
    engines: dict[str, bool] = Field(
        description="Which engines this build has and which derived tables are filled "
        "(trust, reliability, text, ranking)."
    )
    cache_version: int = Field(description="Bumped whenever the cached engine state changes.")
    uptime_seconds: float


# ------------------------------------------------------------------------------------------ items
class ItemPublic(BaseModel):
    """An item with the summaries the product list shows (None where no engine has run yet)."""

    id: str
    topic: str
    title: str | None = None
    created_at: float
    n_reviews: int = Field(0, description="Current (not superseded) reviews.")
    plain_mean: float | None = Field(None, description="Unweighted mean rating on the item's scale.")
    scale_min: float = 1.0
    scale_max: float = 5.0
    quality: float | None = Field(None, description="Reliability engine: posterior mean quality (item's scale).")
    quality_sd: float | None = None
    fused_mean: float | None = Field(None, description="Ranking: fused quality of all engines (item's scale).")
    fused_sd: float | None = None
    lower_bound: float | None = None
    love_score: float | None = Field(None, description="Ranking: love score 0-100.")
    tier: str | None = None


class ItemsPublic(BaseModel):
    data: list[ItemPublic]
    count: int = Field(description="Items matching the filter (all pages).")
    limit: int
    offset: int


class TopicPublic(BaseModel):
    topic: str
    n_items: int


class TopicsPublic(BaseModel):
    data: list[TopicPublic]


class ObserverPublic(BaseModel):
    id: str
    display_name: str | None = None
    role: str
    n_trusted: int = Field(description="Users this observer states trust in (current statements).")


class ObserversPublic(BaseModel):
    data: list[ObserverPublic]
    baseline_observer: str = Field(description="QRP-0002 operator root used for the anonymous baseline.")


class ReviewPublic(BaseModel):
    id: str
    item_id: str
    user_id: str
    rating: float
    min_rating: float
    max_rating: float
    title: str | None = None
    text: str | None = None
    created_at: float
    verified_purchase: bool | None = None
    is_incentivized: bool | None = None
    quality: float | None = Field(None, description="Text engine: review quality in [0, 1].")
    fake_probability: float | None = Field(None, description="Text engine: probability the review is fake.")
    sentiment: float | None = Field(None, description="Text engine: sentiment in [-1, 1].")


class ReviewsPublic(BaseModel):
    data: list[ReviewPublic]
    count: int
    limit: int
    offset: int


# ------------------------------------------------------------------------------------------ engines
class QualityPublic(BaseModel):
    """Seed 000: ``{"item_id", "quality"}`` plus the uncertainty and the evidence."""

    item_id: str
    quality: float = Field(description="Posterior mean quality on the item's own rating scale.")
    quality_sd: float = Field(description="Posterior sd on the same scale.")
    n_ratings: int
    effective_weight: float = Field(description="Total precision the ratings contribute (normalised scale).")
    source: Literal["online", "fit"] = Field(
        description="'online': the server's streaming estimate (batch fit at startup or after the last fit job, "
        "updated by every review written since); 'fit': the stored item_quality table."
    )
    model_version: str | None = None
    fitted_at: float | None = None


class ReliabilityPublic(BaseModel):
    """Seed 000: ``{"user_id", "reliability"}`` plus the credible interval and the evidence."""

    user_id: str
    reliability: float = Field(description="E[alpha_u], posterior mean rating precision (normalised scale).")
    reliability_lo: float = Field(description="Lower end of the credible interval.")
    reliability_hi: float = Field(description="Upper end of the credible interval.")
    bias: float = Field(description="Rater bias on the normalised scale (0 when the model has none).")
    n_ratings: int
    source: Literal["online", "fit"]
    model_version: str | None = None
    fitted_at: float | None = None


class ContributionPublic(BaseModel):
    """One review's part in an observer's rating (seed 003's ReviewContribution)."""

    review_id: str
    reviewer: str
    rating: float = Field(description="On the item's display scale.")
    original_rating: float
    original_min: float
    original_max: float
    T: float = Field(description="Topical transitive trust of the observer in the reviewer.")
    H: float = Field(description="Helpfulness of the reviewer, as judged through the observer's trust.")
    A: float = Field(description="Activity of the reviewer in the topic.")
    R: float = Field(description="Recency of the review.")
    F: float = Field(description="Moderation factor (1 unless trusted moderators flagged it).")
    weight: float = Field(description="T * H * A * R * F.")
    age_days: float
    top_intermediary_quid: str | None = Field(None, description="'via Bob': first hop of the best trust path.")
    path: list[str] | None = None
    trust_domain: str | None = None
    trust_source: str = "path"


class RatingPublic(BaseModel):
    """The whole trust-engine result for one observer (QRP-0001 with the QRP-0002 extensions)."""

    product: str
    topic: str
    observer: str
    rating: float | None = Field(description="Trust-weighted rating on the item's scale; None = no trusted review.")
    total_weight: float
    contributing_reviews: int
    total_reviews_considered: int
    unweighted_mean: float | None
    contributions: list[ContributionPublic]
    confidence_range: float = Field(description="The '±' half-width on the display scale.")
    confidence_pct: float
    polarization: float
    anonymous_baseline_rating: float | None
    anonymous_baseline_total_weight: float
    personalization_delta: float | None
    display: str = Field(description="For example '4.5 ± 0.4 based on 3 trusted reviews'.")
    agreement: str | None = Field(description="'trusted sources agree' or 'trusted sources split'.")
    scale_min: float
    scale_max: float
    computed_at: float
    # issue 13: the observer's personal estimate (truescore.trust.personal)
    for_you: float | None = Field(None, description="The observer's personal estimate on the item's scale: the "
                                  "crowd's estimate, their calibration and their trusted reviewers combined.")
    for_you_sd: float | None = Field(None, description="Posterior sd of for_you.")
    for_you_explanation: str | None = Field(None, description="The pieces of for_you in words.")
    for_you_public: float | None = Field(None, description="Its prior: the crowd's estimate without the observer.")
    for_you_public_sd: float | None = None
    for_you_calibration: float | None = Field(None, description="How the observer usually rates against the crowd.")
    for_you_calibration_ratings: int = 0
    for_you_trust_mean: float | None = Field(None, description="How far trusted reviewers rate it from the crowd.")
    for_you_trust_shift: float | None = Field(None, description="The part of that for_you takes.")
    for_you_trust_reviews: float = Field(0.0, description="Effective number of trusted reviews after agreement.")
    for_you_trust_agreement: float | None = Field(None, description="Their agreement with the observer (1 = average).")


class AggregateRatingPublic(BaseModel):
    """Schema.org ``AggregateRating`` (JSON-LD) of the anonymous baseline, for search engines."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    context: str = Field("https://schema.org", alias="@context")
    type: str = Field("AggregateRating", alias="@type")
    ratingValue: float  # Schema.org names
    ratingCount: int
    bestRating: float
    worstRating: float
    itemReviewed: dict[str, Any] | None = None


class LovePublic(BaseModel):
    """The ranking engine's row for one item: fused quality, love score and tier."""

    item_id: str
    topic: str
    fused_mean: float | None
    fused_sd: float | None
    n_eff: float | None
    lower_bound: float | None
    love_score: float | None
    tier: str | None
    plain_mean: float | None
    n_reviews: int
    details: dict[str, Any] | list[Any] | None = None
    model_version: str | None = None
    fitted_at: float | None = None


class RankingsPublic(BaseModel):
    data: list[LovePublic]
    count: int


class ReviewScoresPublic(BaseModel):
    """The text engine's scores of one review."""

    review_id: str
    quality: float | None = None
    fake_probability: float | None = None
    sentiment: float | None = None
    model_version: str | None = None
    fitted_at: float | None = None
    suspicion: float | None = None
    suspicion_reasons: str | None = None


# ------------------------------------------------------------------------------------------ writes
class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReviewCreate(_Create):
    """A review. Unknown users and items are created; ``topic``/``item_title`` set the item's."""

    id: Id = _id("Review id (idempotent: posting it again is a no-op).")
    item_id: Id = _id("Item id.")
    user_id: Id = _id("Reviewer id.")
    rating: Number = Field(description="On the scale min_rating..max_rating.")
    min_rating: Number = Field(1.0, description="Bottom of the review's scale: (min_rating, max_rating) must be one "
                                                "of the platform's scales (setting allowed_scales).")
    max_rating: Number = Field(5.0, description="Top of the review's scale (> min_rating; one of the platform's "
                                                "scales, setting allowed_scales).")
    title: Text | None = Field(None, max_length=MAX_TITLE_CHARS)
    text: Text | None = Field(None, description="Review text (at most settings.max_text_bytes).")
    created_at: Timestamp | None = Field(None, description="Epoch seconds or ISO 8601; default now.")
    is_recommended: StrictBool | None = None
    is_incentivized: StrictBool | None = Field(None, description="Disclosed incentive (free product, payment).")
    verified_purchase: StrictBool | None = None
    photo_count: StrictInt = Field(0, ge=0, le=MAX_PHOTOS)
    supersedes: Id | None = Field(None, description="Id of an earlier review by the same user this one replaces.")
    topic: Topic | None = Field(None, description="Item topic, if new.")
    item_title: Text | None = Field(None, max_length=MAX_TITLE_CHARS, description="Item title, if new.")


class VoteCreate(_Create):
    """A helpful / unhelpful vote on a stored review; one per (review, voter), the first stands."""

    review_id: Id = _id("Review voted on (must be stored).")
    voter_id: Id = _id("Voter id.")
    helpful: StrictBool
    created_at: Timestamp | None = Field(None, description="Epoch seconds or ISO 8601; default now.")


class TrustCreate(_Create):
    """A trust statement; the latest per (truster, trustee, domain) is the current one (level 0 withdraws)."""

    truster_id: Id = _id("Who trusts.")
    trustee_id: Id = _id("Who is trusted.")
    domain: Topic = Field("reviews.public", description="Topic domain.")
    level: Number = Field(ge=0.0, le=1.0)
    created_at: Timestamp | None = Field(None, description="Epoch seconds or ISO 8601; default now.")
    valid_until: Timestamp | None = Field(None, description="Expiry (epoch seconds or ISO 8601).")


class FlagCreate(_Create):
    """A moderation flag on a stored review; one per (review, flagger)."""

    review_id: Id = _id("Review flagged (must be stored).")
    flagger_id: Id = _id("Flagger id.")
    reason: FlagReason = Field(description="SPAM, FAKE, INAPPROPRIATE, OFF_TOPIC or OTHER (any case, as in imports).")
    severity: Number = Field(1.0, ge=0.0, le=MAX_SEVERITY)
    created_at: Timestamp | None = Field(None, description="Epoch seconds or ISO 8601; default now.")


    @field_validator("reason", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return clean_flag_reason(value) if isinstance(value, str) else value


class VerdictCreate(_Create):
    """A moderator's verdict on exactly one stored review (``review_id``) or stored account (``user_id``);
    a later verdict on the same review or account by the same moderator replaces the earlier one. Needs a
    key with the ``moderate`` (its own user is the moderator) or ``admin`` scope."""

    review_id: Id | None = _id("Review judged (must be stored); give this or user_id.", default=None)
    user_id: Id | None = _id("Account judged (must be stored); give this or review_id.", default=None)
    verdict: StrictStr = Field(description="fake or genuine (any case, as in imports).")
    moderator_id: Id | None = _id("Moderator id; default the key's user.", default=None)
    created_at: Timestamp | None = Field(None, description="Epoch seconds or ISO 8601; default now.")


class WriteResult(BaseModel):
    kind: Literal["reviews", "votes", "trust", "flags", "verdicts"]
    received: int = Field(description="Events in the request.")
    inserted: int = Field(description="Events that were new (the rest were already stored).")


class JobPublic(BaseModel):
    id: str
    kind: str
    status: str = Field(description="queued | running | done | failed")
    message: str | None = None
    created_at: float
    finished_at: float | None = None

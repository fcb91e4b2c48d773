"""From events to a ranked product list: gather the three engines' outputs, fuse, score, rank.

:func:`rank_frames` works on event frames with the store's column names (no database);
:func:`rank_store` reads them from a :class:`~truescore.store.Store`. Both take the reliability fit and
the text scores if already computed, and compute what is missing (the reliability engine always, the
text engine only when asked, since it is the slow one).

The work splits in two, so that ``truescore spark rank`` can run the second part as a grouped pandas
function per item: :func:`ranking_inputs` is the global step (the snapshot, the observer's trust in every
reviewer, the integrity engine's evidence and groups, the reliability fit, and from them
:class:`RankContext`: ``alpha_ref``, the prior, the global mean rating, the settings and the clock);
:func:`rank_items` is the per-item kernel (the fusion's :func:`~truescore.ranking.fusion.fuse_items`
and then :func:`~truescore.ranking.love.love_scores`), which needs only the item's rows with their
per-review context (:class:`~truescore.ranking.fusion.ItemRows`, :class:`ReviewSignals`).
:func:`rank_frames` runs the kernel once over all items.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.config import RankingSettings, Settings, default_settings
from truescore.domain import RatingSnapshot, snapshot_from_frame, topic_within
from truescore.ranking.fusion import (
    FusedQuality,
    FusionContext,
    FusionInputs,
    ItemFusion,
    ItemRows,
    ReviewWeight,
    fuse_items,
    fused_quality,
    fusion_context,
    item_rows,
)
from truescore.ranking.love import LoveInputs, LoveScore, love_scores

if TYPE_CHECKING:
    from truescore.integrity import IntegrityResult
    from truescore.reliability import ReliabilityResult
    from truescore.trust import Rater

__all__ = [
    "MODEL_VERSION",
    "FusionEvidence",
    "ProductRanking",
    "RankContext",
    "RankingInputs",
    "RankingResult",
    "ReviewSignals",
    "integrity_for_fusion",
    "product_rankings",
    "rank_frames",
    "rank_items",
    "ranking_inputs",
    "ranking_records",
    "trust_per_rating",
]

MODEL_VERSION = "fusion-1"


@dataclass(slots=True)
class ProductRanking:
    """One product's line in a ranking (ratings on the item's own scale)."""

    item_id: str
    topic: str
    fused_mean: float
    fused_sd: float
    lower_bound: float
    n_eff: float
    plain_mean: float
    bayes_average: float
    n_reviews: int
    love: LoveScore | None
    scale_min: float
    scale_max: float

    @property
    def love_score(self) -> float | None:
        return None if self.love is None else self.love.score

    @property
    def rank_key(self) -> float:
        """What the ranking sorts by: the lower bound on the normalised scale (:func:`normalised_bound`)."""
        return normalised_bound(self.lower_bound, self.scale_min, self.scale_max)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("item_id", "topic", "fused_mean", "fused_sd", "lower_bound", "n_eff",
                                             "plain_mean", "bayes_average", "n_reviews", "scale_min", "scale_max")}
        out["love"] = None if self.love is None else self.love.to_dict()
        return out


@dataclass(slots=True)
class RankingResult:
    """Fused quality, love score and ranking of every item of a snapshot."""

    snapshot: RatingSnapshot
    fused: FusedQuality
    love: list[LoveScore | None]
    products: list[ProductRanking]
    observer: str
    settings: RankingSettings
    #: where each input came from, e.g. ``{"fit": "vb-1, stored"}`` (set by the rank job)
    sources: dict[str, str] = field(default_factory=dict)

    def product(self, item_id: str) -> ProductRanking:
        for p in self.products:
            if p.item_id == item_id:
                return p
        raise KeyError(item_id)

    def top(self, topic: str | None = None, limit: int = 10) -> list[ProductRanking]:
        """Products of ``topic`` (and its subtopics) by fused lower credible bound, best first."""
        chosen = [p for p in self.products
                  if topic_within(p.topic, topic)]
        chosen.sort(key=lambda p: (-p.rank_key, p.item_id))
        return chosen[:limit]

    def explain(self, item_id: str) -> list[ReviewWeight]:
        """Every review of ``item_id`` with how much it counted and why (ratings on the item's scale)."""
        k = int(np.flatnonzero(self.snapshot.item_ids == item_id)[0]) if item_id in set(self.snapshot.item_ids) \
            else -1
        if k < 0:
            raise KeyError(item_id)
        lo, hi = self.snapshot.item_min[k], self.snapshot.item_max[k]
        return [ReviewWeight(w.review_id, w.user_id, float(lo + w.rating * (hi - lo)), w.weight, w.share, w.factors,
                             w.reason) for w in self.fused.explain(k)]

    def records(self) -> list[dict[str, Any]]:
        """Rows for the ``product_rankings`` derived table."""
        return ranking_records(self.products, self.observer)


def normalised_bound(lower_bound: float | None, scale_min: float, scale_max: float) -> float:
    """A lower bound shown on an item's own scale ``[scale_min, scale_max]``, back on the normalised scale
    ``(lb - min) / (max - min)``: rankings compare items on that scale, never raw numbers across scales (a
    1,000,000 on a 999,999..1,000,000 scale is a top rating, not a million stars); -inf when unknown."""
    if lower_bound is None or not np.isfinite(lower_bound) or not scale_max > scale_min:
        return float("-inf")
    return float((lower_bound - scale_min) / (scale_max - scale_min))


def ranking_records(products: list[ProductRanking], observer: str) -> list[dict[str, Any]]:
    """Rows for the ``product_rankings`` derived table."""
    return [{
        "item_id": p.item_id, "topic": p.topic, "fused_mean": p.fused_mean, "fused_sd": p.fused_sd,
        "n_eff": p.n_eff, "lower_bound": p.lower_bound,
        "love_score": p.love_score, "tier": None if p.love is None else p.love.tier,
        "plain_mean": p.plain_mean, "n_reviews": p.n_reviews,
        "details": json.dumps({"love": None if p.love is None else p.love.to_dict(),
                               "bayes_average": p.bayes_average, "observer": observer,
                               "scale": [p.scale_min, p.scale_max]}),
    } for p in products]


@dataclass(frozen=True, slots=True)
class RankContext:
    """The global context of the per-item kernel :func:`rank_items` (small; broadcast to Spark executors)."""

    fusion: FusionContext
    settings: RankingSettings
    now: float


@dataclass(slots=True)
class ReviewSignals:
    """Per-review inputs of the love score beyond the fusion's rows (one entry per row of the block)."""

    sentiment: np.ndarray
    quality: np.ndarray
    incentivized: np.ndarray
    helpful: np.ndarray
    unhelpful: np.ndarray
    flagged: np.ndarray


def rank_items(rows: ItemRows, signals: ReviewSignals, item_min: np.ndarray, item_max: np.ndarray,
               ctx: RankContext) -> tuple[ItemFusion, list[LoveScore | None]]:
    """The per-item kernel: fused quality (:func:`~truescore.ranking.fusion.fuse_items`) and love score
    (:func:`~truescore.ranking.love.love_scores`) of every item of the block ``rows``.

    ``item_min``, ``item_max`` hold each block item's rating scale. Nothing else is read, so one item's
    rows (in the order of the full table) give that item's numbers of the run over all items.
    """
    part = fuse_items(rows, ctx.fusion, ctx.settings)
    love = love_scores(LoveInputs(
        item_idx=rows.item, user_idx=np.zeros_like(rows.item), rating=rows.rating, created_at=rows.created_at,
        fake_probability=rows.fake_probability, sentiment=signals.sentiment, quality=signals.quality,
        incentivized=signals.incentivized, helpful=signals.helpful, unhelpful=signals.unhelpful,
        flagged=signals.flagged, trust=rows.trust, reviewer_reviews=rows.rater_ratings, fused_weight=part.weight,
        burst=part.factors["burst"], n_items=rows.n_items, now=ctx.now, item_min=item_min, item_max=item_max,
    ), ctx.settings)
    return part, love


def trust_per_rating(rater: Rater, snapshot: RatingSnapshot, observer: str, at: float | None = None) -> np.ndarray:
    """The observer's topical trust ``T`` in the author of every rating (0 for strangers): one
    vectorised trust query per topic."""
    out = np.zeros(snapshot.n_ratings)
    topic_of_rating = snapshot.item_topic[snapshot.item_idx]
    for topic in pd.unique(topic_of_rating):
        rows = np.flatnonzero(topic_of_rating == topic)
        users, inverse = np.unique(snapshot.user_idx[rows], return_inverse=True)
        levels = rater.trust_levels(observer, snapshot.user_ids[users], str(topic), at=at)
        out[rows] = levels[inverse]
    return out


def _per_review(frame: pd.DataFrame | None, review_ids: np.ndarray, column: str) -> npt.NDArray[np.float64]:
    if frame is None or frame.empty or column not in frame:
        return np.full(review_ids.shape[0], np.nan)
    series = frame.set_index("review_id")[column]
    return np.asarray(pd.Series(review_ids).map(series).to_numpy(dtype=float), dtype=np.float64)


def _vote_counts(votes: pd.DataFrame | None, review_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if votes is None or votes.empty:
        zeros = np.zeros(review_ids.shape[0])
        return zeros, zeros.copy()
    helpful = votes["helpful"].astype(bool)
    h = votes[helpful].groupby("review_id").size()
    u = votes[~helpful].groupby("review_id").size()
    ids = pd.Series(review_ids)
    return ids.map(h).fillna(0).to_numpy(float), ids.map(u).fillna(0).to_numpy(float)


@dataclass(slots=True)
class RankingInputs:
    """What the global step (:func:`ranking_inputs`) gathers: the snapshot (reviews in ``(created_at, id)``
    order), the fusion's per-rating inputs over all items and the per-item kernel's context."""

    snapshot: RatingSnapshot
    fusion: FusionInputs
    ctx: RankContext
    observer: str


def ranking_inputs(
    frames: dict[str, pd.DataFrame],
    *,
    observer: str | None = None,
    at: float | None = None,
    settings: Settings | None = None,
    reliability: ReliabilityResult | None = None,
    scores: pd.DataFrame | None = None,
    rater: Rater | None = None,
    integrity: IntegrityResult | FusionEvidence | None = None,
    use_integrity: bool = True,
) -> RankingInputs:
    """The global step of :func:`rank_frames` (same parameters): the snapshot, the reliability fit, the
    observer's trust in the author of every rating, the integrity engine's evidence and groups, the text
    engine's fake probabilities, and :class:`RankContext` (``alpha_ref`` over all raters, the prior, the
    mean rating over all ratings, the settings, the clock)."""
    from truescore.reliability import fit as fit_reliability
    from truescore.trust import Rater as TrustRater

    cfg = settings if settings is not None else default_settings()
    observer = observer or cfg.trust.baseline_observer_id
    now = time.time() if at is None else float(at)
    reviews = frames["reviews"]
    if reviews.empty:
        raise ValueError("no reviews to rank")
    snapshot = snapshot_from_frame(reviews)
    if reliability is None:
        reliability = fit_reliability(snapshot, cfg)
    elif reliability.n_users != snapshot.n_users or reliability.n_items != snapshot.n_items:
        raise ValueError("the reliability fit does not match these reviews; refit it")
    if rater is None:
        empty = pd.DataFrame(columns=["truster_id", "trustee_id", "domain", "level"])
        rater = TrustRater.from_frames(frames.get("trust", empty), reviews, frames.get("votes"), frames.get("flags"),
                                       frames.get("items"), frames.get("users"), settings=cfg.trust,
                                       personal=cfg.personal)
    trust = trust_per_rating(rater, snapshot, observer, at=now)
    fake = _per_review(scores, snapshot.review_ids, "fake_probability")
    evidence, group, labels = None, None, None
    if use_integrity:
        if integrity is None:
            integrity = _integrity(snapshot, frames, reliability, cfg)
        if isinstance(integrity, FusionEvidence):
            if integrity.evidence.shape[0] != snapshot.n_ratings:
                raise ValueError("the integrity evidence does not match these reviews; score them again")
            evidence, group, labels = integrity.evidence, integrity.group, integrity.labels
        else:
            evidence, group, labels = integrity_for_fusion(integrity)
    prior = item_prior(reliability)
    inputs = FusionInputs(
        item_idx=snapshot.item_idx, user_idx=snapshot.user_idx, rating=snapshot.rating,
        created_at=snapshot.created_at, n_items=snapshot.n_items, n_users=snapshot.n_users,
        reliability=reliability.reliability, bias=reliability.bias, fake_probability=fake, trust=trust,
        prior_mean=prior[0], prior_precision=prior[1],
        review_ids=snapshot.review_ids, item_ids=snapshot.item_ids, user_ids=snapshot.user_ids,
        integrity=evidence, group=group, group_labels=labels,
    )
    ctx = RankContext(fusion_context(inputs, cfg.ranking, cfg.integrity), cfg.ranking, now)
    return RankingInputs(snapshot, inputs, ctx, observer)


#: smallest between-item variance of the moment prior (normalised scale): a prior sd of at least 0.01
_MIN_PRIOR_VARIANCE = 1e-4


def item_prior(reliability: ReliabilityResult) -> tuple[float, float]:
    """The item prior ``N(mu0, 1/tau0)`` the fusion starts from: the fit's own (VB, empirical Bayes), or, for a
    fit without one (the seed's torch model is a plain likelihood: ``tau0`` is NaN), the moment estimate
    over the rated items' fitted means ``m_i``: ``mu0 = mean(m_i)``, ``tau0 = 1 / max(var(m_i), 1e-4)``."""
    h = reliability.hyper
    if np.isfinite(h.mu0) and np.isfinite(h.tau0) and h.tau0 > 0:
        return float(h.mu0), float(h.tau0)
    means = reliability.item_mean[(reliability.item_n_ratings > 0) & np.isfinite(reliability.item_mean)]
    if means.size == 0:
        return 0.5, 1.0 / _MIN_PRIOR_VARIANCE
    return float(means.mean()), 1.0 / max(float(means.var()), _MIN_PRIOR_VARIANCE)


def rank_frames(
    frames: dict[str, pd.DataFrame],
    *,
    observer: str | None = None,
    at: float | None = None,
    settings: Settings | None = None,
    reliability: ReliabilityResult | None = None,
    scores: pd.DataFrame | None = None,
    rater: Rater | None = None,
    integrity: IntegrityResult | FusionEvidence | None = None,
    use_integrity: bool = True,
) -> RankingResult:
    """Fuse, score and rank from event frames (``reviews`` required; ``votes``, ``flags``, ``trust``,
    ``items``, ``users`` optional; column names as the store's frames).

    Parameters
    ----------
    observer : str, optional
        Whose trust weighs the reviewers; default the baseline observer (the public view).
    at : float, optional
        The clock (epoch seconds) for trust expiry and the trend; default now.
    settings : Settings, optional
        Every engine's section; default the documented defaults (:func:`~truescore.config.default_settings`).
        The rank job (:func:`truescore.jobs.rank_store`) passes the configured ones.
    reliability : ReliabilityResult, optional
        A fit of the same snapshot; fitted here (closed-form VB) when absent.
    scores : DataFrame, optional
        Text scores ``review_id, quality, fake_probability, sentiment``; unscored reviews use the
        configured prior.
    rater : Rater, optional
        A trust engine over the same events; built here when absent.
    integrity : IntegrityResult or FusionEvidence, optional
        The integrity engine's result over the same snapshot, or the evidence and groups the fusion
        reads from it (as the score job stores them); computed here when absent (metadata only, no text
        models) unless ``use_integrity=False``.
    """
    cfg = settings if settings is not None else default_settings()
    reviews = frames["reviews"]
    got = ranking_inputs(frames, observer=observer, at=at, settings=cfg, reliability=reliability, scores=scores,
                         rater=rater, integrity=integrity, use_integrity=use_integrity)
    snapshot, inputs, ctx = got.snapshot, got.fusion, got.ctx
    helpful, unhelpful = _vote_counts(frames.get("votes"), snapshot.review_ids)
    flags = frames.get("flags")
    flagged = (pd.Index(snapshot.review_ids).isin(flags["review_id"]) if flags is not None
               and not flags.empty else np.zeros(snapshot.n_ratings, dtype=bool))
    by_id = reviews.set_index("id")
    incent = pd.Series(snapshot.review_ids).map(by_id["is_incentivized"]) if "is_incentivized" in by_id else None
    signals = ReviewSignals(
        sentiment=_per_review(scores, snapshot.review_ids, "sentiment"),
        quality=_per_review(scores, snapshot.review_ids, "quality"),
        incentivized=(incent.fillna(False).to_numpy(bool) if incent is not None
                      else np.zeros(snapshot.n_ratings, dtype=bool)),
        helpful=helpful, unhelpful=unhelpful, flagged=flagged,
    )
    part, love = rank_items(item_rows(inputs, ctx.fusion, cfg.ranking), signals, snapshot.item_min,
                            snapshot.item_max, ctx)
    products = product_rankings(snapshot, part, love, cfg.ranking)
    return RankingResult(snapshot, fused_quality(inputs, ctx.fusion, part), love, products, got.observer, cfg.ranking)


def _integrity(snapshot: RatingSnapshot, frames: dict[str, pd.DataFrame], reliability: ReliabilityResult,
               cfg: Settings) -> IntegrityResult:
    from truescore.integrity import IntegrityInputs, integrity_scores

    users = frames.get("users")
    created = None
    if users is not None and len(users):
        ser = pd.Series(users["created_at"].to_numpy(float), index=users["id"].to_numpy(object))
        created = ser[~ser.index.duplicated()].reindex(pd.Index(snapshot.user_ids)).to_numpy(float)
    inp = IntegrityInputs.from_snapshot(snapshot, user_created_at=created, reliability_lo=reliability.reliability_lo)
    return integrity_scores(inp, cfg.integrity, cfg.ranking)


@dataclass(frozen=True, slots=True)
class FusionEvidence:
    """What the fusion reads of the integrity engine, per rating of a snapshot (:func:`integrity_for_fusion`).

    Attributes
    ----------
    evidence : float array
        Detector evidence in [0, 1] (noisy-OR of ring, cohort and near-duplicate evidence).
    group : int array
        Detected group (ring, or cohort on an item) of each rating, -1 for none.
    labels : dict
        Group id -> description (shown in the explanation of a capped rating).
    """

    evidence: np.ndarray
    group: np.ndarray
    labels: dict[int, str]


def integrity_for_fusion(result: IntegrityResult) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Per rating: the detector evidence the fusion uses (noisy-OR of ring, cohort and near-duplicate
    evidence; bursts are the fusion's own factor, and change points are left out because a genuine change
    looks the same: in the fusion they only delayed real changes), the group (ring id, or a cohort on an
    item, -1 for none) and the groups' descriptions."""
    ev = result.review_evidence
    keep = np.ones(result.review_suspicion.shape[0])
    for key in ("ring", "cohort", "duplicate"):
        keep *= 1.0 - np.clip(ev[key], 0.0, 1.0)
    group = result.rings.review_ring.copy()
    labels = {r.ring_id: r.describe() for r in result.rings.rings}
    cohort = (ev["cohort"] > 0) & (group < 0)
    if cohort.any():
        offset = len(result.rings.rings)
        codes, inv = np.unique(result.cohort.cohort[cohort], return_inverse=True)
        group[cohort] = offset + inv
        days = result.cohort.bucket_days
        for k in range(codes.size):
            labels[offset + k] = f"cohort of accounts created within the same {days:g} days"
    return 1.0 - keep, group, labels


def fusion_groups(result: IntegrityResult) -> tuple[np.ndarray, list[str | None], dict[str, str]]:
    """Per review: the detector evidence the fusion reads, the detected group as a stable key (``"ring-3"``
    as in the ``rings`` table, ``"cohort-2"``; None for none), and each group's description."""
    evidence, group, labels = integrity_for_fusion(result)
    n_rings = len(result.rings.rings)

    def key(g: int) -> str:
        return f"ring-{g + 1}" if g < n_rings else f"cohort-{g - n_rings + 1}"

    keys = [None if g < 0 else key(int(g)) for g in group.tolist()]
    return evidence, keys, {key(g): text for g, text in labels.items()}


def product_rankings(snapshot: RatingSnapshot, fused: ItemFusion, love: list[LoveScore | None],
                     settings: RankingSettings) -> list[ProductRanking]:
    """Every item's line on its own rating scale, from the kernel's per-item results (in snapshot item order)."""
    span = snapshot.item_max - snapshot.item_min
    lo = snapshot.item_min
    lower = fused.mean - settings.lower_bound_z * fused.sd
    return [
        ProductRanking(
            item_id=str(snapshot.item_ids[k]), topic=str(snapshot.item_topic[k]),
            fused_mean=float(lo[k] + fused.mean[k] * span[k]), fused_sd=float(fused.sd[k] * span[k]),
            lower_bound=float(lo[k] + lower[k] * span[k]), n_eff=float(fused.n_eff[k]),
            plain_mean=float(lo[k] + fused.plain_mean[k] * span[k]),
            bayes_average=float(lo[k] + fused.bayes_average[k] * span[k]),
            n_reviews=int(fused.n_ratings[k]), love=love[k], scale_min=float(lo[k]),
            scale_max=float(snapshot.item_max[k]),
        )
        for k in range(snapshot.n_items)
    ]

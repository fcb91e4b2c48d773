"""The love score: one 0-100 number for "genuine product love" (seed 004's product ranking).

Five components, each in [0, 1], from the three scores every review carries (quality ``Q_j``, fake
probability ``p_j``, sentiment ``S_j``) and its metadata. Let ``r_j`` be the normalised rating and the
review's *satisfaction* ``s_j = (r_j + S_j) / 2`` (``s_j = r_j`` when there is no sentiment). A review
is *organic* when it is not incentivized and ``p_j < genuine_threshold``.

1. **organic quality**: satisfaction of the organic reviews, authenticity-weighted and shrunk toward
   neutral with ``m = love_prior_reviews`` pseudo-reviews:
   ``(sum_O (1-p_j) s_j + 0.5 m) / (sum_O (1-p_j) + m)``;
2. **engagement quality**: the mean of the helpfulness share ``(h+1)/(h+u+2)`` (helpful ``h`` and
   unhelpful ``u`` votes, Laplace-smoothed) and the mean review quality ``Q_j`` (0.5 when unscored);
3. **authenticity**: ``(share of reviews with p < threshold + mean(1 - p)) / 2``, times
   ``1 - share_incentivized / 2``;
4. **diversity** of the organic reviews: ``n/(n+3) * (kish + (1 - burst_share)) / 2`` over the ``n``
   organic reviews, where ``kish = (sum w)^2 / (n sum w^2)`` is the effective share of independent
   voices under the fused weights ``w`` and ``burst_share`` the largest share of them inside one burst
   window (not a few accounts, not one burst); 0 without organic reviews;
5. **trend**: ``0.5 + 0.5 tanh(gain * (recent - older))``, the mean organic satisfaction of the last
   ``trend_recent_days`` against the earlier one (0.5 when either side is empty).

``love = 100 * sum_k c_k weight_k / sum_k weight_k + adjustments``, clipped to [0, 100], where the
adjustments are: + ``power_user_boost`` when at least two trusted power users (baseline trust >=
``power_user_trust``, >= ``power_user_min_reviews`` reviews) rate it 4.5/5 or more; - ``burst_penalty``
when the burst detector damped some of its ratings; - ``flagged_penalty`` when moderators flagged at
least 10% of its reviews. Tiers: High >= 70, Medium >= 40, Low >= 15, else Skip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from truescore.config import RankingSettings

__all__ = ["LoveInputs", "LoveScore", "love_scores", "tier_of"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

COMPONENTS = ("organic_quality", "engagement_quality", "authenticity", "diversity", "trend")
DAY = 86400.0


@dataclass(slots=True)
class LoveInputs:
    """Per-review arrays (one entry per review) and the item count.

    ``fake_probability``, ``sentiment`` and ``quality`` may hold NaN for unscored reviews;
    ``fused_weight`` and ``burst`` come from :func:`truescore.ranking.fusion.fuse`.
    """

    item_idx: IntArray
    user_idx: IntArray
    rating: FloatArray
    created_at: FloatArray
    fake_probability: FloatArray
    sentiment: FloatArray
    quality: FloatArray
    incentivized: BoolArray
    helpful: FloatArray
    unhelpful: FloatArray
    flagged: BoolArray
    trust: FloatArray
    reviewer_reviews: FloatArray
    fused_weight: FloatArray
    burst: FloatArray
    n_items: int
    now: float
    item_min: FloatArray
    item_max: FloatArray


@dataclass(slots=True)
class LoveScore:
    """One product's love score with everything behind it."""

    score: float
    tier: str
    components: dict[str, float]
    raw: dict[str, float | int | None]
    adjustments: list[dict[str, float | str]] = field(default_factory=list)
    explanation: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def tier_of(score: float, settings: RankingSettings) -> str:
    if score >= settings.tier_high:
        return "High"
    if score >= settings.tier_medium:
        return "Medium"
    if score >= settings.tier_low:
        return "Low"
    return "Skip"


def _max_window_share(times: FloatArray, window: float) -> float:
    if times.size == 0:
        return 0.0
    t = np.sort(times)
    hi = np.searchsorted(t, t + window, side="right")
    return float((hi - np.arange(t.size)).max()) / t.size


def _component_scores(inp: LoveInputs, rows: IntArray, settings: RankingSettings) -> tuple[
        dict[str, float], dict[str, float | int | None]]:
    r = inp.rating[rows]
    p = np.where(np.isfinite(inp.fake_probability[rows]), inp.fake_probability[rows], 0.0)
    sent = inp.sentiment[rows]
    sat = np.where(np.isfinite(sent), 0.5 * (r + sent), r)
    incent = inp.incentivized[rows]
    organic = (~incent) & (p < settings.genuine_threshold)
    m = settings.love_prior_reviews
    w_org = (1.0 - p) * organic
    organic_quality = float((np.sum(w_org * sat) + 0.5 * m) / (np.sum(w_org) + m))
    h, u = inp.helpful[rows], inp.unhelpful[rows]
    helpful_share = float(np.mean((h + 1.0) / (h + u + 2.0)))
    q = inp.quality[rows]
    mean_quality = float(np.nanmean(q)) if np.isfinite(q).any() else 0.5
    engagement = 0.5 * helpful_share + 0.5 * mean_quality
    share_genuine = float(np.mean(p < settings.genuine_threshold))
    authenticity = (0.5 * share_genuine + 0.5 * float(np.mean(1.0 - p))) * (1.0 - 0.5 * float(np.mean(incent)))
    n = rows.size
    n_org = int(organic.sum())
    w = inp.fused_weight[rows][organic]
    kish = float(w.sum() ** 2 / (n_org * np.sum(w**2))) if np.sum(w**2) > 0 else 0.0
    burst_share = _max_window_share(inp.created_at[rows][organic], settings.burst_window_hours * 3600.0)
    burst_share = burst_share if n_org >= settings.burst_min_ratings else 0.0
    diversity = n_org / (n_org + 3.0) * 0.5 * (kish + (1.0 - burst_share))
    recent = inp.created_at[rows] >= inp.now - settings.trend_recent_days * DAY
    if (organic & recent).any() and (organic & ~recent).any():
        delta = float(sat[organic & recent].mean() - sat[organic & ~recent].mean())
        trend = 0.5 + 0.5 * float(np.tanh(settings.trend_gain * delta))
    else:
        trend = 0.5
    lo, hi = inp.item_min[inp.item_idx[rows[0]]], inp.item_max[inp.item_idx[rows[0]]]
    stars = lo + r * (hi - lo)
    raw: dict[str, float | int | None] = {
        "review_count": int(n),
        "average_rating": float(stars.mean()),
        "organic_average_rating": float(stars[organic].mean()) if organic.any() else None,
        "organic_ratio": float(organic.mean()),
        "share_negative": float(np.mean(r <= 0.25)),
        "share_incentivized": float(np.mean(incent)),
        "mean_fake_probability": float(p.mean()),
        "helpful_votes": int(h.sum()),
        "unhelpful_votes": int(u.sum()),
    }
    comps = dict(zip(COMPONENTS, (organic_quality, engagement, authenticity, diversity, trend), strict=True))
    return comps, raw


def _adjustments(inp: LoveInputs, rows: IntArray, settings: RankingSettings) -> list[dict[str, float | str]]:
    out: list[dict[str, float | str]] = []
    power = (inp.trust[rows] >= settings.power_user_trust) & (
        inp.reviewer_reviews[rows] >= settings.power_user_min_reviews) & (inp.rating[rows] >= 0.875)
    if power.sum() >= 2:
        out.append({"name": "trusted power users love it", "effect": settings.power_user_boost,
                    "detail": f"{int(power.sum())} trusted power users rate it 4.5/5 or more"})
    damped = inp.burst[rows] < 1.0
    if damped.any():
        out.append({"name": "review burst damped", "effect": -settings.burst_penalty,
                    "detail": f"{int(damped.sum())} ratings arrived in an unusual burst"})
    flagged = float(np.mean(inp.flagged[rows]))
    if flagged >= 0.1:
        out.append({"name": "flagged by moderators", "effect": -settings.flagged_penalty,
                    "detail": f"{flagged:.0%} of its reviews were flagged"})
    return out


def _explain(comps: dict[str, float], raw: dict[str, float | int | None], adjustments: list[dict[str, float | str]],
             score: float, tier: str) -> str:
    best = max(comps, key=lambda k: comps[k])
    worst = min(comps, key=lambda k: comps[k])
    organic_avg = raw["organic_average_rating"]
    organic_txt = f"{organic_avg:.2f}" if isinstance(organic_avg, float) else "n/a"
    text = (
        f"Love score {score:.0f}/100 ({tier}) from {raw['review_count']} reviews averaging "
        f"{raw['average_rating']:.2f}; organic reviews ({raw['organic_ratio']:.0%} of all) average {organic_txt}. "
        f"Strongest signal: {best.replace('_', ' ')} ({comps[best]:.2f}); weakest: "
        f"{worst.replace('_', ' ')} ({comps[worst]:.2f})."
    )
    if adjustments:
        text += " Adjusted for: " + "; ".join(f"{a['name']} ({float(a['effect']):+.0f})" for a in adjustments) + "."
    return text


def love_scores(inputs: LoveInputs, settings: RankingSettings | None = None) -> list[LoveScore | None]:
    """The love score of every item (None for an item without reviews)."""
    if settings is None:
        settings = RankingSettings()
    weights = np.array([settings.love_weight_organic, settings.love_weight_engagement,
                        settings.love_weight_authenticity, settings.love_weight_diversity, settings.love_weight_trend])
    if weights.sum() <= 0:
        raise ValueError("ranking.love_weight_* must not all be zero")
    order = np.argsort(inputs.item_idx, kind="stable")
    starts = np.searchsorted(inputs.item_idx[order], np.arange(inputs.n_items), side="left")
    ends = np.searchsorted(inputs.item_idx[order], np.arange(inputs.n_items), side="right")
    out: list[LoveScore | None] = []
    for k in range(inputs.n_items):
        rows = order[starts[k]:ends[k]]
        if rows.size == 0:
            out.append(None)
            continue
        comps, raw = _component_scores(inputs, rows, settings)
        adjustments = _adjustments(inputs, rows, settings)
        base = 100.0 * float(np.dot(weights, [comps[c] for c in COMPONENTS]) / weights.sum())
        score = float(np.clip(base + sum(float(a["effect"]) for a in adjustments), 0.0, 100.0))
        tier = tier_of(score, settings)
        out.append(LoveScore(score=score, tier=tier, components=comps, raw=raw, adjustments=adjustments,
                             explanation=_explain(comps, raw, adjustments, score, tier)))
    return out

"""The love score on hand-built products whose components are worked out here from docs/ranking.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from truescore.config import load_settings
from truescore.ranking import LoveInputs, love_scores, tier_of

DAY = 86400.0
NOW = 1_800_000_000.0


def product(n_items: int = 1, **cols) -> LoveInputs:
    base = {
        "rating": [1.0, 0.75, 0.0, 1.0],
        "sentiment": [0.9, 0.7, 0.1, np.nan],
        "fake_probability": [0.1, 0.2, 0.0, 0.9],
        "incentivized": [False, False, False, True],
        "quality": [0.8, 0.6, 0.4, np.nan],
        "helpful": [3, 0, 1, 0],
        "unhelpful": [1, 0, 1, 2],
        "created_at": [NOW - 400 * DAY, NOW - 300 * DAY, NOW - 10 * DAY, NOW - 5 * DAY],
    }
    base.update(cols)
    n = len(base["rating"])
    arr = {k: np.asarray(v, dtype=bool if k == "incentivized" else float) for k, v in base.items()}
    return LoveInputs(
        item_idx=np.asarray(cols.get("item_idx", np.zeros(n)), dtype=np.int64), user_idx=np.arange(n),
        rating=arr["rating"], created_at=arr["created_at"], fake_probability=arr["fake_probability"],
        sentiment=arr["sentiment"], quality=arr["quality"], incentivized=arr["incentivized"],
        helpful=arr["helpful"], unhelpful=arr["unhelpful"],
        flagged=np.asarray(cols.get("flagged", np.zeros(n)), dtype=bool),
        trust=np.asarray(cols.get("trust", np.zeros(n)), dtype=float),
        reviewer_reviews=np.asarray(cols.get("reviewer_reviews", np.ones(n)), dtype=float),
        fused_weight=np.asarray(cols.get("fused_weight", np.ones(n)), dtype=float),
        burst=np.asarray(cols.get("burst", np.ones(n)), dtype=float),
        n_items=n_items, now=NOW, item_min=np.ones(n_items), item_max=np.full(n_items, 5.0),
    )


def test_components_match_the_worked_example() -> None:
    settings = load_settings().ranking
    (love,) = love_scores(product(), settings)
    # satisfaction s = (r + S)/2, or r without sentiment: [0.95, 0.725, 0.05, 1.0]
    # organic = not incentivized and p < 0.5: the first three, weights 1 - p = 0.9, 0.8, 1.0
    organic = (0.9 * 0.95 + 0.8 * 0.725 + 1.0 * 0.05 + 0.5 * 5) / (2.7 + 5)
    helpful_share = np.mean([4 / 6, 1 / 2, 2 / 4, 1 / 4])
    engagement = 0.5 * helpful_share + 0.5 * np.mean([0.8, 0.6, 0.4])
    authenticity = (0.5 * 0.75 + 0.5 * 0.7) * (1 - 0.5 * 0.25)
    diversity = 3 / 6 * 0.5 * (1.0 + 1.0)  # 3 organic reviews, equal weights, too few to be a burst
    trend = 0.5 + 0.5 * math.tanh(2.0 * (0.05 - (0.95 + 0.725) / 2))
    expected = {"organic_quality": organic, "engagement_quality": engagement, "authenticity": authenticity,
                "diversity": diversity, "trend": trend}
    for name, value in expected.items():
        assert love.components[name] == pytest.approx(value), name
    score = 100 * (0.35 * organic + 0.15 * engagement + 0.2 * authenticity + 0.15 * diversity + 0.15 * trend)
    assert love.score == pytest.approx(score)
    assert love.tier == "Medium" and love.adjustments == []
    assert love.raw["review_count"] == 4
    assert love.raw["average_rating"] == pytest.approx(3.75)
    assert love.raw["organic_average_rating"] == pytest.approx((5 + 4 + 1) / 3)
    assert love.raw["organic_ratio"] == pytest.approx(0.75)
    assert love.raw["share_negative"] == pytest.approx(0.25)
    assert "Love score" in love.explanation and "trend" in love.explanation


def test_adjustments_and_their_effects() -> None:
    settings = load_settings().ranking
    (plain,) = love_scores(product(), settings)
    (boosted,) = love_scores(product(trust=[0.9, 0.9, 0, 0], reviewer_reviews=[50, 50, 1, 1],
                                     rating=[1.0, 0.875, 0.0, 1.0]), settings)
    names = [a["name"] for a in boosted.adjustments]
    assert names == ["trusted power users love it"]
    (damped,) = love_scores(product(burst=[1, 1, 0.1, 0.1]), settings)
    assert damped.score == pytest.approx(plain.score - settings.burst_penalty)
    (flagged,) = love_scores(product(flagged=[0, 0, 1, 0]), settings)
    assert flagged.score == pytest.approx(plain.score - settings.flagged_penalty)
    assert "flagged by moderators" in flagged.explanation


def test_items_without_reviews_have_no_love_score() -> None:
    scores = love_scores(product(n_items=2), load_settings().ranking)
    assert scores[0] is not None and scores[1] is None


def test_genuine_enthusiasm_beats_incentivized_hype() -> None:
    settings = load_settings().ranking
    n = 12
    genuine = product(rating=[1.0] * n, sentiment=[0.95] * n, fake_probability=[0.05] * n, incentivized=[False] * n,
                      quality=[0.8] * n, helpful=[4] * n, unhelpful=[0] * n,
                      created_at=np.linspace(NOW - 700 * DAY, NOW - 1 * DAY, n))
    hype = product(rating=[1.0] * n, sentiment=[0.95] * n, fake_probability=[0.8] * n, incentivized=[True] * n,
                   quality=[0.3] * n, helpful=[0] * n, unhelpful=[3] * n,
                   created_at=np.linspace(NOW - 700 * DAY, NOW - 1 * DAY, n))
    (g,), (h,) = love_scores(genuine, settings), love_scores(hype, settings)
    assert g.score > h.score + 30
    assert g.tier == "High" and h.tier in ("Low", "Skip")


@pytest.mark.parametrize(("score", "tier"), [(70, "High"), (69.9, "Medium"), (40, "Medium"), (39, "Low"),
                                             (15, "Low"), (14.9, "Skip")])
def test_tiers(score: float, tier: str) -> None:
    assert tier_of(score, load_settings().ranking) == tier


def test_all_zero_weights_are_refused() -> None:
    settings = load_settings(ranking={f"love_weight_{k}": 0 for k in
                                      ("organic", "engagement", "authenticity", "diversity", "trend")}).ranking
    with pytest.raises(ValueError, match="love_weight"):
        love_scores(product(), settings)

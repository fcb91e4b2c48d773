"""Seed 003's worked example: Alice looking at laptop-xps15 (4.47 trust-weighted, 4.10 unweighted)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from truescore.config import TrustSettings
from truescore.domain import Item, Review, TrustEdge, User, UserRole, Vote
from truescore.trust import Rater, aggregate_rating_jsonld
from truescore.trust.factors import activity, aggregate, confidence_pct, helpfulness, recency

TOPIC = "reviews.public.technology.laptops"
NOW = datetime(2025, 6, 1, tzinfo=UTC)

# the seed's factor table: reviewer -> (rating, T, H, A, R)
TABLE = {
    "bob": (4.5, 1.00, 0.89, 0.36, 0.96),
    "carol": (2.0, 0.0, 0.5, 0.18, 0.88),
    "dave": (4.8, 0.72, 0.91, 0.56, 0.99),
    "eve": (5.0, 0.0, 0.5, 0.18, 0.92),
    "frank": (4.2, 0.90, 0.94, 1.00, 0.56),
}


def test_factor_table_gives_4_47_and_unweighted_4_10():
    cols = list(zip(*TABLE.values(), strict=True))
    rating, total, n, unweighted = aggregate(*cols)
    assert round(rating, 2) == 4.47
    assert total == pytest.approx(1.144, abs=1e-3)  # the seed sums weights rounded to 3 places
    assert n == 3
    assert round(unweighted, 2) == 4.10


def test_factor_formulas_reproduce_the_table_entries():
    # A: 3, 8 and 49+ reviews; the n + 1 form gives the seed's "1 review ~ 0.18"
    assert activity([1, 3, 8, 49, 500], 50) == pytest.approx([0.177, 0.354, 0.562, 1.0, 1.0], abs=1e-3)
    # H: 40/5, 100/10, 500/30 votes from equally trusted voters
    assert helpfulness([40, 100, 500], [5, 10, 30], 0.5, 0.1) == pytest.approx([0.889, 0.909, 0.943], abs=1e-3)
    # R with the default 730 days for Bob and Dave
    assert recency([30, 5], 730, 0.3) == pytest.approx([0.960, 0.993], abs=1e-3)
    # Frank's R = 0.56 at 540 days is exp(-540/931): with 730 days it would be 0.477
    assert recency([540], 931, 0.3)[0] == pytest.approx(0.56, abs=1e-3)
    assert recency([540], 730, 0.3)[0] == pytest.approx(0.477, abs=1e-3)
    # QRP-0002: one review of weight 0.9 -> ~13 %, ten of 0.5 -> 100 %
    assert confidence_pct(0.9, 1, 5.0, 10) == pytest.approx(13.4, abs=0.1)
    assert confidence_pct(5.0, 10, 5.0, 10) == 100.0


def build_events(n_frank: int = 50) -> dict[str, list]:
    """The scenario as events: edges, reviews (with activity history), votes, dates."""

    def ago(days: float) -> datetime:
        return NOW - timedelta(days=days)

    items = [Item("laptop-xps15", TOPIC, "Dell XPS 15")]
    reviews = []
    for name, (stars, *_rest) in TABLE.items():
        age = {"bob": 30, "carol": 90, "dave": 5, "eve": 60, "frank": 540}[name]
        reviews.append(Review(f"xps-{name}", "laptop-xps15", name, stars, ago(age)))
    history = {"bob": 2, "dave": 7, "frank": n_frank - 1}  # other laptop reviews within 24 months
    for name, k in history.items():
        for j in range(k):
            item = f"laptop-{name}-{j}"
            items.append(Item(item, TOPIC))
            reviews.append(Review(f"{item}-r", item, name, 4.0, ago(20 + 10 * j % 600)))
    # an old review outside the 24-month window does not count for A
    items.append(Item("laptop-ancient", TOPIC))
    reviews.append(Review("ancient-bob", "laptop-ancient", "bob", 3.0, ago(900)))
    # a review in another topic does not count for A either
    items.append(Item("pizza-1", "reviews.public.food"))
    reviews.append(Review("pizza-bob", "pizza-1", "bob", 5.0, ago(10)))

    votes = []
    voters = [f"v{k:02d}" for k in range(20)]
    tallies = {"bob": (40, 5), "dave": (100, 10), "frank": (500, 30), "carol": (2, 0), "eve": (1, 0)}
    for name, (good, bad) in tallies.items():
        own = [r.id for r in reviews if r.user_id == name and r.item_id.startswith("laptop")]
        own = [r for r in own if r != "ancient-bob"]
        for j in range(good + bad):
            review_id = own[j % len(own)]
            voter = voters[j // len(own)]
            votes.append(Vote(review_id, voter, j < good, ago(1)))
    trust = [
        TrustEdge("alice", "bob", TOPIC, 1.0, ago(100)),
        TrustEdge("bob", "dave", TOPIC, 0.72, ago(100)),
        TrustEdge("alice", "frank", TOPIC, 0.9, ago(100)),
        *[TrustEdge("alice", v, TOPIC, 0.8, ago(100)) for v in voters],
        # the operator root trusts Eve and Carol: the anonymous baseline sees them
        TrustEdge("operator", "eve", "reviews.public", 1.0, ago(100)),
        TrustEdge("operator", "carol", "reviews.public", 1.0, ago(100)),
    ]
    users = [User("operator", ago(1000), role=UserRole.OPERATOR)]
    return {"items": items, "reviews": reviews, "votes": votes, "trust": trust, "users": users}


SEED_HALF_LIFE = TrustSettings(topic_half_life_days={TOPIC: 931})


def test_same_scenario_from_events_reproduces_4_47_with_factors_from_the_engine():
    rater = Rater.from_events(**build_events(), settings=SEED_HALF_LIFE)
    result = rater.effective_rating("laptop-xps15", "alice", at=NOW)
    assert round(result.rating, 2) == 4.47
    assert round(result.unweighted_mean, 2) == 4.10
    assert result.contributing_reviews == 3 and result.total_reviews_considered == 5
    by_name = {c.reviewer: c for c in result.contributions}
    assert set(by_name) == {"bob", "dave", "frank"}  # Carol and Eve: no trust from Alice
    for name in by_name:
        _, t, h, a, r = TABLE[name]
        c = by_name[name]
        assert pytest.approx((t, h, a, r), abs=0.011) == (c.T, c.H, c.A, c.R), name
        assert c.weight == pytest.approx(c.T * c.H * c.A * c.R)
    assert by_name["dave"].top_intermediary_quid == "bob"
    assert by_name["dave"].path == ["alice", "bob", "dave"]
    assert by_name["bob"].top_intermediary_quid is None and by_name["bob"].path == ["alice", "bob"]
    assert result.total_weight == pytest.approx(1.146, abs=0.002)


def test_with_the_default_half_life_the_engine_says_4_49():
    # the seed's R = 0.56 for Frank's 540-day-old review is not exp(-540/730) = 0.477; with the
    # default half-life the same events give 4.49 (documented in docs/trust.md).
    rater = Rater.from_events(**build_events(), settings=TrustSettings())
    result = rater.effective_rating("laptop-xps15", "alice", at=NOW)
    frank = next(c for c in result.contributions if c.reviewer == "frank")
    assert pytest.approx(0.477, abs=1e-3) == frank.R
    assert round(result.rating, 2) == 4.49


def test_baseline_delta_confidence_polarization_and_display():
    rater = Rater.from_events(**build_events(), settings=SEED_HALF_LIFE)
    result = rater.effective_rating("laptop-xps15", "alice", at=NOW)
    # the operator trusts Eve (5.0) and Carol (2.0) in reviews.public: two steps up from laptops
    base = rater.anonymous_baseline_rating("laptop-xps15", at=NOW)
    assert result.anonymous_baseline_rating == pytest.approx(base.rating)
    assert {c.reviewer for c in base.contributions} == {"carol", "eve"}
    assert all(pytest.approx(0.64) == c.T for c in base.contributions)
    assert result.personalization_delta == pytest.approx(result.rating - base.rating)
    assert result.confidence_pct == pytest.approx(confidence_pct(result.total_weight, 3, 5.0, 10))
    assert 0 <= result.polarization < 0.3 and result.agreement == "trusted sources agree"
    assert base.agreement == "trusted sources split"  # 2.0 vs 5.0
    assert result.display.startswith("4.5 ± ") and result.display.endswith("based on 3 trusted reviews")
    doc = aggregate_rating_jsonld(base, item_name="Dell XPS 15")
    assert doc["@type"] == "AggregateRating" and doc["ratingCount"] == 2
    assert doc["ratingValue"] == round(base.rating, 2)
    assert (doc["bestRating"], doc["worstRating"]) == (5.0, 1.0)


def test_json_uses_seed_field_names():
    rater = Rater.from_events(**build_events(), settings=SEED_HALF_LIFE)
    payload = json.loads(json.dumps(rater.effective_rating("laptop-xps15", "alice", at=NOW).to_dict()))
    for key in (
        "rating",
        "total_weight",
        "contributing_reviews",
        "unweighted_mean",
        "anonymous_baseline_rating",
        "anonymous_baseline_total_weight",
        "personalization_delta",
        "confidence_pct",
        "polarization",
        "confidence_range",
        "display",
        "agreement",
        "contributions",
    ):
        assert key in payload, key
    contrib = payload["contributions"][0]
    for key in ("review_id", "reviewer", "rating", "T", "H", "A", "R", "weight", "top_intermediary_quid", "path"):
        assert key in contrib, key

"""Behaviour of the Rater: the reference's scenarios, the gaps it closes, the protocol extras, caching."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from truescore.config import TrustSettings
from truescore.domain import Flag, FlagReason, Item, Review, TrustEdge, User, UserRole, Vote
from truescore.trust import Rater

TECH = "reviews.public.technology"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
# the reference test-suite's fixture: 1-year half-life, saturation at 10 reviews
REF = TrustSettings(recency_half_life_days=365, activity_saturation=10)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


class World:
    """A small marketplace built event by event (like the reference's FakeClient)."""

    def __init__(self) -> None:
        self.items: list[Item] = [Item("P1", TECH), Item("P2", TECH), Item("PX", TECH)]
        self.reviews: list[Review] = []
        self.votes: list[Vote] = []
        self.trust: list[TrustEdge] = []
        self.flags: list[Flag] = []
        self.users: list[User] = []
        self._n = 0

    def review(
        self,
        who: str,
        rating: float,
        *,
        item: str = "P1",
        age: float = 30,
        lo: float = 1,
        hi: float = 5,
        verified: bool | None = None,
    ) -> str:
        self._n += 1
        rid = f"r{self._n}"
        self.reviews.append(Review(rid, item, who, rating, ago(age), lo, hi, verified_purchase=verified))
        return rid

    def activity(self, who: str, n: int) -> None:
        """``n - 1`` more reviews in the topic (the product review makes n)."""
        for j in range(n - 1):
            item = f"hist-{who}-{j}"
            self.items.append(Item(item, TECH))
            self.review(who, 3.0, item=item, age=100)

    def trusts(self, a: str, b: str, level: float, domain: str = TECH, **kw) -> None:
        self.trust.append(TrustEdge(a, b, domain, level, ago(200), **kw))

    def vote(self, voter: str, reviewer: str, helpful: bool) -> None:
        rid = next(r.id for r in self.reviews if r.user_id == reviewer)
        self.votes.append(Vote(rid, voter, helpful, ago(1)))

    def rater(self, s: TrustSettings = REF) -> Rater:
        return Rater.from_events(
            items=self.items,
            reviews=self.reviews,
            votes=self.votes,
            trust=self.trust,
            flags=self.flags,
            users=self.users,
            settings=s,
        )


def rate(world: World, observer: str = "alice", item: str = "P1", s: TrustSettings = REF, **kw):
    return world.rater(s).effective_rating(item, observer, at=NOW, **kw)


def by(result, name):
    return next(c for c in result.contributions if c.reviewer == name)


# ---------------------------------------------------------------------------------------------------
# the reference's behaviours
# ---------------------------------------------------------------------------------------------------


def test_no_reviews_gives_no_rating_not_zero():
    result = rate(World(), item="PX")
    assert result.rating is None and result.contributing_reviews == 0
    assert result.display == "no trusted reviews" and result.confidence_pct == 0


def test_single_trusted_review_returns_about_its_rating():
    w = World()
    w.review("bob", 4.0)
    w.activity("bob", 20)
    w.trusts("alice", "bob", 1.0)
    result = rate(w)
    assert result.contributing_reviews == 1 and result.rating == pytest.approx(4.0)


def test_untrusted_reviewer_gives_no_rating():
    w = World()
    w.review("unknown-person", 5.0)
    result = rate(w)
    assert result.rating is None and result.total_reviews_considered == 1
    assert result.unweighted_mean == pytest.approx(5.0)


def test_two_observers_disagree_by_at_least_1_5_on_a_split_product():
    w = World()
    w.review("bob", 5.0, age=10)
    w.review("carol", 2.0, age=10)
    w.activity("bob", 30)
    w.activity("carol", 30)
    w.trusts("alice", "bob", 1.0)
    w.trusts("dave", "carol", 1.0)
    rater = w.rater()
    alice = rater.effective_rating("P1", "alice", at=NOW).rating
    dave = rater.effective_rating("P1", "dave", at=NOW).rating
    assert alice >= 4.0 and dave <= 3.0 and alice - dave >= 1.5


def test_helpful_votes_raise_weight_and_unhelpful_lower_it():
    w = World()
    for name in ("ra", "rb", "rc"):
        w.review(name, 4.0)
        w.activity(name, 20)
        w.trusts("alice", name, 0.8)
    for v in ("v1", "v2", "v3", "v4", "v5"):
        w.trusts("alice", v, 0.9)
        w.vote(v, "ra", True)
        w.vote(v, "rb", False)
    result = rate(w)
    a, b, c = by(result, "ra"), by(result, "rb"), by(result, "rc")
    assert a.H == 1.0 and pytest.approx(0.1) == b.H and c.H == 0.5  # floor 0.1, neutral 0.5
    assert a.weight > c.weight > b.weight and a.weight > 2 * b.weight


def test_votes_count_by_the_observers_trust_in_the_voter():
    w = World()
    w.review("r", 4.0)
    w.trusts("alice", "r", 1.0)
    w.trusts("alice", "friend", 0.9)
    w.vote("friend", "r", True)
    w.vote("stranger1", "r", False)
    w.vote("stranger2", "r", False)
    assert by(rate(w), "r").H == 1.0  # strangers' votes weigh nothing for Alice


def test_voter_trust_uses_depth_3_not_5():
    w = World()
    w.review("r", 4.0)
    w.trusts("alice", "r", 1.0)
    chain = ["alice", "a1", "a2", "a3", "far"]  # far is 4 hops away
    for x, y in itertools.pairwise(chain):
        w.trusts(x, y, 1.0)
    w.vote("far", "r", False)
    w.vote("a2", "r", True)  # 2 hops: counts
    assert by(rate(w), "r").H == 1.0


def test_older_review_weighs_less_but_more_than_zero():
    w = World()
    w.review("bob", 5.0, age=10)
    w.review("carol", 3.0, age=400)
    for n in ("bob", "carol"):
        w.activity(n, 20)
        w.trusts("alice", n, 1.0)
    result = rate(w)
    assert by(result, "bob").R > by(result, "carol").R > 0
    assert pytest.approx(np.exp(-400 / 365)) == by(result, "carol").R
    assert by(result, "carol").weight > 0


def test_recency_floor_and_per_topic_half_life():
    w = World()
    w.review("bob", 5.0, age=3000)
    w.trusts("alice", "bob", 1.0)
    s = TrustSettings(topic_half_life_days={TECH: 180}, activity_window_days=3650)
    assert by(rate(w, s=s), "bob").R == 0.3


def test_more_activity_raises_a():
    w = World()
    w.review("veteran", 4.0, age=10)
    w.review("newbie", 4.0, age=10)
    w.activity("veteran", 50)
    for n in ("veteran", "newbie"):
        w.trusts("alice", n, 0.9)
    result = rate(w)
    assert by(result, "veteran").A == 1.0
    assert pytest.approx(np.log(2) / np.log(10)) == by(result, "newbie").A


def test_trust_only_in_the_parent_topic_gives_0_8_times_that_trust():
    w = World()
    w.items.append(Item("L1", TECH + ".laptops"))
    w.review("bob", 4.0, item="L1")
    w.trusts("alice", "bob", 0.9)  # in reviews.public.technology
    result = rate(w, item="L1")
    assert pytest.approx(0.72) == by(result, "bob").T
    assert by(result, "bob").trust_domain == TECH


def test_trust_in_a_sibling_topic_does_not_carry_over():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 1.0, domain="reviews.public.food")
    assert rate(w).rating is None


def test_observers_own_review_is_excluded():
    w = World()
    w.review("alice", 5.0, age=5)
    w.activity("alice", 10)
    result = rate(w)
    assert result.rating is None and result.total_reviews_considered == 0


def test_more_trusted_reviews_raise_total_weight():
    w = World()
    w.review("bob", 4.0, item="P1", age=10)
    w.trusts("alice", "bob", 1.0)
    for i in range(10):
        w.review(f"x{i}", 4.0, item="P2", age=10)
        w.trusts("alice", f"x{i}", 1.0)
    rater = w.rater()
    one = rater.effective_rating("P1", "alice", at=NOW)
    ten = rater.effective_rating("P2", "alice", at=NOW)
    assert ten.total_weight > one.total_weight
    assert ten.confidence_pct > one.confidence_pct


def test_mixed_scales_are_normalised():
    w = World()
    w.review("bob", 4.0, lo=0, hi=5)
    w.review("carol", 8.0, lo=0, hi=10)  # 4/5 and 8/10 are the same opinion
    w.review("dan", 4.0, lo=0, hi=5)  # the item's display scale is 0..5 (most common)
    for n in ("bob", "carol", "dan"):
        w.trusts("alice", n, 1.0)
    result = rate(w)
    assert result.rating == pytest.approx(4.0)
    assert by(result, "carol").rating == pytest.approx(4.0) and by(result, "carol").original_rating == 8.0
    assert (result.scale_min, result.scale_max) == (0, 5)


def test_tiny_stale_review_is_dropped():
    w = World()
    w.review("bob", 5.0, age=10)
    w.review("stale", 1.0, age=2000)
    w.activity("bob", 30)
    w.trusts("alice", "bob", 1.0)
    w.trusts("alice", "stale", 0.01)
    result = rate(w, s=TrustSettings(recency_half_life_days=365, activity_saturation=10, activity_window_days=3650))
    assert [c.reviewer for c in result.contributions] == ["bob"]


# ---------------------------------------------------------------------------------------------------
# the reference's gaps, closed
# ---------------------------------------------------------------------------------------------------


def test_best_path_not_first_path_and_top_intermediary():
    w = World()
    w.review("eve", 4.0)
    w.trusts("alice", "bob", 0.5)
    w.trusts("alice", "carl", 0.9)
    w.trusts("bob", "dan", 1.0)
    w.trusts("carl", "dan", 0.9)
    w.trusts("dan", "eve", 1.0)
    c = by(rate(w), "eve")
    assert pytest.approx(0.81) == c.T
    assert c.path == ["alice", "carl", "dan", "eve"] and c.top_intermediary_quid == "carl"
    assert c.top_intermediary == "carl"


def test_trust_method_returns_level_path_domain():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 0.9, domain="reviews.public")
    ans = w.rater().trust("alice", "bob", TECH + ".laptops")
    assert ans.level == pytest.approx(0.9 * 0.64) and ans.domain == "reviews.public" and ans.steps == 2
    assert ans.path == ["alice", "bob"]
    assert w.rater().trust("alice", "alice", TECH).level == 1.0


def test_expired_and_superseded_statements():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 1.0, valid_until=ago(1))
    assert rate(w).rating is None
    w2 = World()
    w2.review("bob", 4.0)
    w2.trusts("alice", "bob", 1.0)
    w2.trust.append(TrustEdge("alice", "bob", TECH, 0.0, ago(10)))  # later retraction wins
    assert rate(w2).rating is None


def test_superseded_review_is_replaced_by_its_edit():
    w = World()
    old = w.review("bob", 1.0, age=20)
    w.reviews.append(Review("edit", "P1", "bob", 5.0, ago(5), supersedes=old))
    w.trusts("alice", "bob", 1.0)
    result = rate(w)
    assert result.rating == pytest.approx(5.0) and result.total_reviews_considered == 1


def test_unknown_item_is_a_value_error():
    with pytest.raises(ValueError, match="item_id"):
        World().rater().effective_rating("nope", "alice", at=NOW)
    with pytest.raises(ValueError, match="topic"):
        World().rater().effective_rating("P1", "alice", topic="bad..topic", at=NOW)


# ---------------------------------------------------------------------------------------------------
# protocol extras
# ---------------------------------------------------------------------------------------------------


def test_flags_from_trusted_moderators_lower_weight_by_severity():
    w = World()
    rid = w.review("bob", 4.0)
    w.review("carl", 2.0)
    for n in ("bob", "carl"):
        w.trusts("alice", n, 1.0)
    w.trusts("alice", "mod", 0.6, domain="reviews.moderation")
    w.trusts("alice", "weakmod", 0.4, domain="reviews.moderation")
    w.flags.append(Flag(rid, "mod", FlagReason.FAKE, 2.0, ago(1)))
    w.flags.append(Flag(rid, "weakmod", FlagReason.SPAM, 4.0, ago(1)))  # trusted below 0.5: ignored
    result = rate(w)
    assert pytest.approx(1 - 0.25 * 2.0) == by(result, "bob").F
    assert by(result, "carl").F == 1.0
    clean = World()
    clean.reviews, clean.trust = w.reviews, w.trust
    assert by(rate(clean), "bob").weight == pytest.approx(2 * by(result, "bob").weight)


def test_verified_purchase_bootstrap_through_trust_in_the_retailer():
    w = World()
    w.users.append(User("shop", role=UserRole.RETAILER))
    w.review("stranger", 5.0, verified=True)
    w.review("other", 1.0, verified=False)
    w.trusts("alice", "shop", 0.8)
    result = rate(w)
    c = by(result, "stranger")
    assert pytest.approx(0.3 * 0.8) == c.T and c.trust_source == "verified_purchase"
    assert c.path == ["alice", "shop", "stranger"] and c.top_intermediary_quid == "shop"
    assert [x.reviewer for x in result.contributions] == ["stranger"]
    off = rate(w, s=TrustSettings(recency_half_life_days=365, activity_saturation=10, verified_purchase_bootstrap=0))
    assert off.rating is None


def test_optional_edge_decay():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 0.8)  # stated 200 days before NOW
    s = TrustSettings(edge_decay_half_life_days=200)
    assert pytest.approx(0.4) == by(rate(w, s=s), "bob").T
    assert pytest.approx(0.8) == by(rate(w), "bob").T


# ---------------------------------------------------------------------------------------------------
# caching and incremental updates
# ---------------------------------------------------------------------------------------------------


def test_one_search_per_observer_and_domain_serves_all_reviewers_and_voters():
    w = World()
    for i in range(30):
        w.review(f"u{i}", 4.0)
        w.trusts("alice", f"u{i}", 0.9)
        w.vote(f"u{(i + 1) % 30}", f"u{i}", True)
    rater = w.rater()
    rater.effective_rating("P1", "alice", at=NOW, with_baseline=False)
    assert rater.stats.searches == 1  # one domain with edges, one search
    rater.effective_rating("P1", "alice", at=NOW, with_baseline=False)
    assert rater.stats.searches == 1 and rater.stats.hits > 0


def test_new_edge_invalidates_only_searches_it_can_change_and_results_match_a_rebuild():
    w = World()
    w.review("eve", 4.0)
    w.trusts("alice", "bob", 0.5)
    w.trusts("bob", "eve", 1.0)
    w.trusts("zed", "yan", 1.0)
    rater = w.rater()
    before = rater.effective_rating("P1", "alice", at=NOW)
    rater.effective_rating("P1", "zed", at=NOW)
    assert pytest.approx(0.5) == by(before, "eve").T
    n0 = rater.stats.searches
    # an edge out of a node zed's search never reached: zed's cache survives, alice's too
    rater.add_trust_edge(TrustEdge("nobody", "eve", TECH, 1.0, ago(1)))
    assert rater.stats.invalidated == 0
    # an edge out of bob (reached by alice): alice's search is dropped, zed's stays
    rater.add_trust_edge(TrustEdge("bob", "carl", TECH, 1.0, ago(1)))
    rater.add_trust_edge(TrustEdge("carl", "eve", TECH, 1.0, ago(1)))
    rater.add_trust_edge(TrustEdge("alice", "bob", TECH, 0.9, ago(1)))
    assert rater.stats.invalidated == 1
    after = rater.effective_rating("P1", "alice", at=NOW)
    rater.effective_rating("P1", "zed", at=NOW)
    assert rater.stats.searches == n0 + 1
    w.trust += [
        TrustEdge("nobody", "eve", TECH, 1.0, ago(1)),
        TrustEdge("bob", "carl", TECH, 1.0, ago(1)),
        TrustEdge("carl", "eve", TECH, 1.0, ago(1)),
        TrustEdge("alice", "bob", TECH, 0.9, ago(1)),
    ]
    fresh = w.rater().effective_rating("P1", "alice", at=NOW)
    assert by(after, "eve").T == pytest.approx(0.9) == pytest.approx(by(fresh, "eve").T)
    assert after.rating == fresh.rating


def test_a_lowered_edge_is_seen_after_invalidation():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 1.0)
    rater = w.rater()
    assert by(rater.effective_rating("P1", "alice", at=NOW), "bob").T == 1.0
    rater.add_trust_edge(TrustEdge("alice", "bob", TECH, 0.2, ago(0)))
    assert pytest.approx(0.2) == by(rater.effective_rating("P1", "alice", at=NOW), "bob").T
    # an older statement arriving late does not override the newer one
    assert not rater.add_trust_edge(TrustEdge("alice", "bob", TECH, 1.0, ago(50)))


def test_cached_search_is_recomputed_when_an_edge_it_used_expires():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 1.0, valid_until=NOW + timedelta(days=1))
    rater = w.rater()
    assert rater.effective_rating("P1", "alice", at=NOW).rating == pytest.approx(4.0)
    later = NOW + timedelta(days=2)
    assert rater.effective_rating("P1", "alice", at=later).rating is None


def test_new_reviews_and_votes_are_seen():
    w = World()
    w.trusts("alice", "bob", 1.0)
    w.trusts("alice", "v", 1.0)
    rater = w.rater()
    assert rater.effective_rating("P1", "alice", at=NOW).rating is None
    rater.add_reviews([Review("n1", "P1", "bob", 2.0, ago(3))])
    assert rater.effective_rating("P1", "alice", at=NOW).rating == pytest.approx(2.0)
    rater.add_votes([Vote("n1", "v", False, ago(1))])
    assert pytest.approx(0.1) == by(rater.effective_rating("P1", "alice", at=NOW), "bob").H


# ---------------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------------

names = [f"n{i}" for i in range(7)]
edge_st = st.lists(
    st.tuples(
        st.sampled_from(names),
        st.sampled_from(names),
        st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0]),
        st.sampled_from([TECH, "reviews.public", "reviews.public.food"]),
    ),
    max_size=25,
)
review_st = st.lists(
    st.tuples(st.sampled_from(names[1:]), st.floats(1, 5), st.integers(0, 1500), st.sampled_from([5.0, 10.0])),
    min_size=1,
    max_size=8,
)
vote_st = st.lists(st.tuples(st.sampled_from(names), st.integers(0, 7), st.booleans()), max_size=12)


def _world(edges, reviews, votes) -> World:
    w = World()
    # a trusted core so that most examples have contributors; the random edges come on top
    w.trusts("n0", "n1", 0.9)
    w.trusts("n0", "n2", 0.7, domain="reviews.public")
    w.review("n1", 3.0, age=30)
    for a, b, lv, dom in edges:
        if a != b:
            w.trusts(a, b, lv, domain=dom)
    for who, stars, age, hi in reviews:
        w.review(who, stars * hi / 5.0, age=age, lo=1.0, hi=hi)
    for voter, k, helpful in votes:
        w.votes.append(Vote(w.reviews[k % len(w.reviews)].id, voter, helpful, ago(0)))
    return w


@settings(max_examples=60, deadline=None)
@given(edge_st, review_st, vote_st)
def test_rating_lies_within_contributors_range_and_factors_in_bounds(edges, reviews, votes):
    result = rate(_world(edges, reviews, votes), observer="n0", s=TrustSettings())
    for c in result.contributions:
        assert 0 < c.T <= 1 and 0.1 <= c.H <= 1 and 0 < c.A <= 1 and 0.3 <= c.R <= 1
        assert c.weight >= 0.01
    if result.contributions:
        lo = min(c.rating for c in result.contributions)
        hi = max(c.rating for c in result.contributions)
        assert lo - 1e-9 <= result.rating <= hi + 1e-9
        assert 0 <= result.polarization <= 1 and 0 <= result.confidence_pct <= 100
    else:
        assert result.rating is None
    event(f"contributors: {min(len(result.contributions), 3)}")


@settings(max_examples=60, deadline=None)
@given(
    edge_st,
    st.tuples(
        st.sampled_from(names),
        st.sampled_from(names),
        st.sampled_from([0.3, 0.8, 1.0]),
        st.sampled_from([TECH, "reviews.public"]),
    ),
)
def test_adding_an_edge_never_lowers_anyones_topical_trust(edges, extra):
    w = _world(edges, [("n1", 3.0, 1, 5.0)], [])
    a, b, lv, dom = extra
    topic = TECH + ".laptops"
    before = w.rater()
    known = {(e.truster_id, e.trustee_id, e.domain) for e in w.trust}
    if a == b or (a, b, dom) in known:
        return
    w.trusts(a, b, lv, domain=dom)
    after = w.rater()
    for target in names:
        t0 = before.trust("n0", target, topic, at=NOW).level
        t1 = after.trust("n0", target, topic, at=NOW).level
        assert 0 <= t0 <= t1 <= 1


def test_cached_baseline_follows_new_edges_and_votes():
    w = World()
    w.review("bob", 4.0)
    w.review("carl", 2.0)
    w.trusts("alice", "bob", 1.0)
    w.trusts("alice", "v", 1.0)
    w.trusts("operator", "v", 1.0)
    rater = w.rater()
    assert rater.effective_rating("P1", "alice", at=NOW).anonymous_baseline_rating is None
    rater.add_trust_edge(TrustEdge("operator", "carl", TECH, 1.0, ago(1)))
    first = rater.effective_rating("P1", "alice", at=NOW)
    assert first.anonymous_baseline_rating == pytest.approx(2.0)
    rater.add_trust_edge(TrustEdge("operator", "bob", TECH, 1.0, ago(1)))
    assert rater.effective_rating("P1", "alice", at=NOW).anonymous_baseline_rating == pytest.approx(3.0)
    rater.add_votes([Vote("r2", "v", False, ago(1))])  # carl's review found unhelpful by a voter both trust
    again = rater.effective_rating("P1", "alice", at=NOW)
    assert again.anonymous_baseline_rating > 3.0
    fresh = Rater.from_events(
        items=w.items,
        reviews=w.reviews,
        votes=[Vote("r2", "v", False, ago(1))],
        trust=[
            *w.trust,
            TrustEdge("operator", "carl", TECH, 1.0, ago(1)),
            TrustEdge("operator", "bob", TECH, 1.0, ago(1)),
        ],
        settings=REF,
    ).effective_rating("P1", "alice", at=NOW)
    assert again.anonymous_baseline_rating == pytest.approx(fresh.anonymous_baseline_rating)


def test_trust_levels_is_the_vectorised_trust():
    w = World()
    w.review("bob", 4.0)
    w.trusts("alice", "bob", 0.9)
    w.trusts("bob", "carl", 0.5, domain="reviews.public")
    rater = w.rater()
    users = ["bob", "carl", "alice", "nobody-known"]
    levels = rater.trust_levels("alice", users, TECH + ".laptops", at=NOW)
    singles = [rater.trust("alice", u, TECH + ".laptops", at=NOW).level for u in users]
    assert levels.tolist() == pytest.approx(singles)
    assert levels.tolist() == pytest.approx([0.72, 0.0, 1.0, 0.0])  # carl: path crosses domains, none

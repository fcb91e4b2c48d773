"""The whole pipeline over a store: rankings by lower bound, stored rows, explanations, observers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from truescore.domain import Item, Review, TrustEdge
from truescore.jobs import rank_store
from truescore.store import Store
from truescore.synth import SYNTH_NOW, SynthConfig, generate

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory) -> Store:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('rank') / 'r.db'}")
    generate(SynthConfig(n_users=800, n_items=120, n_ratings=12_000, n_rings=2, ring_size=15)).write(store)
    return store


def test_two_five_star_reviews_do_not_outrank_five_hundred_at_four_point_seven(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.add_items([Item("tiny", "reviews.public.home"), Item("proven", "reviews.public.home")])
    rng = np.random.default_rng(0)
    stars = rng.choice([4.0, 5.0], size=500, p=[0.3, 0.7])
    reviews = [Review(f"p{k}", "proven", f"u{k}", float(s), T0 + k * 3600 * 20) for k, s in enumerate(stars)]
    reviews += [Review("t0", "tiny", "u0", 5.0, T0), Review("t1", "tiny", "u1", 5.0, T0 + 86400 * 30)]
    store.add_reviews(reviews)
    result = rank_store(store, at=T0 + 86400 * 500, refit=True)
    top = result.top(topic="reviews.public.home")
    assert [p.item_id for p in top] == ["proven", "tiny"]
    assert top[1].plain_mean == 5.0 > top[0].plain_mean
    assert top[0].fused_sd < top[1].fused_sd


def test_rank_store_writes_the_public_ranking(synth_store: Store) -> None:
    result = rank_store(synth_store, at=SYNTH_NOW, write=True, refit=True)
    rows = synth_store.read_derived("product_rankings")
    assert len(rows) == synth_store.count_items() == len(result.products)
    row = rows[0]
    details = json.loads(row["details"])
    assert row["model_version"] == "fusion-1" and row["tier"] in ("High", "Medium", "Low", "Skip")
    assert set(details["love"]["components"]) == {"organic_quality", "engagement_quality", "authenticity",
                                                  "diversity", "trend"}
    assert 0 <= row["love_score"] <= 100 and row["lower_bound"] <= row["fused_mean"]
    with pytest.raises(ValueError, match="public"):
        rank_store(synth_store, observer="u1", write=True, refit=True)


def test_ranking_by_topic_and_subtopics(synth_store: Store) -> None:
    result = rank_store(synth_store, at=SYNTH_NOW, refit=True)
    tech = result.top(topic="reviews.public.technology", limit=1000)
    assert tech and all(p.topic.startswith("reviews.public.technology.") for p in tech)
    bounds = [p.lower_bound for p in tech]
    assert bounds == sorted(bounds, reverse=True)
    assert len(result.top(limit=7)) == 7


def test_every_weight_is_explained(synth_store: Store) -> None:
    result = rank_store(synth_store, at=SYNTH_NOW, refit=True)
    item = result.top(limit=1)[0].item_id
    rows = result.explain(item)
    assert len(rows) == result.product(item).n_reviews
    assert all(1.0 <= r.rating <= 5.0 and r.reason for r in rows)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    with pytest.raises(KeyError):
        result.explain("no-such-item")


def test_an_observer_sees_trusted_reviewers_weigh_more(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'o.db'}")
    store.add_items([Item("x", "reviews.public.books")])
    store.add_reviews([Review("a", "x", "friend", 5.0, T0), Review("b", "x", "stranger", 1.0, T0 + 10)])
    store.add_trust([TrustEdge("me", "friend", "reviews.public.books", 1.0, T0 - 100)])
    mine = rank_store(store, observer="me", at=T0 + 86400, refit=True).product("x")
    public = rank_store(store, at=T0 + 86400, refit=True).product("x")
    assert mine.fused_mean > public.fused_mean


def test_empty_store_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="no reviews"):
        rank_store(Store.open(f"sqlite:///{tmp_path / 'e.db'}"))

"""The synthetic marketplace: determinism, planted truth, attacks, and writing through the store."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from truescore.store import Store
from truescore.synth import SynthConfig, add_bot_attack, add_item, generate

SMALL = SynthConfig(n_users=600, n_items=80, n_ratings=6000, n_rings=2, ring_size=10, camouflage_ratings=5)


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b, c = generate(SMALL), generate(SMALL), generate(replace(SMALL, seed=1))
    for key in a.ratings:
        np.testing.assert_array_equal(a.ratings[key], b.ratings[key])
    assert not np.array_equal(a.ratings["stars"], c.ratings["stars"])


def test_sizes_and_planted_truth() -> None:
    w = generate(SMALL)
    assert w.n_ratings == SMALL.n_ratings and w.n_users == SMALL.n_users and w.n_items == SMALL.n_items
    pairs = w.ratings["user"] * w.n_items + w.ratings["item"]
    assert np.unique(pairs).size == w.n_ratings  # one rating per (user, item)
    kinds = set(w.truth.user_kind)
    assert kinds == {"honest", "harsh", "lenient", "careless", "bot_fresh", "bot_camouflaged"}
    stars = w.ratings["stars"]
    assert set(np.unique(stars)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # honest raters track the truth far better than careless ones
    err = np.abs(stars - w.truth.item_quality[w.ratings["item"]])
    kind = w.truth.user_kind[w.ratings["user"]]
    assert err[kind == "honest"].mean() < 0.6 * err[kind == "careless"].mean()
    # harsh raters sit below the truth, lenient above
    signed = stars - w.truth.item_quality[w.ratings["item"]]
    assert signed[kind == "harsh"].mean() < -0.3 < 0.3 < signed[kind == "lenient"].mean()
    # every bot rates its ring's target with 5 stars, and those ratings are the fake ones
    fake = w.truth.review_is_fake
    assert set(w.ratings["item"][fake]) == set(w.truth.target_items)
    assert (stars[fake] == 5).all()
    assert (w.truth.item_quality[w.truth.target_items] < 3.0).all()


def test_snapshot_is_normalised_and_ids_are_stable() -> None:
    w = generate(SMALL)
    snap = w.snapshot()
    np.testing.assert_allclose(snap.rating, (w.ratings["stars"] - 1) / 4)
    assert snap.user_ids[0] == "u0" and snap.review_ids[-1] == f"r{w.n_ratings - 1}"
    assert snap.item_topic[0].startswith("reviews.public.")


def test_bot_attack_adds_accounts_and_ratings() -> None:
    w, target = add_item(generate(SMALL), 2.5, 20, seed=3)
    assert w.truth.item_quality[target] == 2.5 and (w.ratings["item"] == target).sum() == 20
    fresh = add_bot_attack(w, target, 30, variant="fresh", burst_hours=48, generated_text=True)
    assert fresh.n_users == w.n_users + 30 and fresh.n_ratings == w.n_ratings + 30
    attack = fresh.ratings["created_at"][w.n_ratings:]
    assert attack.max() - attack.min() <= 48 * 3600
    assert (fresh.ratings["text_code"][w.n_ratings:] < 0).all()  # generated hype text
    camo = add_bot_attack(w, target, 30, variant="camouflaged", camouflage_ratings=20)
    assert camo.n_ratings == w.n_ratings + 30 * 21
    assert (camo.truth.user_kind[w.n_users:] == "bot_camouflaged").all()
    with pytest.raises(ValueError, match="variant"):
        add_bot_attack(w, target, 3, variant="sleeper")


def test_texts_follow_the_stars_and_bots_hype() -> None:
    w = generate(SMALL)
    texts = w.review_texts()
    fake = np.flatnonzero(w.truth.review_is_fake)
    assert all("!!!" in texts[k] or "!" in texts[k] for k in fake)
    five = np.flatnonzero((w.ratings["stars"] == 5) & ~w.truth.review_is_fake)[:20]
    one = np.flatnonzero(w.ratings["stars"] == 1)[:20]
    assert all("Would buy again." in texts[k] for k in five)
    assert all("Avoid it." in texts[k] for k in one)


def test_write_through_the_store(tmp_path) -> None:
    w = generate(SMALL)
    store = Store.open(f"sqlite:///{tmp_path / 'w.db'}")
    written = w.write(store)
    counts = store.counts()
    assert counts["reviews"] == written["reviews"] == w.n_ratings
    assert counts["votes"] == w.votes["review"].shape[0]
    assert counts["trust"] == w.trust["truster"].shape[0]
    assert counts["flags"] == w.flags["review"].shape[0]
    assert store.get_user("operator").role == "operator"
    snap = store.snapshot()
    assert snap.n_ratings == w.n_ratings
    assert store.write_derived("item_quality", [], "x") == 0


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="n_users"):
        SynthConfig(n_users=3)

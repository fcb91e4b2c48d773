"""Issue 20 item 1: the server's online reliability model after every kind of write, against a batch fit,
on SQLite and PostgreSQL.

The online model (``GET /items/{id}/quality``, ``GET /users/{id}/reliability``, source ``online``) is
updated in place by the writes; ``truescore fit`` (here :func:`truescore.reliability.fit` on the store's
snapshot) refits from scratch. Between refits the online model is approximate (it re-solves the touched
items and their neighbours, with the hyperparameters of its last fit), so "agrees" means, after each
write:

- every item's quality within ``STARS`` = 0.05 stars of the batch fit (the touched item included);
- every rater's reliability finite, positive and within ``REL`` = 5% of the batch fit's;

and a re-rating followed by re-rating back returns to the state before within 0.005 stars and 1%.
A deleted review is the online model's exact downdate (the route updates the cached state incrementally,
issue 20 item 4), held to the same tolerances; an erased user rebuilds the engine state from the store
(the route does), so there the online model *is* a batch fit (to 1e-6). The old code wrote a re-rating's
new value over the old one without taking the old value's squared residual out of the rater's sum: on
this world ann's 4 -> 1 left the item 0.56 stars from the batch fit and her reliability at -27 (batch:
35); re-rating back left -15 (batch: 77).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from truescore.api import create_app
from truescore.api.online import OnlineEstimates
from truescore.config import Settings, load_settings
from truescore.domain import Item, Review, User
from truescore.reliability import ReliabilityResult, fit
from truescore.store import Store, service

NOW = datetime.now(UTC)
STARS = 0.05      # online vs batch, every item, in stars (items are on 1..5)
REL = 0.05        # online vs batch, every rater's reliability, relative
BACK_STARS = 0.005  # a re-rating and back vs the state before
BACK_REL = 0.01
ANN = "ann"       # the re-rater: 8 ratings, close to the items' quality
FEW = "few"       # an item with 3 ratings, one of them ann's 4


def build_world(store: Store) -> None:
    """10 items of planted quality, 24 raters of varied noise with 4-9 ratings each, and ann: careful,
    8 ratings, among them a 4 on the thinly rated item ``few``."""
    rng = np.random.default_rng(20)
    items = [f"i{k}" for k in range(10)]
    quality = dict(zip(items, rng.uniform(2.0, 4.6, len(items)), strict=True))
    quality[FEW] = 3.8
    store.add_users([User(ANN), *(User(f"u{k}") for k in range(24))])
    store.add_items([Item(i, "reviews.public.home") for i in [*items, FEW]])
    reviews = []
    for k in range(24):
        sd = float(rng.uniform(0.3, 1.6))
        for item in rng.choice(items, size=int(rng.integers(4, 10)), replace=False):
            stars = float(np.clip(np.round(quality[str(item)] + sd * rng.normal()), 1, 5))
            reviews.append(Review(f"r-u{k}-{item}", str(item), f"u{k}", stars, NOW - timedelta(days=200 - k)))
    for k, item in enumerate(items[:7]):
        stars = float(np.round(quality[item]))
        reviews.append(Review(f"r-ann-{item}", item, ANN, stars, NOW - timedelta(days=150 - k)))
    reviews += [Review("r-ann-few", FEW, ANN, 4.0, NOW - timedelta(days=100)),
                Review("r-u0-few", FEW, "u0", 3.0, NOW - timedelta(days=90)),
                Review("r-u1-few", FEW, "u1", 4.0, NOW - timedelta(days=80))]
    store.add_reviews(reviews)


def settings() -> Settings:
    # no rate limit: the toggling test writes faster than a key may (10 requests a second)
    return load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0, "rate_limit_requests": 0})


@pytest.fixture
def world(store: Store) -> Iterator[Store]:
    build_world(store)
    yield store


def online_view(client: TestClient, batch: ReliabilityResult) -> tuple[dict[str, float], dict[str, float]]:
    """Quality of every item and reliability of every rater the batch fit knows, through the API."""
    q, rel = {}, {}
    for item in batch.item_ids.tolist():
        body = client.get(f"/items/{item}/quality").json()
        assert body["source"] == "online", body
        q[str(item)] = float(body["quality"])
    for user in batch.user_ids.tolist():
        body = client.get(f"/users/{user}/reliability").json()
        assert body["source"] == "online", body
        rel[str(user)] = float(body["reliability"])
    return q, rel


def assert_agrees(client: TestClient, store: Store, stars: float = STARS, rel: float = REL,
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """The online model against a batch fit of the store's current reviews (tolerances in the docstring)."""
    batch = fit(store.snapshot())
    q, r = online_view(client, batch)
    for k, item in enumerate(batch.item_ids.tolist()):
        assert abs(q[item] - batch.item_quality[k]) < stars, (item, q[item], batch.item_quality[k])
    for k, user in enumerate(batch.user_ids.tolist()):
        assert np.isfinite(r[user]) and r[user] > 0, (user, r[user])
        assert abs(r[user] - batch.reliability[k]) < rel * batch.reliability[k], (user, r[user], batch.reliability[k])
    return q, r


def post(client: TestClient, key: str, review_id: str, item: str, stars: float, minutes_ago: float) -> None:
    resp = client.post("/reviews", json={"id": review_id, "item_id": item, "user_id": ANN, "rating": stars,
                                         "created_at": (NOW - timedelta(minutes=minutes_ago)).isoformat()},
                       headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 201 and resp.json()["inserted"] == 1, resp.text


def test_online_model_agrees_with_a_batch_fit_after_every_kind_of_write(world: Store) -> None:
    """New rating, own re-rating (4 -> 1), re-rating back, deleted review, erased user, through the API with
    ann's own key."""
    _, key = service.create_key(world, "ann", user_id=ANN)
    with TestClient(create_app(world, settings())) as client:
        assert_agrees(client, world, stars=1e-6, rel=1e-6)   # the startup fit is a batch fit

        post(client, key, "n-ann-i9", "i9", 3.0, minutes_ago=50)            # a new rating
        before_q, before_r = assert_agrees(client, world)

        post(client, key, "x-ann-few-1", FEW, 1.0, minutes_ago=40)          # own re-rating: 4 -> 1
        assert world.get_review("x-ann-few-1").supersedes == "r-ann-few"
        assert client.get(f"/items/{FEW}/quality").json()["n_ratings"] == 3   # replaced, not added
        assert client.get(f"/users/{ANN}/reliability").json()["n_ratings"] == 9
        assert_agrees(client, world)

        post(client, key, "x-ann-few-2", FEW, 4.0, minutes_ago=30)          # and back: 1 -> 4
        q, r = assert_agrees(client, world)
        for item, value in before_q.items():
            assert abs(q[item] - value) < BACK_STARS, (item, q[item], value)
        for user, value in before_r.items():
            assert abs(r[user] - value) < BACK_REL * value, (user, r[user], value)

        deleted = client.delete("/reviews/n-ann-i9", headers={"Authorization": f"Bearer {key}"})
        assert deleted.status_code == 200, deleted.text
        assert client.get(f"/users/{ANN}/reliability").json()["n_ratings"] == 8
        assert_agrees(client, world)  # the downdate, not a rebuild

        erased = client.delete(f"/users/{ANN}", headers={"Authorization": f"Bearer {key}"})
        assert erased.status_code == 200, erased.text
        assert client.get(f"/users/{ANN}/reliability").status_code == 404
        assert client.get(f"/items/{FEW}/quality").json()["n_ratings"] == 2
        assert_agrees(client, world, stars=1e-6, rel=1e-6)


def test_toggling_a_rating_many_times_keeps_the_model_sane(world: Store) -> None:
    """Ten re-ratings of the thin item between 5 and 1: the online model stays near the batch fit and
    every reliability finite and positive (the old code drifted further with every toggle)."""
    _, key = service.create_key(world, "ann", user_id=ANN)
    with TestClient(create_app(world, settings())) as client:
        for n in range(10):
            post(client, key, f"t{n}", FEW, 5.0 if n % 2 else 1.0, minutes_ago=60 - n)
            assert_agrees(client, world)


def _records(online: OnlineEstimates, batch: ReliabilityResult) -> tuple[dict[str, Any], dict[str, Any]]:
    items = {str(i): online.item(str(i)) for i in batch.item_ids.tolist()}
    users = {str(u): online.user(str(u)) for u in batch.user_ids.tolist()}
    return items, users


def _assert_estimates_agree(online: OnlineEstimates, store: Store) -> None:
    batch = fit(store.snapshot())
    items, users = _records(online, batch)
    for k, item in enumerate(batch.item_ids.tolist()):
        rec = items[item]
        assert rec is not None and rec["n_ratings"] == batch.item_n_ratings[k]
        assert abs(rec["quality"] - batch.item_quality[k]) < STARS, (item, rec, batch.item_quality[k])
    for k, user in enumerate(batch.user_ids.tolist()):
        rec = users[user]
        assert rec is not None and rec["n_ratings"] == batch.user_n_ratings[k]
        assert np.isfinite(rec["reliability"]) and rec["reliability"] > 0
        assert abs(rec["reliability"] - batch.reliability[k]) < REL * batch.reliability[k], (user, rec)


def test_online_estimates_downdate_a_deleted_review_and_an_erased_user(world: Store) -> None:
    """The downdates themselves (the routes rebuild instead): OnlineEstimates.remove after a review is
    deleted from the store and OnlineEstimates.erase after a user is erased agree with a batch fit."""
    online = OnlineEstimates(world.snapshot(), settings().reliability)
    online.add([{"id": "x1", "item_id": FEW, "user_id": ANN, "rating": 1.0, "min_rating": 1.0, "max_rating": 5.0}])
    assert online.item(FEW)["n_ratings"] == 3   # type: ignore[index]
    assert service.delete_review(world, "r-ann-i3") is not None
    assert online.remove(ANN, "i3") == 1 and online.remove(ANN, "i3") == 0
    world.add_reviews([Review("x1", FEW, ANN, 1.0, NOW - timedelta(minutes=5), supersedes="r-ann-few")])
    _assert_estimates_agree(online, world)
    service.erase_user(world, ANN)
    assert online.erase(ANN) == 7 and online.erase(ANN) == 0
    assert online.user(ANN) is None
    _assert_estimates_agree(online, world)
    service.erase_user(world, "u0")
    online.erase("u0")
    _assert_estimates_agree(online, world)

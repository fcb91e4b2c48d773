"""Deleting a review updates the server's cached state incrementally (issue 20, item 4).

Before, every ``DELETE /reviews/{own id}`` rebuilt the trust engine and the online model from the store under
the write lock (2-4 s on the demo store): one key looping post + delete, well under its rate limit, took
other keys' writes from 45 ms to 2.7 s median. Now the trust engine's index drops the rows
(:meth:`ReviewIndex.remove_reviews`) and the online model downdates the rating; the answers equal a full
rebuild's.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from test_api_endpoints import build_world, days_ago
from truescore.api import create_app
from truescore.config import load_settings
from truescore.domain import Review, Vote
from truescore.jobs import rater_from_store
from truescore.store import Store, service
from truescore.trust import Rater


def _rater_answers(rater: Rater, items: list[str], observer: str) -> list[tuple[float | None, int]]:
    out = []
    for item in items:
        res = rater.effective_rating(item, observer, at=days_ago(0))
        out.append((None if res.rating is None else round(float(res.rating), 12), len(res.contributions)))
    return out


def test_removing_reviews_from_the_index_equals_a_full_build(store: Store) -> None:
    build_world(store)
    store.add_reviews([Review("x1", "lamp", "carol", 3.0, days_ago(3)), Review("x2", "pan", "eve", 5.0, days_ago(2))])
    store.add_votes([Vote("x1", "bob", True, days_ago(1))])
    rater = rater_from_store(store)
    rater.effective_rating("lamp", "alice")  # built and merged
    builds = rater.index.full_builds
    service.delete_review(store, "x1")
    service.delete_review(store, "r-dave")
    assert rater.remove_reviews(["x1", "r-dave"]) == 2
    fresh = rater_from_store(store)
    for observer in ("alice", "bob", "operator"):
        assert _rater_answers(rater, ["lamp", "pan"], observer) == _rater_answers(fresh, ["lamp", "pan"], observer)
    assert rater.index.full_builds == builds  # incremental, no rebuild
    assert "x1" not in set(rater.index.review_ids) and rater.index.n_reviews == fresh.index.n_reviews
    # an id removed may be posted again as a new review
    store.add_reviews([Review("x1", "lamp", "carol", 1.0, days_ago(0))])
    rater.add_reviews([Review("x1", "lamp", "carol", 1.0, days_ago(0))])
    assert _rater_answers(rater, ["lamp"], "alice") == _rater_answers(rater_from_store(store), ["lamp"], "alice")


def test_post_and_delete_of_ones_own_review_is_incremental_and_exact(store: Store) -> None:
    build_world(store)
    key = service.create_key(store, "eve", user_id="eve")[1]
    auth = {"Authorization": f"Bearer {key}"}
    app = create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0,
                                               "rate_limit_requests": 0}))
    client = TestClient(app)
    state = app.state.truescore
    base = client.get("/items/pan/rating", params={"observer": "alice"}).json()
    quality = client.get("/items/pan/quality").json()
    rater = state.rater
    for k in range(4):
        r = client.post("/reviews", json={"id": f"loop{k}", "item_id": "pan", "user_id": "eve", "rating": 1.0},
                        headers=auth)
        assert r.status_code == 201, r.text
        posted = client.get("/items/pan/rating", params={"observer": "alice"}).json()
        assert posted["total_reviews_considered"] == base["total_reviews_considered"] + 1
        r = client.delete(f"/reviews/loop{k}", headers=auth)
        assert r.status_code == 200, r.text
        after = client.get("/items/pan/rating", params={"observer": "alice"}).json()
        assert after["rating"] == pytest.approx(base["rating"], abs=1e-12)
        assert after["total_reviews_considered"] == base["total_reviews_considered"]
    assert state.rater is rater  # never rebuilt: the same engine object, merged incrementally
    fresh = rater_from_store(store).effective_rating("pan", "alice")
    assert after["rating"] == pytest.approx(fresh.rating, abs=1e-12)
    online = client.get("/items/pan/quality").json()  # the online model downdated each deleted rating
    assert online["n_ratings"] == 4 and online["quality"] == pytest.approx(quality["quality"], abs=0.01)


def test_deletions_between_many_unread_writes_and_a_repost_equal_a_full_build(store: Store) -> None:
    """Hundreds of writes with no read between them, deletions among them, a removed id posted again with a
    vote on it, then a full build: the index equals one built from the store, and its buffers stay short
    (a deletion filters a few frames, not one per write since the last read: the post+delete stall)."""
    build_world(store)
    rater = rater_from_store(store)
    rater.effective_rating("lamp", "alice")
    items = ["lamp", "pan"]
    for k in range(120):
        review = Review(f"w{k}", items[k % 2], f"writer{k}", float(1 + k % 5), days_ago(1))
        store.add_reviews([review])
        rater.add_reviews([review])
        if k % 3 == 0:
            service.delete_review(store, f"w{k}")
            rater.remove_reviews([f"w{k}"])
        if k == 60:  # merged once, so that later deletions hit rows already in the merged frames
            rater.effective_rating("lamp", "alice")
    assert max(len(frames) for frames in rater.index._pending.values()) <= 33
    again = Review("w3", "pan", "writer3", 5.0, days_ago(0))
    store.add_reviews([again])
    rater.add_reviews([again])
    store.add_votes([Vote("w3", "bob", True, days_ago(0))])
    rater.add_votes([Vote("w3", "bob", True, days_ago(0))])
    fresh = rater_from_store(store)
    for observer in ("alice", "bob", "operator"):
        assert _rater_answers(rater, items, observer) == _rater_answers(fresh, items, observer)
    # the fallback (a full build over the kept frames, as after a review carrying its own topic) agrees too
    builds = rater.index.full_builds
    rater.index._append = lambda: False  # type: ignore[method-assign]
    rater.index._built = False
    rater.index.ensure()
    assert rater.index.full_builds == builds + 1
    rater.personal._version = -1
    for observer in ("alice", "bob", "operator"):
        assert _rater_answers(rater, items, observer) == _rater_answers(fresh, items, observer)
    assert rater.index.n_reviews == fresh.index.n_reviews


def test_a_rebuild_holds_up_no_write_and_loses_none(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild (the refresher's, an erasure's) reads the store and builds without the write lock: a POST and a
    DELETE made while it is under way are answered at once, and the state swapped in has them both."""
    import threading

    import truescore.api.state as state_module

    build_world(store)
    auth = {"Authorization": f"Bearer {service.create_key(store, 'ops', scopes=['admin'])[1]}"}
    app = create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0,
                                               "rate_limit_requests": 0}))
    client = TestClient(app, headers=auth)
    state = app.state.truescore
    before = client.get("/items/pan/rating").json()["total_reviews_considered"]
    reading, release = threading.Event(), threading.Event()
    real_build = state_module.build_rater

    def slow_build(*args: object, **kwargs: object) -> Rater:
        rater = real_build(*args, **kwargs)  # type: ignore[arg-type]
        reading.set()  # the store is read: now the writes come
        assert release.wait(60)
        return rater

    monkeypatch.setattr(state_module, "build_rater", slow_build)
    rebuild = threading.Thread(target=state.rebuild)
    rebuild.start()
    try:
        assert reading.wait(60)
        r = client.post("/reviews", json={"id": "during", "item_id": "pan", "user_id": "alice", "rating": 5.0})
        assert r.status_code == 201, r.text  # answered while the build is still blocked
        assert client.delete("/reviews/p-carol").status_code == 200
        assert rebuild.is_alive()
    finally:
        release.set()
    rebuild.join(60)
    monkeypatch.setattr(state_module, "build_rater", real_build)
    after = client.get("/items/pan/rating").json()
    assert after["total_reviews_considered"] == before  # one posted, one deleted, both replayed
    fresh = rater_from_store(store).anonymous_baseline_rating("pan")
    assert after["rating"] == pytest.approx(fresh.rating, abs=1e-12)
    assert client.get("/items/pan/quality").json()["n_ratings"] == before

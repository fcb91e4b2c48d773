"""Issue 10: a write merges into the trust engine's review index incrementally, and the result is the
index a full rebuild over the same events gives; an API read after a write does not rebuild the index
and sees the written review."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from test_api_endpoints import auth, build_world, settings_for_tests
from truescore.api import create_app
from truescore.config import load_settings
from truescore.domain import Flag, FlagReason, Item, Review, User, UserRole, Vote
from truescore.store import Store, service
from truescore.trust.graph import NodeIndex
from truescore.trust.index import ReviewIndex, _csr, _csr_insert


def _when(k: int) -> datetime:
    return datetime.fromtimestamp(1_600_000_000 + 37 * k, tz=UTC)


def _view(ix: ReviewIndex) -> dict[str, Any]:
    """Everything a reader of the index sees, keyed by ids (codes may differ between two indexes)."""
    ix.ensure()
    ids = ix.nodes
    items = {}
    for code, iid in enumerate(ix.item_ids):
        rows = ix.item_review_rows(code)
        items[str(iid)] = (str(ix.item_topic[code]), float(ix.item_min[code]), float(ix.item_max[code]),
                           [(str(ix.review_ids[r]), float(ix.r_norm[r]), float(ix.r_created[r]),
                             ids.id_of(int(ix.r_user[r])), bool(ix.r_verified[r])) for r in rows])
    users = {}
    for node in range(ix.user_indptr.shape[0] - 1):
        rows = ix.user_rows[ix.user_indptr[node] : ix.user_indptr[node + 1]]
        if rows.size:
            users[ids.id_of(node)] = [str(ix.review_ids[r]) for r in rows]
    votes, flags = {}, {}
    for r, rid in enumerate(ix.review_ids):
        v = slice(ix.vote_indptr[r], ix.vote_indptr[r + 1])
        f = slice(ix.flag_indptr[r], ix.flag_indptr[r + 1])
        votes[str(rid)] = [(ids.id_of(int(a)), bool(b), float(c))
                           for a, b, c in zip(ix.v_voter[v], ix.v_helpful[v], ix.v_created[v], strict=True)]
        flags[str(rid)] = [(ids.id_of(int(a)), float(b))
                           for a, b in zip(ix.f_flagger[f], ix.f_severity[f], strict=True)]
    return {"items": items, "users": users, "votes": votes, "flags": flags, "n": ix.n_reviews,
            "retailers": sorted(ids.id_of(int(x)) for x in ix.retailers),
            "topics": {str(i): str(ix.item_topic[ix.item_code(str(i))]) for i in ix.item_ids}}


def _batches(seed: int) -> list[dict[str, list[Any]]]:
    """Random batches of events: new and re-posted reviews, re-reviews that supersede the author's
    current one, scales other than 1..5, votes and flags (some on reviews that arrive later), items
    and users."""
    rng = random.Random(seed)
    users, items = [f"u{k}" for k in range(12)], [f"i{k}" for k in range(6)]
    current: dict[tuple[str, str], str] = {}
    out, k = [], 0
    for b in range(14):
        batch: dict[str, list[Any]] = {"reviews": [], "items": [], "votes": [], "flags": [], "users": []}
        for _ in range(rng.randint(1, 9)):
            k += 1
            u, i = rng.choice(users), rng.choice([*items, f"new{b}"])
            lo, hi = rng.choice([(1.0, 5.0), (1.0, 5.0), (0.0, 10.0)])
            rid = f"r{k}"
            sup = current.get((u, i)) if rng.random() < 0.8 else None
            current[(u, i)] = rid
            when = _when(rng.randint(0, 60))  # out of order, with ties: new rows go inside the item's rows
            batch["reviews"].append(Review(rid, i, u, float(rng.randint(int(lo), int(hi))), when, min_rating=lo,
                                           max_rating=hi, verified_purchase=rng.random() < 0.3, supersedes=sup))
        if b and rng.random() < 0.5:  # an id posted again (the first statement stands)
            again = out[0]["reviews"][0]
            batch["reviews"].append(Review(again.id, again.item_id, again.user_id, 5.0, _when(999)))
        if rng.random() < 0.4:
            batch["items"].append(Item(f"new{b}", rng.choice(["reviews.public", "home.kitchen", "home"])))
        known = [r.id for x in out for r in x["reviews"]] + [r.id for r in batch["reviews"]]
        for _ in range(rng.randint(0, 6)):
            target = rng.choice(known) if rng.random() < 0.85 else f"r{k + rng.randint(1, 8)}"  # later review
            batch["votes"].append(Vote(target, rng.choice(users), rng.random() < 0.6, _when(k)))
        for _ in range(rng.randint(0, 2)):
            batch["flags"].append(Flag(rng.choice(known), rng.choice(users), FlagReason.SPAM, rng.random() * 2,
                                       _when(k)))
        if rng.random() < 0.3:
            batch["users"].append(User(rng.choice(users), role=UserRole.RETAILER))
        out.append(batch)
    return out


def _feed(ix: ReviewIndex, batch: dict[str, list[Any]]) -> None:
    ix.add_users(batch["users"])
    ix.add_reviews(batch["reviews"], batch["items"])
    ix.add_votes(batch["votes"])
    ix.add_flags(batch["flags"])


@pytest.mark.parametrize("seed", range(6))
def test_incremental_merge_equals_a_full_build(seed: int) -> None:
    batches = _batches(seed)
    live = ReviewIndex(NodeIndex())
    for batch in batches:  # merged after every batch, as the API does after every write
        _feed(live, batch)
        live.ensure()
    full = ReviewIndex(NodeIndex())
    for batch in batches:  # every event at once: one full build
        _feed(full, batch)
    assert _view(live) == _view(full)
    assert full.full_builds == 1 and full.appends == 0
    assert live.appends > 0  # most merges were incremental (votes before their review force a full one)
    assert live.appends + live.full_builds == len(batches)


def test_a_re_review_replaces_the_earlier_one_without_a_rebuild() -> None:
    ix = ReviewIndex(NodeIndex())
    ix.add_reviews([Review("a", "i1", "u1", 1.0, _when(1)), Review("b", "i1", "u2", 3.0, _when(2))])
    ix.add_votes([Vote("a", "u2", True, _when(3)), Vote("b", "u1", True, _when(3))])
    ix.ensure()
    ix.add_reviews([Review("a2", "i1", "u1", 5.0, _when(4), supersedes="a")])
    ix.ensure()
    assert (ix.full_builds, ix.appends) == (1, 1)
    rows = ix.item_review_rows(ix.item_code("i1"))
    assert sorted(str(ix.review_ids[r]) for r in rows) == ["a2", "b"]
    assert ix.n_reviews == 2
    b = int(ix._review_pos.get_loc("b"))
    assert [ix.nodes.id_of(int(v)) for v in ix.v_voter[ix.vote_indptr[b] : ix.vote_indptr[b + 1]]] == ["u1"]


# --------------------------------------------------------------------------------------------- API


@pytest.fixture
def world(store_url: str) -> Iterator[Store]:
    store = Store.open(store_url)
    build_world(store)
    yield store
    store.close()


def test_a_read_after_a_write_does_not_rebuild_the_index(world: Store) -> None:
    admin = service.create_key(world, "admin", user_id=None, scopes=["admin"])[1]
    with TestClient(create_app(world, settings_for_tests())) as client:
        before = client.get("/items/pan/rating").json()
        state = client.app.state.truescore
        index = state.rater.index
        builds, personal_hyper = index.full_builds, state.rater.personal._hyper_events
        considered = before["total_reviews_considered"]
        for k in range(5):
            body = {"id": f"after-{k}", "item_id": "pan", "user_id": f"fresh{k}", "rating": 1,
                    "created_at": 1_700_000_000 + k}
            assert client.post("/reviews", json=body, headers=auth(admin)).status_code == 201
            got = client.get("/items/pan/rating").json()
            # the written review is visible to the very next read
            assert got["total_reviews_considered"] == considered + k + 1
        assert state.rater.index is index  # the same Rater: no rebuild of the engine state
        assert index.full_builds == builds  # and no full rebuild of its index
        assert index.appends >= 5
        assert state.rater.personal._hyper_events == personal_hyper  # covariances kept (no refit per write)
        rows = index.item_review_rows(index.item_code("pan"))
        assert sorted(str(index.review_ids[r]) for r in rows if str(index.review_ids[r]).startswith("after-")) == [
            f"after-{k}" for k in range(5)]


def test_the_refresher_re_estimates_the_covariances_after_enough_writes(world: Store) -> None:
    settings = load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0},
                             personal={"hyper_refresh_events": 3})
    admin = service.create_key(world, "admin", user_id=None, scopes=["admin"])[1]
    with TestClient(create_app(world, settings)) as client:
        state = client.app.state.truescore
        first = state.rater
        assert state.check_store() is False  # nothing written: nothing to do
        for k in range(3):
            body = {"id": f"cov-{k}", "item_id": "pan", "user_id": f"cov{k}", "rating": 2,
                    "created_at": 1_700_000_000 + k}
            assert client.post("/reviews", json=body, headers=auth(admin)).status_code == 201
            assert client.get("/items/pan/rating").status_code == 200  # the read merges the write
            if k < 2:
                assert first.personal.stale_events == k + 1
                assert state.check_store() is False  # below the threshold: the Rater stays
        assert first.personal.stale_events == 3  # the reads kept the old covariances ...
        assert state.check_store() is True  # ... until the refresher rebuilt the Rater off the read path
        assert state.rater is not first and state.rater.personal.stale_events == 0
        assert client.get("/items/pan/rating").json()["total_reviews_considered"] == (
            first.effective_rating("pan", settings.trust.baseline_observer_id).total_reviews_considered)


@pytest.mark.parametrize("seed", range(5))
def test_inserting_appended_rows_equals_a_re_sort(seed: int) -> None:
    """The CSR insert of a few appended rows gives the stable sort's groups and order (ties included)."""
    rng = np.random.default_rng(seed)
    n_old, n_new, n_keys = 200, int(rng.integers(1, 30)), 12
    keys = rng.integers(0, n_keys - 2, n_old + n_new)  # the appended rows may bring new keys (codes n_keys-2..)
    keys[n_old:] = rng.integers(0, n_keys, n_new)
    when = rng.integers(0, 15, n_old + n_new).astype(np.float64)  # many ties
    old_ptr, old_rows = _csr(keys[:n_old], n_keys - 2, when[:n_old])
    ptr, rows = _csr_insert(old_ptr, old_rows, keys, n_old, n_keys, when)
    want_ptr, want_rows = _csr(keys, n_keys, when)
    assert ptr.tolist() == want_ptr.tolist()
    assert rows.tolist() == want_rows.tolist()

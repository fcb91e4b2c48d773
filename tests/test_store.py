"""The event store, on SQLite and on PostgreSQL (see conftest.py for how PostgreSQL is reached)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from truescore.domain import ConflictError, Flag, FlagReason, Item, Review, TrustEdge, User, UserRole, Vote
from truescore.store import Store, StoreError, service

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_reviews_are_idempotent_by_id(store: Store) -> None:
    r = Review("r1", "lamp", "ann", 4.0, created_at=day(0))
    assert store.add_reviews([r]) == 1
    assert store.add_reviews([r, Review("r2", "lamp", "bob", 2.0, created_at=day(1))]) == 1
    assert store.counts()["reviews"] == 2
    assert [x.id for x in store.reviews_of_item("lamp")] == ["r1", "r2"]


def test_duplicate_ids_inside_one_batch_are_stored_once_or_refused(store: Store) -> None:
    # the same review twice is stored once; the same id with other content is a conflict (as in the API)
    r = Review("r1", "lamp", "ann", 4.0, created_at=day(0))
    assert store.add_reviews([r, r]) == 1
    with pytest.raises(ConflictError, match="row 2, field rating: review 'r2' conflicts with row 1 of the same write"):
        store.add_reviews([Review("r2", "lamp", "bob", 4.0, day(1)), Review("r2", "lamp", "bob", 1.0, day(1))])
    assert store.get_review("r1").rating == 4.0 and store.get_review("r2") is None


def test_unknown_users_and_items_get_placeholders_replaced_by_real_rows(store: Store) -> None:
    store.add_reviews([Review("r1", "lamp", "ann", 4.0, created_at=day(3))])
    assert store.get_item("lamp").topic == "reviews.public"
    assert store.get_user("ann").created_at == day(3)
    store.add_items([Item("lamp", "reviews.public.home.lamps", "Desk lamp", day(0))])
    store.add_users([User("ann", day(-10), "Ann", UserRole.PERSON)])
    assert store.get_item("lamp").topic == "reviews.public.home.lamps"
    assert store.get_user("ann").display_name == "Ann"
    assert store.get_item("nope") is None and store.get_user("nope") is None and store.get_review("x") is None


def test_round_trip_keeps_every_review_field(store: Store) -> None:
    r = Review("r9", "pan", "cy", 8.0, created_at=day(2), min_rating=0, max_rating=10, title="Good pan",
               text="Heats evenly. " * 3, is_recommended=True, is_incentivized=False, verified_purchase=True,
               photo_count=2)
    store.add_reviews([r])
    assert store.get_review("r9") == r


def test_reviews_by_user_in_topic_since(store: Store) -> None:
    store.add_items([Item("x1", "reviews.public.technology.laptops"), Item("x2", "reviews.public.technology"),
                     Item("x3", "reviews.public.food"), Item("x4", "reviews.public.technologyish")])
    store.add_reviews([Review(f"r{k}", f"x{k}", "ann", 3.0, created_at=day(k)) for k in range(1, 5)])
    tech = store.reviews_by_user("ann", topic="reviews.public.technology")
    assert [r.id for r in tech] == ["r1", "r2"]  # subtopics yes, look-alike prefixes no
    assert [r.id for r in store.reviews_by_user("ann", since=day(3))] == ["r3", "r4"]
    counts = store.review_counts_in_topic(["ann", "bob"], "reviews.public.technology", since=day(2))
    assert counts == {"ann": 1, "bob": 0}


def test_votes_on_a_users_reviews(store: Store) -> None:
    store.add_reviews([Review("r1", "a", "ann", 4.0), Review("r2", "b", "ann", 5.0), Review("r3", "a", "bob", 1.0)])
    assert store.add_votes([Vote("r1", "v1", True), Vote("r2", "v2", False), Vote("r3", "v1", True)]) == 3
    assert store.add_votes([Vote("r1", "v1", False)]) == 0  # one vote per (review, voter)
    votes = store.votes_on_user_reviews("ann")
    assert sorted((v.review_id, v.helpful) for v in votes) == [("r1", True), ("r2", False)]
    assert len(store.votes_on_reviews(["r1", "r3"])) == 2


def test_trust_latest_statement_wins_and_expiry_is_respected(store: Store) -> None:
    store.add_trust([
        TrustEdge("alice", "bob", "reviews.public", 0.9, day(0)),
        TrustEdge("alice", "bob", "reviews.public", 0.4, day(5)),          # later statement wins
        TrustEdge("alice", "bob", "reviews.public.food", 1.0, day(1)),     # other domain: separate edge
        TrustEdge("alice", "carol", "reviews.public", 0.8, day(0), valid_until=day(10)),
        TrustEdge("alice", "dave", "reviews.public", 0.7, day(0)),
        TrustEdge("alice", "dave", "reviews.public", 0.0, day(3)),         # withdrawn
    ])
    now = {(e.trustee_id, e.domain): e.level for e in store.trust_edges(at=day(20))}
    assert now == {("bob", "reviews.public"): 0.4, ("bob", "reviews.public.food"): 1.0}
    before = {(e.trustee_id, e.domain): e.level for e in store.trust_edges(at=day(2))}
    assert before == {("bob", "reviews.public"): 0.9, ("bob", "reviews.public.food"): 1.0,
                      ("carol", "reviews.public"): 0.8, ("dave", "reviews.public"): 0.7}
    arrays = store.trust_edge_arrays("reviews.public", at=day(2))
    assert sorted(arrays.trustee.tolist()) == ["bob", "carol", "dave"]
    assert store.trust_edge_arrays("nothing.here").level.shape == (0,)


def test_flags(store: Store) -> None:
    store.add_reviews([Review("r1", "a", "ann", 4.0)])
    store.add_flags([Flag("r1", "mod", FlagReason.FAKE, 2.0, day(1))])
    (flag,) = store.flags_on_reviews(["r1"])
    assert flag.reason is FlagReason.FAKE and flag.severity == 2.0


def test_snapshot_normalises_each_review_on_its_own_scale(store: Store) -> None:
    store.add_items([Item("a", "reviews.public.home"), Item("b", "reviews.public.food")])
    store.add_reviews([
        Review("r1", "a", "ann", 4.0, day(0)),                                  # 1..5
        Review("r2", "a", "bob", 7.75, day(1), min_rating=1, max_rating=10),    # same opinion
        Review("r3", "b", "ann", -10.0, day(2), min_rating=-10, max_rating=10),
        Review("r4", "b", "cy", 10.0, day(3), min_rating=-10, max_rating=10),
        Review("r5", "b", "dee", 0.0, day(4), min_rating=-10, max_rating=10),
    ])
    snap = store.snapshot()
    assert snap.n_ratings == 5 and snap.n_users == 4 and snap.n_items == 2
    np.testing.assert_allclose(snap.rating, [0.75, 0.75, 0.0, 1.0, 0.5])
    assert snap.user_ids[snap.user_idx].tolist() == ["ann", "bob", "ann", "cy", "dee"]
    b = snap.item_ids.tolist().index("b")
    assert (snap.item_min[b], snap.item_max[b]) == (-10, 10)
    assert snap.item_topic[b] == "reviews.public.food"
    assert store.snapshot(topic="reviews.public.home").n_ratings == 2


def test_superseded_reviews_leave_the_views(store: Store) -> None:
    store.add_reviews([Review("r1", "a", "ann", 2.0, day(0)),
                       Review("r2", "a", "ann", 4.0, day(5), supersedes="r1")])
    assert [r.id for r in store.reviews_of_item("a")] == ["r2"]
    assert store.snapshot().review_ids.tolist() == ["r2"]


def test_items_paging_and_search(store: Store) -> None:
    store.add_items([Item(f"lamp-{k:02d}", "reviews.public.home.lamps", f"Desk Lamp {k}") for k in range(25)]
                    + [Item("pan-1", "reviews.public.home.kitchen", "Frying pan")])
    assert store.count_items(topic="reviews.public.home") == 26
    assert store.count_items(topic="reviews.public.home.lamps") == 25
    page = store.items(topic="reviews.public.home", limit=10, offset=20)
    assert [i.id for i in page] == ["lamp-20", "lamp-21", "lamp-22", "lamp-23", "lamp-24", "pan-1"]
    assert [i.id for i in store.items(q="FRYING")] == ["pan-1"]
    assert store.count_items(q="100%") == 0  # LIKE wildcards in the query are literal
    assert dict(store.topics())["reviews.public.home.lamps"] == 25


def test_derived_tables_replace_by_key_with_version_and_time(store: Store) -> None:
    rec = {"item_id": "a", "quality": 4.2, "quality_sd": 0.3, "n_ratings": 7, "effective_weight": 5.5}
    store.write_derived("item_quality", [rec], "vb-1")
    store.write_derived("item_quality", [{**rec, "quality": 4.0}], "vb-2")
    (row,) = store.read_derived("item_quality")
    assert row["quality"] == 4.0 and row["model_version"] == "vb-2" and row["fitted_at"] > 0
    assert store.read_derived("item_quality", "missing") == []
    store.write_derived("product_rankings", [{"item_id": "a", "topic": "t", "n_reviews": 3,
                                              "details": {"why": "because"}}], "fuse-1")
    assert store.read_derived("product_rankings", "a")[0]["details"] == '{"why": "because"}'
    with pytest.raises(StoreError, match="not a derived table"):
        store.write_derived("reviews", [], "x")


def test_frames_and_users_by_role(store: Store) -> None:
    store.add_users([User("op", day(0), "Operator", UserRole.OPERATOR), User("ann", day(0))])
    store.add_reviews([Review("r1", "a", "ann", 4.0, day(1), text="fine")])
    store.add_votes([Vote("r1", "op", True, day(2))])
    assert [u.id for u in store.users(UserRole.OPERATOR)] == ["op"]
    frame = store.review_frame()
    assert frame.loc[0, "text"] == "fine" and frame.loc[0, "topic"] == "reviews.public"
    assert len(store.vote_frame()) == 1 and store.flag_frame().empty
    assert "text" not in store.review_frame(with_text=False)


def test_bad_urls_are_clear_errors(tmp_path) -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        Store.open("mysql://root@localhost/x")
    with pytest.raises(StoreError, match="invalid database URL"):
        Store.open("::not a url::")


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    s = Store.open(f"sqlite:///{tmp_path / 'w.db'}")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_default_url_comes_from_the_configuration(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUESCORE_DATABASE_URL", f"sqlite:///{tmp_path / 'cfg.db'}")
    s = Store.open()
    s.add_reviews([Review("r1", "a", "u", 3.0)])
    assert (tmp_path / "cfg.db").exists()


def test_api_keys_are_stored_hashed_and_can_be_revoked(store: Store) -> None:
    key_id, secret = service.create_key(store, "ci")
    assert getattr(service.verify_key(store, secret), "key_id", None) == key_id
    assert getattr(service.verify_key(store, secret + "x"), "key_id", None) is None
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT key_hash FROM api_keys").scalar_one()
    assert secret not in stored and len(stored) == 64
    assert [k["name"] for k in service.list_keys(store)] == ["ci"] and "key_hash" not in service.list_keys(store)[0]
    assert service.revoke_key(store, key_id) and getattr(service.verify_key(store, secret), "key_id", None) is None


def test_jobs_record_status(store: Store) -> None:
    job = service.create_job(store, "fit")
    assert service.get_job(store, job)["status"] == "queued"
    service.update_job(store, job, "done", "fitted 3 items")
    row = service.get_job(store, job)
    assert row["status"] == "done" and row["finished_at"] is not None and row["message"] == "fitted 3 items"
    assert service.get_job(store, "nope") is None


def _review_indexes(store: Store) -> set[str]:
    from sqlalchemy import inspect

    return {ix["name"] for ix in inspect(store.engine).get_indexes("reviews")}


def test_bulk_load_rebuilds_indexes_and_an_interrupted_one_is_repaired_at_open(store_url: str) -> None:
    store = Store.open(store_url)
    expected = _review_indexes(store)
    assert {"ix_reviews_item", "ix_reviews_user_time"} <= expected
    with store.bulk_load("reviews"):
        assert _review_indexes(store) == set()  # empty table: secondary indexes dropped for the load
        store.add_reviews([Review(f"r{k}", "a", f"u{k}", 3.0) for k in range(10)])
    assert _review_indexes(store) == expected
    with store.bulk_load("reviews"):  # not empty any more: nothing is dropped
        assert _review_indexes(store) == expected
    fresh = Store.open(store_url.replace("store.db", "other.db")) if "sqlite" in store_url else None
    if fresh is not None:
        with pytest.raises(RuntimeError, match="killed"), fresh.bulk_load("reviews"):
            raise RuntimeError("killed")
        assert _review_indexes(fresh) == expected  # rebuilt even when the load fails
        with fresh.engine.begin() as conn:  # simulate a process killed inside the load
            conn.exec_driver_sql("DROP INDEX ix_reviews_item")
        assert _review_indexes(Store.open(store_url.replace("store.db", "other.db"))) == expected

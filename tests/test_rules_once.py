"""Each rule once (issue 19, item 3): the forms of one rule agree on the same events.

- topic containment: :func:`truescore.domain.topic_within` and the store's SQL (``Store.items(topic=...)``,
  ``review_frame(topic)``), with LIKE's own characters in the topics;
- which review is current: the store's SQL (``Store.review_frame``), the array form
  (:func:`truescore.domain.current_review_mask`), the trust engine's index (fed every review, history
  included) and Spark's ``live_reviews`` (when Spark is here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from truescore.domain import Item, Review, current_review_mask, from_epoch, topic_within
from truescore.store import Store
from truescore.trust import Rater

from conftest import spark_unavailable

TOPICS = ["reviews.public", "reviews.public.home", "reviews.public.home.lamps", "reviews.publicity",
          "reviews.public.ho_me", "reviews.public.hoxme", "reviews.public.home_x", "shop.a", "shop.a.b"]
PARENTS = [*TOPICS, "reviews", "reviews.public.ho", "shop"]


def test_topic_containment_sql_equals_the_rule(store: Store) -> None:
    store.add_items([Item(f"i{k}", t) for k, t in enumerate(TOPICS)])
    store.add_reviews([Review(f"r{k}", f"i{k}", "u", 4.0) for k in range(len(TOPICS))])
    for parent in PARENTS:
        want = {f"i{k}" for k, t in enumerate(TOPICS) if topic_within(t, parent)}
        assert {i.id for i in store.items(topic=parent, limit=100)} == want, parent
        assert set(store.review_frame(parent)["item_id"]) == want, parent
        assert store.count_items(topic=parent) == len(want)


def _history() -> list[Review]:
    """Edits, ties on created_at broken by id, a supersedes chain, an older review posted last."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(120):
        user, item = f"u{k % 9}", f"i{k % 5}"
        when = 1.6e9 + float(rng.integers(0, 6)) * 3600  # few distinct times: ties, and older reviews posted later
        out.append(Review(f"r{k:03d}", item, user, float(rng.integers(1, 6)), created_at=when))
    return out


def test_the_current_review_rule_has_one_answer(store: Store, tmp_path: Path) -> None:
    reviews = _history()
    store.add_reviews(reviews)
    stored = store.read_table("reviews")  # every review, history included, with the supersedes it got
    sql = set(store.review_frame(with_text=False)["id"])
    mask = current_review_mask(stored["id"], stored["user_id"], stored["item_id"], stored["created_at"],
                               stored["supersedes"])
    assert set(stored["id"][mask]) == sql
    # without the supersedes the writes added, the order alone gives the same answer
    bare = current_review_mask(stored["id"], stored["user_id"], stored["item_id"], stored["created_at"])
    assert set(stored["id"][bare]) == sql
    # the trust engine's index, fed every review (history included, no supersedes), keeps the same ones
    frame = stored.drop(columns=["supersedes"]).assign(topic="reviews.public")
    rater = Rater.from_frames(pd.DataFrame(columns=["truster_id", "trustee_id", "domain", "level"]), frame)
    rater.index.ensure()
    assert set(rater.index.review_ids) == sql
    # one more review of a held pair without supersedes, merged into a built index: the rule still holds
    late = Review("zz-late", "i0", "u0", 2.0, created_at=from_epoch(1.7e9))
    store.add_reviews([late])
    rater.add_reviews([late])
    rater.index.ensure()
    assert set(rater.index.review_ids) == set(store.review_frame(with_text=False)["id"])


@pytest.mark.slow  # starts Spark
def test_spark_keeps_the_same_current_reviews(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    why = spark_unavailable()
    if why and os.environ.get("TRUESCORE_REQUIRE_SPARK") != "1":
        pytest.skip(why)
    spark: Any = request.getfixturevalue("spark")
    from truescore.spark.fit import live_reviews

    store.add_reviews(_history())
    path = tmp_path / "reviews.parquet"
    store.read_table("reviews").to_parquet(path, index=False)
    got = {r["id"] for r in live_reviews(spark, path).select("id").collect()}
    assert got == set(store.review_frame(with_text=False)["id"])

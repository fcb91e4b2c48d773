"""Rankings compare items on the normalised scale, never raw numbers across scales (issue 20, item 2).

Before: one ordinary write key posted one review of a new item on a 999999..1000000 scale (rating 1000000);
after ``truescore fit`` and ``truescore rank`` the item was #1 of its topic on ``/rankings``, lower bound
999,999.55 against 4.65: the ranking sorted lower bounds shown on each item's own scale. (Such a review is
now refused unless the platform lists its scale in the setting ``allowed_scales``; the ranking must stay
honest on a platform that does.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from truescore.api import create_app
from truescore.config import load_settings
from truescore.domain import Item, Review
from truescore.jobs import rank_store, run_fit, run_integrity
from truescore.ranking import rank_frames
from truescore.ranking.pipeline import normalised_bound
from truescore.store import Store

TOPIC = "reviews.public.home"


def _reviews() -> list[Review]:
    rng = np.random.default_rng(0)
    out = [Review(f"g{k}", "good", f"u{k}", float(rng.choice([4.0, 5.0, 5.0])), created_at=1.6e9 + k * 86400.0)
           for k in range(40)]
    out += [Review(f"m{k}", "meh", f"u{k}", float(rng.choice([2.0, 3.0, 4.0])), created_at=1.6e9 + k * 86400.0)
            for k in range(40)]
    out.append(Review("odd", "private", "attacker", 1_000_000.0, min_rating=999_999.0, max_rating=1_000_000.0,
                      created_at=1.6e9 + 50 * 86400.0))
    return out


def test_a_private_scale_carries_no_more_weight_than_its_evidence(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the platform refuses a scale it does not list (test_write_path.py); one that lists this odd scale
    # (setting allowed_scales) must still rank its items on the normalised scale
    monkeypatch.setenv("TRUESCORE_ALLOWED_SCALES", "[[1, 5], [999999, 1000000]]")
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.add_items([Item("good", TOPIC), Item("meh", TOPIC), Item("private", TOPIC)])
    store.add_reviews(_reviews())
    run_fit(store)
    run_integrity(store)
    result = rank_store(store, write=True, at=1.6e9 + 60 * 86400.0)
    top = result.top(TOPIC, 3)
    assert top[0].item_id == "good"
    odd = result.product("private")
    assert odd.scale_min == 999_999.0 and odd.fused_mean > 999_999.0  # shown on its own scale
    # one top rating of a new item: shrunk by the prior, below forty good reviews on the normalised scale
    assert odd.rank_key < result.product("good").rank_key
    client = TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})))
    ranked = [row["item_id"] for row in client.get("/rankings", params={"topic": TOPIC}).json()["data"]]
    assert ranked[0] == "good" and ranked.index("private") > 0


def test_rank_order_is_the_same_on_any_scale() -> None:
    frames = {"reviews": pd.DataFrame([{**{k: getattr(r, k) for k in ("id", "item_id", "user_id", "rating",
                                                                          "min_rating", "max_rating")},
                                        "created_at": r.created_at, "topic": TOPIC}
                                       for r in _reviews() if r.item_id != "private"])}
    base = [p.item_id for p in rank_frames(frames, at=1.6e9 + 60 * 86400.0).top(TOPIC, 5)]
    stretched = frames["reviews"].copy()
    on_ten = stretched["item_id"] == "meh"  # the same opinions of one item on a 1..10 scale
    stretched.loc[on_ten, "rating"] = 1 + (stretched.loc[on_ten, "rating"] - 1) * 9 / 4
    stretched.loc[on_ten, "max_rating"] = 10.0
    ranked = rank_frames({"reviews": stretched}, at=1.6e9 + 60 * 86400.0)
    assert [p.item_id for p in ranked.top(TOPIC, 5)] == base
    assert normalised_bound(None, 1, 5) == float("-inf") and normalised_bound(3.0, 1.0, 5.0) == 0.5

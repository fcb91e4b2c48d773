"""The Spark benchmark's one-machine loader keeps the store's rule: one current rating per (user, item)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.spark_bench import current_ratings


def test_current_ratings_keeps_the_latest_per_pair_and_renumbers_in_first_appearance() -> None:
    rng = np.random.default_rng(3)
    n, n_users, n_items = 4000, 60, 40
    frame = pd.DataFrame({"u": rng.integers(0, n_users, n), "i": rng.integers(0, n_items, n),
                          "r": rng.random(n)})
    u, i, r, item_order = current_ratings(frame["u"].to_numpy(np.int32), frame["i"].to_numpy(np.int32),
                                          frame["r"].to_numpy(), n_users, n_items)
    expected = frame.drop_duplicates(["u", "i"], keep="last")  # rows are in time order: the last is the latest
    assert len(r) == len(expected) < n  # the draw repeats pairs, so the rule has work to do
    np.testing.assert_array_equal(r, expected["r"].to_numpy())
    # dense ids in order of first appearance among the kept rows
    def dense(codes: pd.Series) -> np.ndarray:
        first = pd.unique(codes)
        return pd.Series(np.arange(len(first)), index=first)[codes].to_numpy()

    np.testing.assert_array_equal(item_order, pd.unique(expected["i"]))
    np.testing.assert_array_equal(i, dense(expected["i"]))
    np.testing.assert_array_equal(u, dense(expected["u"]))
    assert u.dtype == np.int32 and i.dtype == np.int32

"""The text engine's context features distributed by Spark (``truescore.spark.features``) against
``compute_features(..., global_duplicates=False)`` on one machine, the call ``truescore score`` makes.

A small synthetic review set with texts, votes, exact duplicate texts within an item and within a reviewer,
near duplicates, an empty text, ties in time and missing times, written to Parquet and read by Spark;
1 and 4 shuffle partitions. Without Java or pyspark the module skips and says why, unless
``TRUESCORE_REQUIRE_SPARK=1`` (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import skip_without_spark

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

_SENTENCES = (
    "The strings arrived quickly and sound bright.", "Terrible tuning stability, it slips every hour!",
    "I bought this for my son and he loves it.", "Great value for the money, would buy again.",
    "The cable crackles when I move it.", "Honest review: received this product free in exchange for feedback.",
    "Sturdy stand, holds my bass without wobbling.", "Not worth it. Broke after a week.",
    "Best pedal I have ever owned!!!", "Works as described, nothing special.",
)


skip_without_spark()


def _reviews(seed: int = 7, n: int = 80) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reviews (6 items, 14 reviewers, one review per (user, item)) and their votes."""
    rng = np.random.default_rng(seed)
    pairs = rng.permutation([(u, i) for u in range(14) for i in range(6)])[:n]
    texts = [" ".join(rng.choice(_SENTENCES, size=rng.integers(1, 4), replace=False)) for _ in range(n)]
    frame = pd.DataFrame({
        "id": [f"r{k:03d}" for k in range(n)],
        "item_id": [f"i{i}" for _, i in pairs], "user_id": [f"u{u}" for u, _ in pairs],
        "rating": rng.integers(1, 6, n).astype(float), "min_rating": 1.0, "max_rating": 5.0,
        "created_at": 1.7e9 + np.round(rng.uniform(0, 40, n)) * 43_200.0,  # half-day grid: ties in time
        "title": [f"title {k % 7}" for k in range(n)], "text": texts,
        "verified_purchase": rng.integers(0, 2, n).astype(bool), "photo_count": rng.integers(0, 3, n),
    })
    same_item = frame.index[frame["item_id"] == "i2"][:3]
    frame.loc[same_item, "text"] = "Copied text, five stars, great great great."  # duplicates within an item
    same_user = frame.index[frame["user_id"] == "u5"][:3]
    frame.loc[same_user, "text"] = "I review everything the same way: fine product."  # within a reviewer
    frame.loc[same_user[0], "text"] = "I review everything the same way: fine product!!"  # near duplicate
    frame.loc[7, "text"] = ""
    frame.loc[[11, 12], "created_at"] = np.nan  # missing times: the median fill
    votes = pd.DataFrame({"review_id": rng.choice(frame["id"], 150), "voter_id": [f"v{k}" for k in range(150)],
                          "helpful": rng.integers(0, 2, 150).astype(bool)})
    return frame, votes


@pytest.mark.parametrize("shuffle_partitions", [1, 4])
def test_distributed_context_features_equal_compute_features(spark: Any, tmp_path: Path,
                                                             shuffle_partitions: int) -> None:
    from truescore.spark.features import FEATURE_PREFIX, context_features
    from truescore.text.features import FEATURES, compute_features

    frame, votes = _reviews()
    frame.to_parquet(tmp_path / "reviews.parquet", index=False)
    votes.to_parquet(tmp_path / "votes.parquet", index=False)
    ordered = frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)
    expected = compute_features(ordered, votes, global_duplicates=False).set_index(ordered["id"])
    assert expected["exact_duplicate_count"].max() >= 2 and expected["max_sim_item"].max() > 0.999
    assert expected["max_sim_user"].max() > 0.999 and expected["total_votes"].max() > 0

    spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    live = spark.read.parquet(str(tmp_path / "reviews.parquet"))
    got = context_features(spark, live, spark.read.parquet(str(tmp_path / "votes.parquet"))).toPandas()
    got = got.set_index("id").loc[expected.index]
    assert len(got) == len(frame)
    for name in (f.name for f in FEATURES):
        a, b = got[FEATURE_PREFIX + name].to_numpy(float), expected[name].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        assert np.max(np.abs(a - b), initial=0.0, where=~np.isnan(b)) <= 1e-9, name


def test_without_votes_the_helpful_columns_and_no_missing_times(spark: Any, tmp_path: Path) -> None:
    """No votes file: the reviews' ``helpful_yes`` / ``helpful_total`` columns; every time known."""
    from truescore.spark.features import FEATURE_PREFIX, context_features
    from truescore.text.features import compute_features

    frame, _ = _reviews(seed=3, n=40)
    frame["created_at"] = frame["created_at"].fillna(1.7e9)
    frame["helpful_yes"], frame["helpful_total"] = np.arange(40) % 3, np.arange(40) % 5 + 2
    frame.to_parquet(tmp_path / "reviews.parquet", index=False)
    ordered = frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)
    expected = compute_features(ordered, None, global_duplicates=False).set_index(ordered["id"])
    spark.conf.set("spark.sql.shuffle.partitions", "2")
    got = context_features(spark, spark.read.parquet(str(tmp_path / "reviews.parquet"))).toPandas()
    got = got.set_index("id").loc[expected.index]
    for name in ("helpful_share", "total_votes", "item_burst_share", "user_min_gap_hours", "max_sim_user"):
        np.testing.assert_allclose(got[FEATURE_PREFIX + name], expected[name], rtol=0, atol=1e-9, err_msg=name)

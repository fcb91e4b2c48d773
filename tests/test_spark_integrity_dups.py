"""``truescore spark score``'s near-duplicate texts: signatures and clusters in Spark, no text on the driver.

The MinHash signatures of the review texts are computed per batch on the executors and the LSH bands
and the candidate confirmation run in Spark; the driver collects the metadata, a has-signature flag and
the confirmed pairs. Against ``truescore score`` (the store path, texts on one
machine) on a store with templated and paraphrased campaign texts: the same suspicion (bit for bit),
reasons and rings, with 1 and 4 shuffle partitions. The reliability fit is the store's (given as
``--fit``), so any difference would come from the integrity step. Without Java or pyspark the module
skips and says why, unless ``TRUESCORE_REQUIRE_SPARK=1``, where that is a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from truescore.store import Store
from truescore.synth import SynthConfig, add_item, add_ring_campaign, generate

from conftest import skip_without_spark

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


skip_without_spark()


@pytest.fixture(scope="module")
def dup_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with honest texts and two campaigns (one paraphrased, one templated), exported; the store's
    reliability fit as a ``--fit`` folder; and what ``truescore score``'s integrity step writes."""
    from truescore.jobs import run_integrity
    from truescore.store.integrity_io import read_rings, suspicion_frame

    folder = tmp_path_factory.mktemp("spark-dups")
    store = Store.open(f"sqlite:///{folder / 's.db'}")
    world = generate(SynthConfig(n_users=400, n_items=50, n_ratings=3000, seed=11, n_rings=0))
    targets = []
    for k in range(3):
        world, target = add_item(world, 3.0, 15, seed=k)
        targets.append(target)
    world = add_ring_campaign(world, targets[:2], 25, rating=1.0, camouflage_ratings=5, text="paraphrased", seed=5)
    add_ring_campaign(world, targets[2:], 20, rating=5.0, camouflage_ratings=3, text="templated", seed=6).write(store)
    export = folder / "export"
    export.mkdir()
    for name in ("reviews", "items", "users"):
        store.read_table(name).to_parquet(export / f"{name}.parquet", index=False)
    report = run_integrity(store)  # fits first
    reasons = report.result.review_reasons()
    assert report.rings_written > 0 and sum("near-duplicate text" in r for r in reasons) >= 10
    fit_dir = folder / "fit"
    fit_dir.mkdir()
    users = pd.DataFrame(store.read_derived("user_reliability"))
    users.drop(columns=["suspicion", "suspicion_reasons"]).to_parquet(fit_dir / "user_reliability.parquet",
                                                                      index=False)
    texts = store.review_frame(with_text=True)["text"].tolist()
    dups = (report.result.duplicates, [str(x) for x in report.snapshot.review_ids])
    return {"reviews": export / "reviews.parquet", "fit": fit_dir, "texts": texts, "duplicates": dups,
            "suspicion": suspicion_frame(store).set_index("review_id"), "accounts": users.set_index("user_id"),
            "rings": read_rings(store)}


def _long_enough(texts: list[Any], min_words: int) -> int:
    import re

    return sum(isinstance(t, str) and len(re.findall(r"[a-z0-9']+", t.lower())) >= min_words for t in texts)


@pytest.mark.parametrize("parts", [1, 4])
def test_spark_score_near_duplicates_in_spark_equal_truescore_score(
        spark: Any, dup_world: dict[str, Any], tmp_path: Path, parts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import truescore.integrity.runner as runner
    import truescore.spark.integrity as spark_integrity_module
    from truescore.config import get_settings
    from truescore.spark.score import score_run

    seen: list[tuple[pd.DataFrame, Any, Any]] = []
    engine = runner.integrity_from_frame

    def spy(reviews: pd.DataFrame, **kw: Any) -> Any:
        out = engine(reviews, **kw)
        seen.append((reviews, kw.get("clusters"), out[0].duplicates))
        return out

    monkeypatch.setattr(spark_integrity_module, "integrity_from_frame", spy)  # the name it calls
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    report = score_run(spark, dup_world["reviews"], tmp_path, text=False, fit=dup_world["fit"])
    # the driver-side frame: metadata only, never a text; the clusters formed in Spark
    ((frame, clusters, dups),) = seen
    assert sorted(frame.columns) == sorted(["id", "item_id", "user_id", "rating", "min_rating", "max_rating",
                                            "created_at", "topic"])  # no text, no title, no signature
    cfg = get_settings().integrity
    assert clusters is not None and (clusters.min_words, clusters.threshold) == (cfg.duplicate_min_words,
                                                                                 cfg.duplicate_threshold)
    assert clusters.rows.size == _long_enough(dup_world["texts"], cfg.duplicate_min_words)
    # the detector's output itself, cluster ids included, equals the single-machine one
    want_dups, want_ids = dup_world["duplicates"]
    assert frame["id"].tolist() == want_ids
    for name in ("group", "accounts", "evidence", "lift"):
        assert np.array_equal(getattr(dups, name), getattr(want_dups, name), equal_nan=True), name
    assert (dups.group >= 0).sum() > len(np.unique(dups.group[dups.group >= 0]))  # some clusters have several
    # the same suspicion, bit for bit, reasons and rings as truescore score
    want = dup_world["suspicion"]
    assert report.n_reviews == len(want)
    got = pd.read_parquet(tmp_path / "review_scores.parquet").set_index("review_id")
    assert sorted(got.index) == sorted(want.index)
    got = got.loc[want.index]
    assert np.array_equal(got["suspicion"].to_numpy(float), want["suspicion"].to_numpy(float))
    assert got["suspicion_reasons"].fillna("").tolist() == want["suspicion_reasons"].fillna("").tolist()
    accounts = dup_world["accounts"]
    users = pd.read_parquet(tmp_path / "user_reliability.parquet").set_index("user_id").loc[accounts.index]
    assert np.array_equal(users["suspicion"].to_numpy(float), accounts["suspicion"].to_numpy(float))
    assert users["suspicion_reasons"].fillna("").tolist() == accounts["suspicion_reasons"].fillna("").tolist()
    rings = pd.read_parquet(tmp_path / "rings.parquet").set_index("ring_id")
    assert sorted(rings.index) == sorted(r["ring_id"] for r in dup_world["rings"])
    for ring in dup_world["rings"]:
        row = rings.loc[ring["ring_id"]]
        assert (row["direction"], json.loads(row["members"]), json.loads(row["targets"])) == \
            (ring["direction"], ring["members"], ring["targets"])
        assert json.loads(row["evidence"]) == ring["evidence"] and row["strength"] == ring["strength"]


def test_reviews_of_items_missing_from_items_parquet_leave_the_buckets(spark: Any, dup_world: dict[str, Any],
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop from items.parquet an item with near-duplicate texts: its reviews leave the driver frame, so
    they must leave the LSH buckets in Spark too (each review is paired with the next one that stays)."""
    import shutil

    import truescore.integrity.runner as runner
    import truescore.spark.integrity as spark_integrity_module
    from truescore.spark.fit import live_reviews
    from truescore.spark.integrity import integrity_review_frame, spark_integrity

    src = Path(dup_world["reviews"]).parent
    for name in ("reviews", "users"):
        shutil.copy(src / f"{name}.parquet", tmp_path / f"{name}.parquet")
    reviews = pd.read_parquet(src / "reviews.parquet", columns=["id", "item_id"]).set_index("id")
    flagged = dup_world["suspicion"]["suspicion_reasons"].fillna("").str.contains("near-duplicate text")
    gone = reviews.loc[flagged[flagged].index, "item_id"].value_counts().index[0]
    items = pd.read_parquet(src / "items.parquet")
    items[items["id"] != gone].to_parquet(tmp_path / "items.parquet", index=False)
    path = tmp_path / "reviews.parquet"
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    live = live_reviews(spark, path)
    # expected: the engine over the same frame WITH the texts, on one machine
    frame = integrity_review_frame(live.toPandas(), path)
    assert "text" in frame.columns and gone not in set(frame["item_id"]) and len(frame) < len(reviews)
    users = pd.read_parquet(dup_world["fit"] / "user_reliability.parquet")
    lo = pd.Series(users["reliability_lo"].to_numpy(float), index=users["user_id"].to_numpy(object))
    want, _ = runner.integrity_from_frame(frame, users=pd.read_parquet(path.parent / "users.parquet"),
                                          reliability_lo=lo)
    seen: list[Any] = []
    engine = runner.integrity_from_frame

    def spy(reviews: pd.DataFrame, **kw: Any) -> Any:
        out = engine(reviews, **kw)
        seen.append(out[0])
        return out

    monkeypatch.setattr(spark_integrity_module, "integrity_from_frame", spy)  # the name it calls
    run = spark_integrity(spark, path, live, fit=dup_world["fit"])
    (got,) = seen
    for name in ("group", "accounts", "evidence", "lift"):
        assert np.array_equal(getattr(got.duplicates, name), getattr(want.duplicates, name), equal_nan=True), name
    assert want.duplicates.evidence.sum() > 0
    assert np.array_equal(run.reviews["suspicion"].to_numpy(float), want.review_suspicion)
    assert run.reviews["suspicion_reasons"].fillna("").tolist() == want.review_reasons()

"""``truescore spark rank`` with the per-item work in grouped pandas functions, against ``truescore rank``.

A small synthetic store with a review-bombing ring on three items, a cohort of accounts created together
pushing one item in a burst, text scores for most reviews, edits and reviews on a 1-10 scale among 1-5
ones. One local[2] SparkSession for the module; without Java or pyspark the module skips and says why,
unless ``TRUESCORE_REQUIRE_SPARK=1``, where that is a failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from truescore.domain import Review
from truescore.store import Store
from truescore.synth import SynthConfig, add_item, add_ring_campaign, generate

from conftest import skip_without_spark

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

_NOW = 1.79e9
_TABLES = ("reviews", "items", "votes", "flags", "trust", "users")
_NUMERIC = ("fused_mean", "fused_sd", "lower_bound", "n_eff", "plain_mean", "love_score")


skip_without_spark()


@pytest.fixture(scope="module")
def ringed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, Path]:
    """The store, its exported reviews Parquet and a ``spark score``-style folder with the text scores."""
    folder = tmp_path_factory.mktemp("spark-rank-grouped")
    store = Store.open(f"sqlite:///{folder / 's.db'}")
    world = generate(SynthConfig(n_users=400, n_items=50, n_ratings=3000, seed=11, n_rings=0, with_text=False))
    targets = []
    for k in range(3):
        world, target = add_item(world, 3.0, 15, seed=k)
        targets.append(target)
    world = add_ring_campaign(world, targets, 25, rating=1.0, camouflage_ratings=5, seed=5)
    world, pushed = add_item(world, 2.5, 12, seed=9)
    world = add_ring_campaign(world, [pushed], 15, rating=5.0, camouflage_ratings=3, created_together=True,
                              spread_days=2.0, seed=6)
    world.write(store)
    first = store.review_frame(with_text=False).head(6)
    t = datetime.fromtimestamp(_NOW - 86400, UTC)
    store.add_reviews([Review(id=f"edit{k}", item_id=row.item_id, user_id=row.user_id, rating=2.0, created_at=t,
                              supersedes=row.id) for k, row in enumerate(first.itertuples())]
                      + [Review(id=f"ten{k}", item_id=f"i{k % 3}", user_id=f"u{k + 7}", rating=float(1 + k % 10),
                                min_rating=1.0, max_rating=10.0, created_at=t) for k in range(25)])
    rng = np.random.default_rng(3)
    ids = store.review_frame(with_text=False)["id"].to_numpy(object)
    ids = ids[rng.random(ids.size) < 0.8]  # a fifth stays unscored (the configured prior)
    scores = pd.DataFrame({"review_id": ids, "quality": rng.random(ids.size),
                           "fake_probability": rng.beta(1.0, 4.0, ids.size), "sentiment": rng.random(ids.size)})
    store.write_derived("review_scores", scores.to_dict("records"), "test-scores")
    (folder / "scores").mkdir()
    scores.to_parquet(folder / "scores" / "review_scores.parquet", index=False)
    (folder / "export").mkdir()
    for name in _TABLES:
        store.read_table(name).to_parquet(folder / "export" / f"{name}.parquet", index=False)
    return store, folder / "export" / "reviews.parquet", folder / "scores"


@pytest.fixture(scope="module")
def reliability(ringed: tuple[Store, Path, Path]) -> Any:
    from truescore.reliability import fit

    return fit(ringed[0].snapshot())


@pytest.fixture(scope="module")
def expected(ringed: tuple[Store, Path, Path]) -> Any:
    from truescore.jobs import rank_store

    return rank_store(ringed[0], at=_NOW, refit=True)


def test_the_store_has_rings_cohorts_bursts_and_text_scores(expected: Any) -> None:
    inp = expected.fused.inputs
    assert inp.group is not None and len(np.unique(inp.group[inp.group >= 0])) >= 2
    assert (expected.fused.factors["integrity"] < 0.5).sum() >= 25   # the group caps bind
    assert expected.fused.burst_items.size >= 1
    assert np.isfinite(inp.fake_probability).mean() > 0.7


@pytest.mark.parametrize("parts", [1, 4])
def test_grouped_spark_rank_equals_truescore_rank(spark: Any, ringed: tuple[Store, Path, Path], expected: Any,
                                                  reliability: Any, tmp_path: Path, parts: int) -> None:
    from truescore.spark.rank import spark_rank

    _, reviews, scores = ringed
    want = pd.DataFrame(expected.records()).set_index("item_id")
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    # the reliability fit of one machine: spark_fit equals it and spark_rank's own fit is run by
    # tests/test_spark.py; here the grouped fusion and love score are under test (and the file stays short)
    n = spark_rank(spark, reviews, tmp_path, scores=scores, at=_NOW, reliability=reliability)
    written = pd.read_parquet(tmp_path / "product_rankings.parquet")
    assert n == len(want) == len(written)
    assert list(written["item_id"]) == list(want.index)  # the single-machine item order
    got = written.set_index("item_id")
    for col in _NUMERIC:
        a, b = got[col].to_numpy(float), want[col].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        diff = float(np.max(np.abs(a[~np.isnan(a)] - b[~np.isnan(b)])))
        print(f"parts={parts} {col}: max |spark - single| = {diff:.3g}")
        assert diff <= 1e-9, col
    assert (got["tier"].fillna("") == want["tier"].fillna("")).all()
    assert (got["topic"] == want["topic"]).all()
    details_got = [json.loads(d) for d in got["details"]]
    details_want = [json.loads(d) for d in want["details"]]
    for a_item, b_item in zip(details_got, details_want, strict=True):
        assert a_item["bayes_average"] == pytest.approx(b_item["bayes_average"], abs=1e-9)
        a_love, b_love = a_item["love"], b_item["love"]
        assert (a_love is None) == (b_love is None)
        if a_love is not None:
            assert a_love["components"] == pytest.approx(b_love["components"], abs=1e-9)
            assert a_love["adjustments"] == b_love["adjustments"]


def _block(rows: Any, mask: np.ndarray) -> Any:
    """The rows of one item (mask) as a block of one item, in the same order."""
    from truescore.ranking.fusion import ItemRows

    def take(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[mask]

    return ItemRows(item=np.zeros(int(mask.sum()), dtype=np.int64), n_items=1, rating=rows.rating[mask],
                    created_at=rows.created_at[mask], bias=rows.bias[mask], rho=rows.rho[mask],
                    rater_ratings=rows.rater_ratings[mask], fake_probability=rows.fake_probability[mask],
                    trust=rows.trust[mask], integrity=take(rows.integrity), group=take(rows.group))


def test_the_per_item_kernel_item_by_item_equals_the_vectorised_fuse(expected: Any) -> None:
    """``fuse_items`` on each item's rows alone gives ``fuse``'s numbers over all items, bit for bit."""
    from truescore.config import get_settings
    from truescore.ranking.fusion import fuse, fuse_items, fusion_context, item_rows

    cfg = get_settings()
    inp = expected.fused.inputs
    whole = fuse(inp, cfg.ranking, cfg.integrity)
    assert np.array_equal(whole.mean, expected.fused.mean) and np.array_equal(whole.weight, expected.fused.weight)
    ctx = fusion_context(inp, cfg.ranking, cfg.integrity)
    rows = item_rows(inp, ctx, cfg.ranking)
    for k in range(inp.n_items):
        mask = inp.item_idx == k
        one = fuse_items(_block(rows, mask), ctx, cfg.ranking)
        for name in ("mean", "sd", "n_eff", "plain_mean", "bayes_average", "n_ratings"):
            assert getattr(one, name)[0] == getattr(whole, name)[k], (k, name)
        assert np.array_equal(one.weight, whole.weight[mask]), k
        for name, values in one.factors.items():
            assert np.array_equal(values, whole.factors[name][mask]), (k, name)


def test_rank_item_frame_on_one_item_equals_the_single_machine_line(expected: Any) -> None:
    """The grouped pandas function, fed one item's rows (shuffled: it restores the order), gives that
    item's fused quality of ``truescore rank``."""
    from truescore.ranking.fusion import rater_reliability
    from truescore.ranking.pipeline import RankContext
    from truescore.spark.rank import rank_item_frame

    snap, inp, res = expected.snapshot, expected.fused.inputs, expected
    ctx = RankContext(fusion=_ctx(inp), settings=res.settings, now=_NOW)
    users = inp.user_idx
    scale = (snap.item_min[snap.item_idx], snap.item_max[snap.item_idx])
    frame = pd.DataFrame({
        "id": snap.review_ids, "item_id": snap.item_ids[snap.item_idx],
        "rating": scale[0] + snap.rating * (scale[1] - scale[0]), "min_rating": scale[0], "max_rating": scale[1],
        "created_at": snap.created_at, "bias": np.nan_to_num(inp.bias, nan=0.0)[users],
        "rho": rater_reliability(inp.reliability, ctx.fusion.alpha_ref, res.settings)[users],
        "rater_ratings": np.bincount(users)[users].astype(float), "trust": inp.trust, "integrity": inp.integrity,
        "group": inp.group, "item_min": scale[0], "item_max": scale[1], "fake_probability": inp.fake_probability,
        "sentiment": np.nan, "quality": np.nan, "incentivized": False, "helpful": 0.0, "unhelpful": 0.0,
        "flagged": False,
    })
    ring_items = np.unique(inp.item_idx[inp.group >= 0])
    for k in [*ring_items[:3].tolist(), 0, 1]:
        one = frame[snap.item_idx == k].sample(frac=1.0, random_state=k)
        out = rank_item_frame(one, ctx)
        assert len(out) == 1 and out["item_id"].iloc[0] == str(snap.item_ids[k])
        assert out["mean"].iloc[0] == pytest.approx(res.fused.mean[k], abs=1e-12)
        assert out["sd"].iloc[0] == pytest.approx(res.fused.sd[k], abs=1e-12)


def _ctx(inp: Any) -> Any:
    from truescore.config import get_settings
    from truescore.ranking.fusion import fusion_context

    cfg = get_settings()
    return fusion_context(inp, cfg.ranking, cfg.integrity)

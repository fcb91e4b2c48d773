"""The public ranking (fused score and love score of every item) from Parquet (``truescore spark rank``).

What runs where
---------------
1. *Executors*: the reliability fit (:func:`truescore.spark.fit.spark_fit`, the same kernels and numbers
   as one machine).
2. *Driver*, the global step (:func:`truescore.ranking.pipeline.ranking_inputs`, the function behind
   ``truescore rank``): over the live reviews without texts it builds the snapshot, the public observer's
   trust in the author of every rating (the trust graph is global), the integrity engine's evidence and
   ring / cohort group of every rating (rings and cohorts span items and accounts), each rater's relative
   reliability ``rho_u``, bias and rating count ``n_u`` (the arrays ``truescore rank`` uses), each item's
   rating scale, and the small :class:`RankContext` (``alpha_ref``, the median rater precision over all
   raters; the prior; the mean rating over all ratings; the settings; the clock), which is broadcast.
3. *Executors*, the per-item work: the live reviews are joined with that per-review,
   per-rater and per-item context and with what Spark reads and aggregates itself -- the text scores,
   helpful / unhelpful vote counts (``groupBy(review_id)`` over ``votes.parquet``), moderator flags --
   then ``groupBy(item_id).applyInPandas`` runs :func:`rank_item_frame` on each item:
   its rows in ``(created_at, id)`` order through :func:`truescore.ranking.pipeline.rank_items`, the
   per-item kernel that ``truescore rank`` runs over all items at once (the fusion's burst windows,
   starting median, IRLS sweeps, group caps and posterior, then the love score). Per-item sums are
   sequential ``np.bincount`` sums over the item's rows in the same order on both paths, so the numbers
   are those of ``truescore rank`` bit for bit in our tests, whatever the partitioning.
4. *Driver*: only the per-item result rows are collected, put on each item's own scale and written as
   ``out/product_rankings.parquet`` with the columns of the store's table.

The driver still holds the review table without texts for step 2 (the trust and integrity engines need
all of it); docs/scale.md has the sizes.

Inputs: the reviews Parquet, and the other event tables as ``items.parquet`` (required: the topics),
``votes.parquet``, ``flags.parquet``, ``trust.parquet``, ``users.parquet`` (optional) in ``tables``
(default: the folder of the reviews file) -- what ``truescore export TABLE --out`` writes. Text scores
are read from ``scores/review_scores.parquet`` when given (``truescore spark score``'s output), and with
them the integrity evidence and groups that run stored, as ``truescore rank`` reads what ``truescore
score`` stored; without them the integrity evidence is computed here from the metadata.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from truescore.ranking.fusion import ItemFusion, ItemRows, rater_reliability
from truescore.ranking.love import LoveScore
from truescore.ranking.pipeline import (
    FusionEvidence,
    RankContext,
    RankingInputs,
    ReviewSignals,
    rank_items,
    ranking_inputs,
)
from truescore.spark.fit import live_reviews, spark_fit

if TYPE_CHECKING:
    from truescore.config import Settings
    from truescore.reliability import ReliabilityResult

__all__ = ["ITEM_RESULT_SCHEMA", "rank_item_frame", "read_tables", "spark_rank", "trust_as_of"]

#: Schema of :func:`rank_item_frame`'s output: one row per item, fused quality on the normalised scale.
ITEM_RESULT_SCHEMA = ("item_id string, mean double, sd double, n_eff double, n_ratings long, plain_mean double, "
                      "bayes_average double, love string")


def trust_as_of(trust: pd.DataFrame, at: float) -> pd.DataFrame:
    """The store's current trust edges (:meth:`Store.trust_frame`) from the raw ``trust`` table."""
    if trust.empty:
        return trust
    df = trust[trust["created_at"] <= at].sort_values("created_at", kind="stable")
    df = df.drop_duplicates(["truster_id", "trustee_id", "domain"], keep="last")
    live = (df["valid_until"].isna() | (df["valid_until"] > at)) & (df["level"] > 0)
    return df[live].reset_index(drop=True)


def read_tables(folder: Path, at: float) -> dict[str, pd.DataFrame]:
    """Event tables beside the reviews (``items`` required)."""
    items = folder / "items.parquet"
    if not items.exists():
        raise FileNotFoundError(f"{items}: missing; write it with `truescore export items --out {items}`")
    frames = {"items": pd.read_parquet(items)}
    for name in ("votes", "flags", "trust", "users"):
        path = folder / f"{name}.parquet"
        if path.exists():
            frames[name] = pd.read_parquet(path)
    if "trust" in frames:
        frames["trust"] = trust_as_of(frames["trust"], at)
    return frames


def rank_item_frame(pdf: pd.DataFrame, ctx: RankContext) -> pd.DataFrame:
    """The grouped pandas function: one item's reviews (with their per-review context) -> its result row.

    ``pdf`` has the review columns ``id, item_id, rating, min_rating, max_rating, created_at`` and the
    context columns ``bias, rho, rater_ratings, trust, integrity, group, item_min, item_max,
    fake_probability, sentiment, quality, incentivized, helpful, unhelpful, flagged`` (NaN: unscored).
    The rows are put in ``(created_at, id)`` order, the order of ``truescore rank``'s snapshot, and run
    through :func:`~truescore.ranking.pipeline.rank_items` as a block of one item.
    """
    pdf = pdf.sort_values(["created_at", "id"], kind="stable")
    lo, hi = pdf["min_rating"].to_numpy(float), pdf["max_rating"].to_numpy(float)

    def col(name: str) -> np.ndarray:
        return pdf[name].to_numpy(float)

    rows = ItemRows(
        item=np.zeros(len(pdf), dtype=np.int64), n_items=1, rating=(col("rating") - lo) / (hi - lo),
        created_at=col("created_at"), bias=col("bias"), rho=col("rho"), rater_ratings=col("rater_ratings"),
        fake_probability=col("fake_probability"), trust=col("trust"), integrity=col("integrity"),
        group=pdf["group"].to_numpy(np.int64),
    )
    signals = ReviewSignals(sentiment=col("sentiment"), quality=col("quality"),
                            incentivized=pdf["incentivized"].to_numpy(bool), helpful=col("helpful"),
                            unhelpful=col("unhelpful"), flagged=pdf["flagged"].to_numpy(bool))
    part, love = rank_items(rows, signals, col("item_min")[:1], col("item_max")[:1], ctx)
    return pd.DataFrame({
        "item_id": [str(pdf["item_id"].iloc[0])], "mean": part.mean, "sd": part.sd, "n_eff": part.n_eff,
        "n_ratings": part.n_ratings, "plain_mean": part.plain_mean, "bayes_average": part.bayes_average,
        "love": [None if love[0] is None else json.dumps(love[0].to_dict())],
    })


def _context_frames(got: RankingInputs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The global step's per-review, per-rater and per-item columns, keyed by id."""
    snap, inp = got.snapshot, got.fusion
    n = snap.n_ratings
    reviews = pd.DataFrame({
        "id": snap.review_ids.astype(str), "trust": inp.trust,
        "integrity": inp.integrity if inp.integrity is not None else np.zeros(n),
        "group": inp.group if inp.group is not None else np.full(n, -1, dtype=np.int64),
    })
    raters = pd.DataFrame({
        "user_id": snap.user_ids.astype(str),
        "rho": rater_reliability(inp.reliability, got.ctx.fusion.alpha_ref, got.ctx.settings),
        "bias": np.nan_to_num(inp.bias, nan=0.0),
        "rater_ratings": np.bincount(snap.user_idx, minlength=snap.n_users).astype(np.float64),
    })
    items = pd.DataFrame({"item_id": snap.item_ids.astype(str), "item_min": snap.item_min,
                          "item_max": snap.item_max})
    return reviews, raters, items


def _review_table(spark: Any, live: Any, got: RankingInputs, folder: Path, scores: Path | None) -> Any:
    """The live reviews of the snapshot with every column :func:`rank_item_frame` reads (a Spark frame)."""
    from pyspark.sql import functions as F

    review_ctx, rater_ctx, item_ctx = _context_frames(got)
    # Spark picks the joins: broadcast while the context tables are small, shuffles at scale
    df = (live.join(spark.createDataFrame(review_ctx), "id", "inner")
          .join(spark.createDataFrame(rater_ctx), "user_id", "left")
          .join(spark.createDataFrame(item_ctx), "item_id", "left"))
    score_cols = ("fake_probability", "sentiment", "quality")
    if scores is not None:
        table = spark.read.parquet(str(scores))
        table = table.select("review_id", *[F.col(c).cast("double") if c in table.columns
                                            else F.lit(None).cast("double").alias(c) for c in score_cols])
        df = df.join(table.dropDuplicates(["review_id"]).withColumnRenamed("review_id", "id"), "id", "left")
    else:
        df = df.select("*", *[F.lit(None).cast("double").alias(c) for c in score_cols])
    votes_path = folder / "votes.parquet"
    if votes_path.exists():
        helpful = F.col("helpful").cast("boolean")
        votes = spark.read.parquet(str(votes_path)).groupBy(F.col("review_id").alias("id")).agg(
            F.sum(F.when(helpful, 1.0).otherwise(0.0)).alias("helpful"),
            F.sum(F.when(~helpful, 1.0).otherwise(0.0)).alias("unhelpful"))
        df = df.join(votes, "id", "left")
    else:
        df = df.select("*", F.lit(0.0).alias("helpful"), F.lit(0.0).alias("unhelpful"))
    flags_path = folder / "flags.parquet"
    if flags_path.exists():
        flagged = spark.read.parquet(str(flags_path)).select(F.col("review_id").alias("id")).distinct()
        df = df.join(flagged.withColumn("flagged", F.lit(True)), "id", "left")
    else:
        df = df.withColumn("flagged", F.lit(False))
    incentivized = (F.coalesce(F.col("is_incentivized").cast("boolean"), F.lit(False))
                    if "is_incentivized" in live.columns else F.lit(False))
    return df.select(
        "id", "item_id", "rating", "min_rating", "max_rating", "created_at", "bias", "rho", "rater_ratings",
        "trust", "integrity", "group", "item_min", "item_max", *score_cols,
        incentivized.alias("incentivized"), F.coalesce("helpful", F.lit(0.0)).alias("helpful"),
        F.coalesce("unhelpful", F.lit(0.0)).alias("unhelpful"),
        F.coalesce("flagged", F.lit(False)).alias("flagged"))


def _per_item_results(results: pd.DataFrame, got: RankingInputs) -> tuple[ItemFusion, list[LoveScore | None]]:
    """The collected result rows in the snapshot's item order, as the kernel's per-item arrays."""
    ids = pd.Index(got.snapshot.item_ids.astype(str))
    res = results.drop_duplicates("item_id").set_index("item_id").reindex(ids)
    if res["mean"].isna().any():
        missing = ids[res["mean"].isna().to_numpy()]
        raise RuntimeError(f"spark rank: no result for {len(missing)} item(s), e.g. {missing[0]!r}")
    part = ItemFusion(
        mean=res["mean"].to_numpy(float), sd=res["sd"].to_numpy(float), n_eff=res["n_eff"].to_numpy(float),
        n_ratings=res["n_ratings"].to_numpy(np.int64), plain_mean=res["plain_mean"].to_numpy(float),
        bayes_average=res["bayes_average"].to_numpy(float), weight=np.empty(0), factors={},
    )
    love = [None if not isinstance(x, str) else LoveScore(**json.loads(x)) for x in res["love"]]
    return part, love


def _stored_evidence(score_path: Path, reviews: pd.DataFrame) -> FusionEvidence | None:
    """The integrity evidence and groups ``truescore spark score`` wrote beside its ``review_scores.parquet``
    (columns ``integrity_evidence``, ``integrity_group``; descriptions in ``integrity.json``), in the order of
    ``reviews``; None when that run did not write them (then the metadata-only evidence is computed)."""
    import pyarrow.parquet as pq

    from truescore.spark.integrity import INTEGRITY_RUN_FILE

    if "integrity_evidence" not in pq.read_schema(score_path).names:
        return None
    cols = pd.read_parquet(score_path, columns=["review_id", "suspicion", "integrity_evidence", "integrity_group"])
    cols = cols.set_index("review_id").reindex(reviews["id"].to_numpy(object))
    if cols["suspicion"].isna().any():
        missing = cols.index[cols["suspicion"].isna()][0]
        raise ValueError(f"{score_path}: review {missing!r} has no suspicion: run `truescore spark score` on "
                         "these reviews again")
    codes, uniques = pd.factorize(cols["integrity_group"].astype(object), use_na_sentinel=True)
    run_file = score_path.parent / INTEGRITY_RUN_FILE
    names = json.loads(run_file.read_text()).get("groups", {}) if run_file.is_file() else {}
    return FusionEvidence(evidence=cols["integrity_evidence"].fillna(0.0).to_numpy(float),
                          group=codes.astype(np.int64),
                          labels={g: names.get(str(n), "detected group") for g, n in enumerate(uniques)})


def spark_rank(spark: Any, reviews: str | Path, out: str | Path, *, tables: str | Path | None = None,
               scores: str | Path | None = None, at: float | None = None,
               reliability: ReliabilityResult | None = None, settings: Settings | None = None) -> int:
    """Rank every item of the reviews Parquet (public view); writes ``out/product_rankings.parquet``.

    ``reliability`` is a fit of the same reviews (e.g. an earlier :func:`~truescore.spark.fit.spark_fit`
    of the job); fitted here with ``spark_fit`` when absent. ``settings`` default: the process-wide
    settings (a Spark command is a door). Returns the number of items ranked.
    """
    from truescore.config import get_settings
    from truescore.ranking.pipeline import MODEL_VERSION, product_rankings, ranking_records
    from truescore.reliability.vb import VBOptions

    cfg = settings if settings is not None else get_settings()
    now = time.time() if at is None else float(at)
    folder = Path(tables) if tables is not None else Path(reviews).parent
    frames = read_tables(folder, now)
    score_path = None
    if scores is not None:
        score_path = Path(scores) / "review_scores.parquet"
        if not score_path.exists():
            raise FileNotFoundError(f"{score_path}: no such file (run `truescore spark score` first)")
    if reliability is None:
        reliability, _ = spark_fit(spark, reviews, VBOptions.from_settings(cfg.reliability))
    live = live_reviews(spark, reviews).drop("text", "title").persist()
    review_frame = live.toPandas().merge(frames["items"][["id", "topic"]].rename(columns={"id": "item_id"}),
                                         on="item_id", how="inner")
    frames["reviews"] = review_frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)
    integrity = _stored_evidence(score_path, frames["reviews"]) if score_path is not None else None
    # the global step, on the driver
    got = ranking_inputs(frames, at=now, settings=cfg, reliability=reliability, integrity=integrity)
    ctx = spark.sparkContext.broadcast(got.ctx)
    table = _review_table(spark, live, got, folder, score_path)
    per_item = table.groupBy("item_id").applyInPandas(lambda pdf: rank_item_frame(pdf, ctx.value),
                                                      ITEM_RESULT_SCHEMA)
    part, love = _per_item_results(per_item.toPandas(), got)
    ctx.unpersist()
    live.unpersist()
    products = product_rankings(got.snapshot, part, love, cfg.ranking)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame(ranking_records(products, got.observer)).assign(model_version=MODEL_VERSION,
                                                                        fitted_at=time.time())
    rows.to_parquet(out_dir / "product_rankings.parquet", index=False)
    return len(rows)

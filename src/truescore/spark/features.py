"""The text engine's context features as a Spark job (the first stage of ``truescore spark score``).

:func:`truescore.text.features.compute_features` (with ``global_duplicates=False``, as ``truescore score``
calls it) is composed of four kinds of features; this job runs each kind where its inputs are, with the
same functions, so that no review text is brought to the driver:

=================  ====================================================  =========================================
kind               features                                              Spark
=================  ====================================================  =========================================
global context     the IDF table (document frequency of every word over  ``mapInPandas`` (distinct words per text)
                   all texts) and the median time (stand-in for a        + ``groupBy(word).count``; the table is
                   missing ``created_at``): :class:`FeatureContext`      collected and broadcast (words and
                                                                         counts only, no text)
per review         text statistics, style, VADER, rating behaviour,     ``mapInPandas``:
                   consistency, votes, photos, disclosure                :func:`review_features` (vote totals
                   (:data:`REVIEW_FEATURES`)                             from ``groupBy(review_id)`` on the votes)
per item           leave-one-out consensus, item sd and count, item      ``groupBy(item_id).applyInPandas``:
                   timing, ``max_sim_item`` (:data:`ITEM_FEATURES`)      :func:`item_features`
per reviewer       history, reviewer timing, ``max_sim_user``            ``groupBy(user_id).applyInPandas``:
                   (:data:`USER_FEATURES`)                               :func:`user_features`
per equal text     ``exact_duplicate_count``                             ``groupBy(normalised text).count``, join
=================  ====================================================  =========================================

``max_sim_any`` (all pairs) is NaN, as with ``global_duplicates=False``. The results are joined by review
id. Each group's rows are put in ``(created_at, id)`` order, the order of ``truescore score``'s frame, so
the group functions see the same rows in the same order as on one machine; the document frequencies are
integer counts (exact in any partitioning) and the TF-IDF columns are in sorted word order on both paths.
Hence the features equal ``compute_features`` (tests/test_spark_features.py: within 1e-9 with 1 and 4
shuffle partitions; measured: bit for bit there and on 10,261 real reviews).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from truescore.text.features import (
    FEATURES,
    ITEM_FEATURES,
    ITEM_INPUTS,
    REVIEW_FEATURES,
    USER_FEATURES,
    USER_INPUTS,
    FeatureContext,
    document_terms,
    idf_table,
    item_features,
    normalized_text,
    review_features,
    user_features,
    vader_scores,
)

__all__ = ["FEATURE_PREFIX", "context_features", "spark_feature_context"]

FEATURE_PREFIX = "f__"
_F = FEATURE_PREFIX
_VOTES = ("_votes_yes", "_votes_total")
_NORM = "_norm"


def _terms_job(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Each text's distinct words (one row per (text, word)): the document frequencies' inputs."""
    for batch in batches:
        words = [w for t in batch["text"].tolist() for w in document_terms(t)]
        yield pd.DataFrame({"term": pd.Series(words, dtype=object)})


def spark_feature_context(live: Any) -> FeatureContext:
    """The :class:`FeatureContext` of the reviews DataFrame ``live`` (non-null ``text``) by Spark aggregations.

    IDF: ``n`` = rows, ``df(w)`` = rows whose text has ``w`` (``groupBy(word).count``), exact integers, then
    :func:`idf_table` on the driver (words and counts only). Time fill: the median of the known
    ``created_at`` when some are missing (only those times are collected, 8 bytes a review), None when none
    is known; when none is missing the fill is never used and an approximate median stands in.
    """
    from pyspark.sql import functions as F

    n = live.count()
    counts = live.select("text").mapInPandas(_terms_job, "term string").groupBy("term").count()
    idf = idf_table({r["term"]: int(r["count"]) for r in counts.toLocalIterator()}, n)
    if "created_at" not in live.columns:
        return FeatureContext(idf=idf, time_fill=None)
    t = F.col("created_at").cast("double")
    known = live.where(t.isNotNull() & ~F.isnan(t))
    n_known = known.count()
    if n_known == 0:
        return FeatureContext(idf=idf, time_fill=None)
    if n_known == n:
        fill = known.agg(F.percentile_approx(t, 0.5).alias("m")).first()["m"]
        return FeatureContext(idf=idf, time_fill=float(fill))
    times = known.select(t.alias("t")).toPandas()["t"].to_numpy(dtype=float)
    return FeatureContext(idf=idf, time_fill=float(np.median(times)))


def _review_job(has_votes: bool, keep: list[str]) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """:func:`review_features` of each batch, with the columns the group jobs need passed through."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if not len(batch):
                continue
            batch = batch.reset_index(drop=True)
            texts = batch["text"].tolist()
            totals = ((batch[_VOTES[0]].to_numpy(dtype=float), batch[_VOTES[1]].to_numpy(dtype=float))
                      if has_votes else None)
            feats = review_features(batch, texts, vader_scores(texts), totals)
            out = pd.concat([batch[keep], feats.add_prefix(_F).astype(float)], axis=1)
            out[_NORM] = [normalized_text(t) for t in texts]
            yield out
    return run


def _group_job(fn: Callable[[pd.DataFrame, FeatureContext], pd.DataFrame], context: Any
               ) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn`` on all rows of one group in ``(created_at, id)`` order (``context``: a broadcast FeatureContext)."""
    def run(rows: pd.DataFrame) -> pd.DataFrame:
        order = [c for c in ("created_at", "id") if c in rows.columns]
        rows = rows.sort_values(order, kind="stable").reset_index(drop=True)
        rows = rows.rename(columns=lambda c: c.removeprefix(_F))
        return pd.concat([rows[["id"]], fn(rows, context.value).add_prefix(_F).astype(float)], axis=1)
    return run


def _vote_totals(votes: Any) -> Any:
    """Helpful and all votes per review id (``helpful`` read as a boolean, as :func:`vote_totals`)."""
    from pyspark.sql import functions as F

    helpful = F.coalesce(F.col("helpful").cast("boolean").cast("double"), F.lit(0.0))
    return votes.groupBy("review_id").agg(F.sum(helpful).alias(_VOTES[0]), F.count(F.lit(1)).alias(_VOTES[1]))


def context_features(spark: Any, live: Any, votes: Any | None = None, context: FeatureContext | None = None) -> Any:
    """Every feature of :data:`FEATURES` for every row of ``live``: a DataFrame ``id, f__<feature>...``.

    ``live``: the current reviews (``truescore.spark.fit.live_reviews``) with a non-null ``text``;
    ``votes``: ``review_id, helpful`` rows or None (then ``helpful_yes`` / ``helpful_total`` of ``live``
    when present); ``context``: a precomputed :class:`FeatureContext` (default: :func:`spark_feature_context`).
    Equal to ``compute_features(live.toPandas() in (created_at, id) order, votes, global_duplicates=False)``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    ctx = spark.sparkContext.broadcast(context or spark_feature_context(live))
    base = live
    if votes is not None:
        totals = _vote_totals(votes).withColumnRenamed("review_id", "_vid")
        base = live.join(totals, live["id"] == totals["_vid"], "left").drop("_vid").fillna(0.0, subset=list(_VOTES))
    keep = [c for c in dict.fromkeys(("id", *ITEM_INPUTS[:3], *USER_INPUTS[:3])) if c in live.columns]
    schema = StructType([*(live.schema[c] for c in keep), *(StructField(_F + n, DoubleType()) for n in REVIEW_FEATURES),
                         StructField(_NORM, StringType())])
    # computed once (VADER and the text statistics are the costly part), cut from its lineage as in spark fit
    per = base.mapInPandas(_review_job(votes is not None, keep), schema).localCheckpoint()

    def grouped(key: str, inputs: tuple[str, ...], fn: Any, names: tuple[str, ...]) -> Any:
        cols = [c if c in keep else _F + c for c in inputs if c in keep or c in REVIEW_FEATURES]
        out = StructType([live.schema["id"], *(StructField(_F + n, DoubleType()) for n in names)])
        return per.select("id", *cols).groupBy(key).applyInPandas(_group_job(fn, ctx), out)

    item = grouped("item_id", ITEM_INPUTS, item_features, ITEM_FEATURES)
    user = grouped("user_id", USER_INPUTS, user_features, USER_FEATURES)
    same = per.groupBy(_NORM).agg(F.count(F.lit(1)).cast("double").alias("_same"))
    dup = F.when(F.col(_NORM) != "", F.col("_same") - 1.0).otherwise(0.0)  # exact_duplicate_count
    review = (per.join(same, _NORM).withColumn(_F + "exact_duplicate_count", dup)
              .withColumn(_F + "max_sim_any", F.lit(float("nan"))))
    joined = review.join(item, "id").join(user, "id")
    return joined.select("id", *(_F + f.name for f in FEATURES))

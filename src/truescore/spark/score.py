"""Text scores of every review as a Spark job (``truescore spark score``).

What runs where
---------------
1. *Context features* (text statistics, VADER, reviewer history, item consensus, timing, votes,
   duplicates within an item or a reviewer): :func:`truescore.spark.features.context_features`, on the
   executors, with the functions :func:`truescore.text.features.compute_features` is composed of (the call
   ``truescore score`` makes, ``global_duplicates=False``): per review in ``mapInPandas``, per item and per
   reviewer in ``groupBy(...).applyInPandas``, the IDF table from a Spark word count (broadcast: words and
   document counts, no text), exact duplicates by a count per normalised text; joined by review id. The
   features equal ``compute_features`` (tests: within 1e-9 with 1 and 4 shuffle partitions; measured:
   bit for bit there and on 10,261 real reviews, amazon-musical-instruments). Each review's
   chunk (``batch_size`` consecutive reviews in ``(created_at, id)`` order, the chunks of ``truescore
   score``) comes from a distributed sort of ids and times with ``zipWithIndex``. The driver holds no
   review text for this step: its Python heap peaked at 4 MB for the features of those 10,261 reviews (the
   IDF table), against 110 MB when it computed them itself.
2. *Models* (the sentence encoder, VADER, the sentiment, fake and quality heads): per partition with
   ``mapInPandas``, the shipped models loaded ONCE per Python worker (:func:`truescore.text.get_scorer`
   keeps one scorer per configuration in a process and Spark reuses its workers; the driver's text
   settings travel with the job), batches of ``batch_size`` reviews. This is the slow
   part (~100 reviews/s per core) and it scales with the executors.
3. *Suspicion* (the integrity engine of issue 11: rings, cohorts, change points, near-duplicate texts):
   global, so once on the driver with the store path's function (:mod:`truescore.spark.integrity`);
   ~30 s per 1 M reviews, cheap next to step 2. The texts stay on the executors: the near-duplicate
   detector's MinHash signatures are computed there (``mapInPandas``) and its LSH bands and candidate
   confirmation run in Spark, so the driver collects only the metadata columns (~105 bytes per review
   on amazon-musical-instruments), a has-signature flag and the confirmed pairs (against ~630 bytes
   per review there when it collected the live reviews with texts and titles). Adds ``suspicion``,
   ``suspicion_reasons`` to ``review_scores.parquet`` and writes ``user_reliability.parquet`` (with the
   account suspicion) and ``rings.parquet``. Without text (or with ``text=False``) step 2 is skipped and
   ``review_scores.parquet`` carries the suspicion only, as ``truescore score`` on a metadata-only store.

No step collects a review text to the driver: ``has_text`` is a Spark job (:func:`_has_text`), the
features and models run on the executors, and only ids and scores come back.

Per-review metadata functions
-----------------------------
``review_functions`` maps a column name to ``fn(reviews: DataFrame) -> array``, evaluated on the same
batches as the text models; each becomes a column of ``review_scores.parquet``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from truescore.config import Settings, TextSettings, get_settings
from truescore.spark.features import FEATURE_PREFIX as _F
from truescore.spark.fit import live_reviews
from truescore.spark.integrity import IntegrityRun
from truescore.text.star_calibration import calibrate_scores

__all__ = ["ReviewFunction", "SparkScoreReport", "review_positions", "score_run", "spark_score",
           "spark_votes"]

ReviewFunction = Callable[[pd.DataFrame], Any]
_SCORE_COLS = ("quality", "fake_probability", "sentiment")


def _score_job(feature_names: list[str], review_columns: list[str], functions: Mapping[str, ReviewFunction],
               settings: TextSettings) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Score each chunk (``_chunk``) of a partition as ONE call of ``score_frame``, in row order.

    The encoder pads and sorts within a call, so a review's scores depend (slightly, ~1e-3 in bfloat16)
    on the other reviews of its call; the chunks are those of ``truescore score`` (``batch_size``
    consecutive reviews in ``(created_at, id)`` order), which makes the numbers the same.
    """
    def score(scorer: Any, chunk: pd.DataFrame) -> pd.DataFrame:
        part = chunk.reset_index(drop=True)
        feats = part[[_F + n for n in feature_names]].set_axis(feature_names, axis=1).astype(float)
        reviews = part[review_columns]
        scored = scorer.score_frame(reviews, features=feats)
        for name, fn in functions.items():
            scored[name] = np.asarray(fn(reviews), dtype=float)
        return scored

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from truescore.text import get_scorer

        scorer = get_scorer(settings)  # loaded once per worker process
        pending: pd.DataFrame | None = None
        for batch in batches:
            if not len(batch):
                continue
            pending = batch if pending is None else pd.concat([pending, batch], ignore_index=True)
            last = pending["_chunk"].iloc[-1]
            done = pending[pending["_chunk"] != last]
            pending = pending[pending["_chunk"] == last]
            for _, chunk in done.groupby("_chunk", sort=True):
                yield score(scorer, chunk)
        if pending is not None and len(pending):
            yield score(scorer, pending)
    return run


@dataclass(frozen=True, slots=True)
class SparkScoreReport:
    """What :func:`score_run` did: reviews written, how many got text scores, the integrity run."""

    n_reviews: int
    n_text_scored: int
    integrity: IntegrityRun | None


def spark_score(spark: Any, reviews: str | Path, out: str | Path, *, batch_size: int | None = None,
                votes: str | Path | None = None, review_functions: Mapping[str, ReviewFunction] | None = None,
                text: bool | None = None, fit: str | Path | None = None, integrity: bool = True,
                settings: Settings | None = None) -> int:
    """Score every current review of the reviews Parquet; writes ``out/review_scores.parquet``.

    Returns the number of reviews written. See :func:`score_run`.
    """
    return score_run(spark, reviews, out, batch_size=batch_size, votes=votes, review_functions=review_functions,
                     text=text, fit=fit, integrity=integrity, settings=settings).n_reviews


def score_run(spark: Any, reviews: str | Path, out: str | Path, *, batch_size: int | None = None,
              votes: str | Path | None = None, review_functions: Mapping[str, ReviewFunction] | None = None,
              text: bool | None = None, fit: str | Path | None = None, integrity: bool = True,
              settings: Settings | None = None) -> SparkScoreReport:
    """Text scores and suspicion of every current review of the reviews Parquet (``truescore spark score``).

    Text scores (``text``: None = when some review has a non-blank text, as ``truescore score``; False =
    metadata only; True = required) are equal to ``truescore score`` on the same store (the same
    features, the same models; see tests/test_spark.py for the tolerance). With ``integrity`` the
    issue-11 suspicion of every review and account and the rings are computed by
    :func:`truescore.spark.integrity.spark_integrity` (near-duplicate texts in Spark, the rest on the
    driver over the metadata; ``fit``: a ``truescore spark fit`` output folder, else the fit runs in this
    job) and written as described there. ``settings`` default: the process-wide settings (a Spark command
    is a door); ``batch_size`` default ``settings.text.batch_size``.
    """
    from truescore.integrity.runner import MODEL_VERSION as INTEGRITY_VERSION
    from truescore.spark.integrity import spark_integrity, write_integrity

    cfg = settings if settings is not None else get_settings()
    size = int(batch_size or cfg.text.batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    live = live_reviews(spark, reviews)
    has_text = "text" in live.columns and _has_text(live)
    run_text = has_text if text is None else bool(text)
    if run_text and "text" not in live.columns:
        raise ValueError(f"{reviews}: column text missing; write the file with `truescore export reviews` "
                         "(or score metadata only with --no-text)")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if live.isEmpty():
        return SparkScoreReport(0, 0, None)
    run = None
    if integrity:  # global by design: the metadata and the texts' signatures (no text) on the driver
        run = spark_integrity(spark, reviews, live, fit=fit, settings=cfg)
    calibration = None
    if run_text:
        scored, calibration = _text_scores(spark, live, size, reviews, votes, dict(review_functions or {}), cfg.text)
    elif run is not None:
        scored = run.reviews[["review_id"]].assign(model_version=INTEGRITY_VERSION, fitted_at=time.time())
    else:
        raise ValueError("nothing to score: no text scoring (no text, or --no-text) and no integrity")
    n_text = len(scored) if run_text else 0
    if run is not None:
        scored = scored.merge(run.reviews, on="review_id", how="outer")
        missing = scored["model_version"].isna()
        scored.loc[missing, "model_version"] = INTEGRITY_VERSION
        scored.loc[missing, "fitted_at"] = time.time()
        write_integrity(run, out_dir)
    scored.to_parquet(out_dir / "review_scores.parquet", index=False)
    if calibration is not None:  # what was fitted, beside the scores (the store keeps it in the run's details)
        (out_dir / "sentiment_calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    return SparkScoreReport(n_reviews=len(scored), n_text_scored=n_text, integrity=run)


def _has_text(live: Any) -> bool:
    """Whether some review has a non-blank text (``str.strip``, as ``truescore score``), without collecting texts."""
    def job(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.DataFrame({"t": [any(isinstance(t, str) and t.strip() for t in batch["text"].tolist())]})
    return bool(live.select("text").mapInPandas(job, "t boolean").where("t").limit(1).count() > 0)


def spark_votes(spark: Any, reviews: str | Path, votes: str | Path | None) -> Any | None:
    """The votes Parquet named, else ``votes.parquet`` beside the reviews file, as a Spark DataFrame; None when
    there is none or it is empty (then the vote features come from ``helpful_yes`` / ``helpful_total`` when the
    reviews have them, else NaN, as ``truescore score`` without votes)."""
    path = Path(votes) if votes is not None else Path(reviews).parent / "votes.parquet"
    if not path.exists():
        if votes is not None:
            raise FileNotFoundError(f"{votes}: no such file")
        return None
    frame = spark.read.parquet(str(path))
    return None if frame.isEmpty() else frame


def review_positions(spark: Any, live: Any) -> Any:
    """``id, _pos``: each review's rank in ``(created_at, id)`` order (missing times last, as pandas sorts),
    by a distributed sort and ``zipWithIndex`` of the ids and times only."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField, StructType

    ordered = live.select("id", "created_at").orderBy(F.asc_nulls_last("created_at"), F.asc("id"))
    pairs = ordered.rdd.zipWithIndex().map(lambda p: (p[0]["id"], p[1]))
    return spark.createDataFrame(pairs, StructType([live.schema["id"], StructField("_pos", LongType())]))


def _text_scores(spark: Any, live: Any, size: int, reviews: str | Path, votes: str | Path | None,
                 functions: dict[str, ReviewFunction], settings: TextSettings
                 ) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The text engine over the live reviews: context features, then the models in chunks, all on the executors;
    then the sentiment's calibration from the reviews' stars on the driver (:func:`calibrate_scores`, over four
    columns per review, as the scores already are). Returns the scores and what was fitted (None: switched off)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from truescore.spark.features import context_features
    from truescore.spark.session import partitions
    from truescore.text import get_scorer
    from truescore.text.features import FEATURES

    review_columns = [c for c in live.columns if c not in ("supersedes",)]
    texts = live.withColumn("text", F.coalesce(F.col("text"), F.lit(""))).localCheckpoint()
    feats = context_features(spark, texts, spark_votes(spark, reviews, votes))
    wide = (texts.join(feats, "id").join(review_positions(spark, texts), "id")
            .withColumn("_chunk", F.expr(f"_pos div {int(size)}")))
    schema = StructType([StructField("review_id", StringType()),
                         *(StructField(c, DoubleType()) for c in (*_SCORE_COLS, *functions))])
    sdf = wide.repartition(partitions(spark), "_chunk").sortWithinPartitions("_chunk", "_pos")
    names = [f.name for f in FEATURES]
    scored = sdf.mapInPandas(_score_job(names, review_columns, functions, settings), schema).toPandas()
    version = get_scorer(settings).model_version
    if settings.calibrate_sentiment:  # as truescore score: the stars of these reviews calibrate their sentiment
        stars = [c for c in ("id", "item_id", "rating", "min_rating", "max_rating", "topic") if c in live.columns]
        meta = live.select(*stars).toPandas().rename(columns={"id": "review_id"})
        items = Path(reviews).parent / "items.parquet"
        if "topic" not in meta.columns and items.exists():  # each item's topic, as the store's review frame
            topics = pd.read_parquet(items, columns=["id", "topic"]).drop_duplicates("id")
            meta = meta.merge(topics.rename(columns={"id": "item_id"}), on="item_id", how="left")
        meta = scored[["review_id"]].merge(meta, on="review_id", how="left")
        calibration = calibrate_scores(meta, scored, settings)
        if calibration.fitted:
            version = f"{version}+{calibration.version}"
        return scored.assign(model_version=version, fitted_at=time.time()), calibration.as_dict()
    return scored.assign(model_version=version, fitted_at=time.time()), None

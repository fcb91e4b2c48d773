"""The integrity engine's suspicion in a Spark run (part of ``truescore spark score``).

What runs where
---------------
The integrity engine (issue 11) is global: dense blocks / rings, lockstep cohorts, per-item change
points and near-duplicate clusters each need ALL current reviews at once (a ring spans items and
accounts; a cohort spans reviewers). So it runs once on the driver, with
:func:`truescore.integrity.runner.integrity_from_frame`, the function behind ``truescore score``'s store
path (nothing of it is re-implemented here), over the live reviews' METADATA. The only part of it that
reads texts, the near-duplicate detector (:mod:`truescore.integrity.duplicates`), is split, and its
text-reading half runs in Spark:

1. on the executors (:func:`integrity_columns`, ``mapInPandas``): each review's MinHash signature of
   its word 3-shingles, :func:`~truescore.integrity.duplicates.pack_signatures` (``H = 32`` uint32,
   128 bytes; null for no text or fewer than ``duplicate_min_words`` words), the metadata passing
   through the same batches;
2. in Spark (:func:`duplicate_pairs`): the LSH bands (one row per review and band, keyed by the band's
   16 bytes), a window per ``(band, key)`` in ``(created_at, id)`` order pairing each review with the
   next of its bucket, and the confirmation ``#{k: m_k = m'_k} / H >= duplicate_threshold`` on the
   packed signatures -- :func:`~truescore.integrity.duplicates.candidate_pairs`, done by Spark;
3. on the driver (:func:`duplicate_clusters`): the confirmed pairs (a handful: 108 for the 10,261
   reviews of amazon-musical-instruments) joined in the detector's order into the same union-find
   clusters, then the rest of the engine (accounts per cluster and item, lift, evidence, suspicion).

So no text and no signature reaches the driver: it holds the metadata frame (~105 bytes per review
measured on amazon-musical-instruments: ids, times, ratings; the texts and titles, ~526 bytes per
review there, stay on the executors), a has-signature flag (1 byte per review) and the clusters (16
bytes per text with a signature), plus the engine's own per-review arrays. The results are the
single-machine ones, cluster ids included (tests/test_spark_integrity_dups.py: bit for bit with 1 and
4 shuffle partitions). The engine is cheap next to text scoring: ``truescore score`` on 1 M reviews
without text takes 30.2 s on one core including reading and writing the store
(docs/results/integrity_bench.md); the signatures take ~12,000 texts/s per core.

Inputs, exactly those of the store path (:func:`~truescore.integrity.runner.run_integrity`)
--------------------------------------------------------------------------------------------
* the current reviews (:func:`truescore.spark.fit.live_reviews`: superseded ones dropped, one rating per
  (user, item)), inner-joined to ``items.parquet`` beside the reviews for ``topic``, ordered by
  ``(created_at, id)`` -- the rows and order of :func:`truescore.store.integrity_io.review_columns`;
  ``text`` when the file has it, read on the executors only (steps 1-2 above; no text with at least
  ``duplicate_min_words`` words: no near duplicates, as the store path);
* account creation times from ``users.parquet`` beside the reviews, when present;
* ``reliability_lo`` of every rater from the reliability fit: ``FIT/user_reliability.parquet`` of a
  ``truescore spark fit`` run, or else :func:`truescore.spark.fit.spark_fit` in the same job (equal to
  ``truescore fit`` to 1e-9; the store path fits first as well when a rater has no fit).

Outputs (in the run's folder, loaded by ``truescore import-results``)
--------------------------------------------------------------------
``suspicion``, ``suspicion_reasons`` per review (columns of ``review_scores.parquet``); per account as
columns of ``user_reliability.parquet`` (the fit's rows, with ``item_quality.parquet`` too when the fit
ran in this job); ``rings.parquet`` with the rows of the store's ``rings`` table (replaced as a whole on
import, as ``truescore score`` replaces it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from truescore.config import Settings, get_settings
from truescore.integrity._common import TextClusters
from truescore.integrity.runner import MODEL_VERSION, integrity_from_frame, ring_records
from truescore.ranking.pipeline import fusion_groups

#: the integrity run's record in an output folder (model version, the fusion groups' descriptions)
INTEGRITY_RUN_FILE = "integrity.json"

__all__ = ["MINHASH_COLUMN", "RING_COLUMNS", "IntegrityRun", "duplicate_clusters", "duplicate_pairs",
           "integrity_columns", "integrity_review_frame", "spark_integrity", "write_integrity"]

_COLUMNS = ["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at"]
MINHASH_COLUMN = "minhash"
_HAS = "_has"
RING_COLUMNS = ["ring_id", "direction", "n_members", "n_targets", "members", "targets", "window_start",
                "window_end", "strength", "evidence", "model_version", "fitted_at"]


@dataclass(frozen=True, slots=True)
class IntegrityRun:
    """What :func:`spark_integrity` computed: per-review and per-account frames and the ring rows."""

    reviews: pd.DataFrame   # review_id, suspicion, suspicion_reasons, integrity_evidence, integrity_group
    accounts: pd.DataFrame  # user_id, suspicion, suspicion_reasons
    rings: pd.DataFrame     # the store's rings columns
    user_reliability: pd.DataFrame  # the fit's rows with the account suspicion
    item_quality: pd.DataFrame | None  # the fit's item rows when the fit ran in this job
    flagged_reviews: int
    flagged_accounts: int
    seconds: float
    #: the fusion's group keys -> descriptions (``integrity.json``, recorded by ``truescore import-results``)
    groups: dict[str, str] = field(default_factory=dict)


def integrity_columns(live: Any, min_words: int) -> Any:
    """The columns the integrity engine reads, as a Spark DataFrame without any text.

    The metadata columns of ``live`` (:func:`~truescore.spark.fit.live_reviews`) and, when it has ``text``,
    :data:`MINHASH_COLUMN`: each review's MinHash signature computed on the
    executors (``mapInPandas``, :func:`truescore.integrity.duplicates.pack_signatures`: ``H = 32``
    little-endian uint32, 128 bytes; null for no text or fewer than ``min_words`` words). The metadata
    pass through the same batches, so no join is needed.
    """
    from pyspark.sql.types import BinaryType, StructField, StructType

    meta = live.select(*_COLUMNS)
    if "text" not in live.columns:
        return meta
    schema = StructType([*meta.schema.fields, StructField(MINHASH_COLUMN, BinaryType(), True)])
    words = int(min_words)

    def job(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from truescore.integrity.duplicates import pack_signatures

        for batch in batches:
            texts = [t if isinstance(t, str) else None for t in batch["text"].tolist()]
            yield batch[_COLUMNS].assign(**{MINHASH_COLUMN: pack_signatures(texts, words)})
    return live.select(*_COLUMNS, "text").mapInPandas(job, schema)


def duplicate_pairs(spark: Any, signed: Any, reviews: str | Path, threshold: float) -> pd.DataFrame:
    """The confirmed candidate pairs of :func:`truescore.integrity.duplicates.candidate_pairs`, in Spark.

    ``signed`` is :func:`integrity_columns` (with :data:`MINHASH_COLUMN`). Over the reviews with a
    signature and an item in ``items.parquet`` (the driver frame's rows): each review gives one row per
    band, keyed by the band's ``R`` values (16 bytes of the packed signature); a window per
    ``(band, key)`` ordered by ``(created_at, id)`` (the driver frame's order) pairs each review with the
    next of its bucket; a pair is kept when ``#{k: m_k = m'_k} / H >= threshold``, counted on the packed
    signatures (one 4-byte slice per hash; ``count / H`` is exact in doubles, as ``np.mean`` of the
    same booleans). Only the kept pairs reach the driver: ``band, key, p_id, q_id``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from truescore.integrity.duplicates import BAND_ROWS, BANDS, SIGNATURE_SIZE

    items = spark.read.parquet(str(Path(reviews).parent / "items.parquet")).select(F.col("id").alias("item_id"))
    sig = (signed.where(F.col(MINHASH_COLUMN).isNotNull()).join(items.distinct(), "item_id", "left_semi")
           .select("id", "created_at", MINHASH_COLUMN))
    width = 4 * BAND_ROWS
    bands = (sig.select("id", "created_at", F.explode(F.sequence(F.lit(0), F.lit(BANDS - 1))).alias("band"),
                        MINHASH_COLUMN)
             .select("id", "created_at", "band",
                     F.expr(f"substring({MINHASH_COLUMN}, band * {width} + 1, {width})").alias("key")))
    bucket = Window.partitionBy("band", "key").orderBy("created_at", "id")
    cand = (bands.withColumn("q_id", F.lead("id").over(bucket)).where(F.col("q_id").isNotNull())
            .select("band", "key", F.col("id").alias("p_id"), "q_id"))
    p_sig = sig.select(F.col("id").alias("p_id"), F.col(MINHASH_COLUMN).alias("p_sig"))
    q_sig = sig.select(F.col("id").alias("q_id"), F.col(MINHASH_COLUMN).alias("q_sig"))
    terms = [F.when(F.substring("p_sig", 4 * k + 1, 4) == F.substring("q_sig", 4 * k + 1, 4), 1).otherwise(0)
             for k in range(SIGNATURE_SIZE)]
    same = terms[0]
    for term in terms[1:]:
        same = same + term
    kept = (cand.join(p_sig, "p_id").join(q_sig, "q_id")
            .where(same.cast("double") / float(SIGNATURE_SIZE) >= float(threshold))
            .select("band", "key", "p_id", "q_id"))
    return kept.toPandas()


def duplicate_clusters(frame: pd.DataFrame, pairs: pd.DataFrame, min_words: int, threshold: float
                       ) -> TextClusters:
    """The clusters of :func:`~truescore.integrity.duplicates.near_duplicates` from the pairs of
    :func:`duplicate_pairs`: ``rows`` are the frame's reviews with a signature (``_has``), the pairs are
    re-indexed to them and joined in the detector's order (band, then key as ``R`` unsigned integers,
    then position), so the cluster ids are the single-machine ones."""
    from truescore.integrity.duplicates import BAND_ROWS, union_clusters

    has = frame[_HAS].to_numpy(bool)
    rows = np.flatnonzero(has).astype(np.int64)
    rank = np.cumsum(has) - 1
    pos = pd.Index(frame["id"].to_numpy(object))
    p = pos.get_indexer(pairs["p_id"].to_numpy(object))
    q = pos.get_indexer(pairs["q_id"].to_numpy(object))
    if (p < 0).any() or (q < 0).any() or not (has[p].all() and has[q].all()):
        raise ValueError("duplicate pairs name reviews without a signature in the driver frame")
    key = np.frombuffer(b"".join(bytes(k) for k in pairs["key"]), dtype="<u4").reshape(len(pairs), BAND_ROWS)
    rp, rq = rank[p], rank[q]
    order = np.lexsort((rp, *(key[:, c] for c in reversed(range(BAND_ROWS))), pairs["band"].to_numpy(np.int64)))
    joined = np.c_[rp[order], rq[order]].astype(np.int64).reshape(-1, 2)
    return TextClusters(rows, union_clusters(rows.size, joined), min_words, threshold)


def integrity_review_frame(live: pd.DataFrame, reviews: str | Path) -> pd.DataFrame:
    """The store path's review frame from the live reviews: ``topic`` from ``items.parquet`` beside the
    reviews file (inner join, as the store's), ``text`` or ``_has`` kept when present, ordered by
    (created_at, id)."""
    items_path = Path(reviews).parent / "items.parquet"
    if not items_path.exists():
        raise FileNotFoundError(f"{items_path}: missing (the integrity engine needs each item's topic); "
                                f"write it with `truescore export items --out {items_path}`")
    items = pd.read_parquet(items_path, columns=["id", "topic"]).rename(columns={"id": "item_id"})
    cols = [*_COLUMNS, *(c for c in ("text", _HAS) if c in live.columns)]
    frame = live[cols].merge(items.drop_duplicates("item_id"), on="item_id", how="inner")
    return frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)


def _users(reviews: str | Path) -> pd.DataFrame | None:
    path = Path(reviews).parent / "users.parquet"
    return pd.read_parquet(path, columns=["id", "created_at"]) if path.exists() else None


def _fit_rows(spark: Any, reviews: str | Path, fit: str | Path | None, settings: Settings
              ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``user_reliability`` rows (and ``item_quality`` rows when fitted here) of the reliability fit."""
    if fit is not None:
        path = Path(fit) / "user_reliability.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (run `truescore spark fit --out {fit}` first)")
        users = pd.read_parquet(path)
        if "reliability_lo" not in users.columns or "user_id" not in users.columns:
            raise ValueError(f"{path}: columns user_id, reliability_lo missing")
        return users.drop(columns=["suspicion", "suspicion_reasons"], errors="ignore"), None
    from truescore.reliability._types import derived_records
    from truescore.reliability.vb import VBOptions
    from truescore.spark.fit import spark_fit

    result, report = spark_fit(spark, reviews, VBOptions.from_settings(settings.reliability))
    items, users = derived_records(result)
    now = time.time()
    return (pd.DataFrame(users).assign(model_version=report.model_version, fitted_at=now),
            pd.DataFrame(items).assign(model_version=report.model_version, fitted_at=now))


def spark_integrity(spark: Any, reviews: str | Path, live: Any, *, fit: str | Path | None = None,
                    settings: Settings | None = None) -> IntegrityRun:
    """Suspicion of every current review and account and the rings, as ``truescore score`` computes them.

    ``live`` is :func:`~truescore.spark.fit.live_reviews` of ``reviews`` (a Spark DataFrame): the texts'
    signatures are computed on the executors (:func:`integrity_columns`, persisted for the two jobs
    below), the near-duplicate pairs found in Spark (:func:`duplicate_pairs`), and only the metadata
    columns, a has-signature flag and the confirmed pairs are collected to the driver, where the rest of
    the engine runs (:func:`duplicate_clusters`, then ``integrity_from_frame``). ``settings`` default: the
    process-wide settings (a Spark command is a door).
    """
    from pyspark.sql import functions as F

    started = time.perf_counter()
    cfg = settings if settings is not None else get_settings()
    min_words = cfg.integrity.duplicate_min_words
    threshold = cfg.integrity.duplicate_threshold
    signed = integrity_columns(live, min_words).persist()
    try:
        has_sig = MINHASH_COLUMN in signed.columns
        meta = signed.select(*_COLUMNS, *([F.col(MINHASH_COLUMN).isNotNull().alias(_HAS)] if has_sig else []))
        frame = integrity_review_frame(meta.toArrow().to_pandas(), reviews)
        if frame.empty:
            raise ValueError(f"{reviews}: no current review with an item in items.parquet to score")
        clusters = None
        if has_sig:
            clusters = duplicate_clusters(frame, duplicate_pairs(spark, signed, reviews, threshold), min_words,
                                          threshold)
            frame = frame.drop(columns=[_HAS])
    finally:
        signed.unpersist()
    user_rows, item_rows = _fit_rows(spark, reviews, fit, cfg)
    lo = pd.Series(user_rows["reliability_lo"].to_numpy(float), index=user_rows["user_id"].to_numpy(object))
    result, snap = integrity_from_frame(frame, users=_users(reviews), reliability_lo=lo, settings=cfg,
                                        clusters=clusters)
    del frame
    evidence, group_keys, groups = fusion_groups(result)
    rev = pd.DataFrame({"review_id": snap.review_ids.astype(str), "suspicion": result.review_suspicion,
                        "suspicion_reasons": [r or None for r in result.review_reasons()],
                        "integrity_evidence": evidence, "integrity_group": group_keys})
    acc = pd.DataFrame({"user_id": snap.user_ids.astype(str), "suspicion": result.account_suspicion,
                        "suspicion_reasons": [r or None for r in result.account_reasons()]})
    now = time.time()
    ring_rows = [{**rec, "members": json.dumps(rec["members"]), "targets": json.dumps(rec["targets"]),
                  "evidence": json.dumps(rec["evidence"]), "model_version": MODEL_VERSION, "fitted_at": now}
                 for rec in ring_records(result, snap)]
    rings = pd.DataFrame(ring_rows, columns=RING_COLUMNS)
    user_rows = user_rows.merge(acc, on="user_id", how="left")
    return IntegrityRun(reviews=rev, accounts=acc, rings=rings, user_reliability=user_rows, item_quality=item_rows,
                        flagged_reviews=int(result.flagged_reviews.sum()),
                        flagged_accounts=int(result.flagged_accounts.sum()),
                        seconds=time.perf_counter() - started, groups=groups)


def write_integrity(run: IntegrityRun, out: str | Path) -> list[Path]:
    """``user_reliability.parquet`` (with the suspicion), ``rings.parquet`` and, when the fit ran in the
    job, ``item_quality.parquet`` in ``out``; the per-review columns go into ``review_scores.parquet``
    (written by the caller)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {"user_reliability": run.user_reliability, "rings": run.rings}
    if run.item_quality is not None:
        frames["item_quality"] = run.item_quality
    paths = []
    for name, frame in frames.items():
        path = out_dir / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    path = out_dir / INTEGRITY_RUN_FILE
    path.write_text(json.dumps({"model_version": MODEL_VERSION, "groups": run.groups}, indent=2))
    paths.append(path)
    return paths

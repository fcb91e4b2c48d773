"""The integrity engine's suspicion in a Spark run (part of ``truescore spark score``).

Why on the driver
-----------------
The integrity engine (issue 11) is global: dense blocks / rings, lockstep cohorts, per-item change
points and near-duplicate texts each need ALL current reviews at once (a ring spans items and
accounts; a cohort spans reviewers). So, like the context features of the text engine, it runs once on
the driver over the live reviews frame, with :func:`truescore.integrity.runner.integrity_from_frame`,
the function behind ``truescore score``'s store path (nothing of it is re-implemented here). It is
cheap next to text scoring: ``truescore score`` on 1 M reviews without text takes 30.2 s on one core
including reading and writing the store (docs/results/integrity_bench.md), while the text models do
~55 reviews/s per core.

Inputs, exactly those of the store path (:func:`~truescore.integrity.runner.run_integrity`)
--------------------------------------------------------------------------------------------
* the current reviews (:func:`truescore.spark.fit.live_reviews`: superseded ones dropped, one rating per
  (user, item)), inner-joined to ``items.parquet`` beside the reviews for ``topic``, ordered by
  ``(created_at, id)`` -- the rows and order of :func:`truescore.store.integrity_io.review_columns`;
  ``text`` when the file has it (near-duplicate detection then uses it; no non-blank text: metadata only);
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.integrity._common import TextSignatures

__all__ = ["MINHASH_COLUMN", "RING_COLUMNS", "IntegrityRun", "collect_integrity_columns", "integrity_columns",
           "integrity_review_frame", "spark_integrity", "write_integrity"]

_COLUMNS = ["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at"]
MINHASH_COLUMN = "minhash"
_ROW = "_row"
RING_COLUMNS = ["ring_id", "direction", "n_members", "n_targets", "members", "targets", "window_start",
                "window_end", "strength", "evidence", "model_version", "fitted_at"]


@dataclass(frozen=True, slots=True)
class IntegrityRun:
    """What :func:`spark_integrity` computed: per-review and per-account frames and the ring rows."""

    reviews: pd.DataFrame   # review_id, suspicion, suspicion_reasons
    accounts: pd.DataFrame  # user_id, suspicion, suspicion_reasons
    rings: pd.DataFrame     # the store's rings columns
    user_reliability: pd.DataFrame  # the fit's rows with the account suspicion
    item_quality: pd.DataFrame | None  # the fit's item rows when the fit ran in this job
    flagged_reviews: int
    flagged_accounts: int
    seconds: float


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


def collect_integrity_columns(live: Any, min_words: int) -> tuple[pd.DataFrame, TextSignatures | None]:
    """:func:`integrity_columns` on the driver, through Arrow: the metadata as a pandas frame (with
    ``_row``, its row number) and the signatures as one uint32 matrix (rows = those ``_row`` with one),
    read from the Arrow buffer without a Python object per review. None when the reviews have no text."""
    import pyarrow as pa

    from truescore.integrity.duplicates import SIGNATURE_BYTES, signatures_from_bytes

    table = integrity_columns(live, min_words).toArrow()
    if MINHASH_COLUMN not in table.column_names:
        return table.to_pandas().assign(**{_ROW: np.arange(table.num_rows)}), None
    col = table.column(MINHASH_COLUMN).combine_chunks()
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    packed = col.drop_null().cast(pa.binary(SIGNATURE_BYTES))
    start = packed.offset * SIGNATURE_BYTES
    data = memoryview(packed.buffers()[1])[start:start + len(packed) * SIGNATURE_BYTES] if len(packed) else b""
    sigs = signatures_from_bytes(valid, data, min_words)
    meta = table.drop_columns([MINHASH_COLUMN]).to_pandas()
    del table, col, packed
    return meta.assign(**{_ROW: np.arange(len(meta))}), sigs


def _reorder(sigs: TextSignatures, n_collected: int, row: npt.NDArray[np.int64]) -> TextSignatures:
    """The signatures re-indexed to a new frame whose ``k``-th rating is collected row ``row[k]`` (rows
    dropped by the items join vanish; the order is the frame's)."""
    rank = np.full(n_collected, -1, dtype=np.int64)
    rank[sigs.rows] = np.arange(sigs.rows.size)
    at = rank[row]
    keep = np.flatnonzero(at >= 0)
    return TextSignatures(keep.astype(np.int64), sigs.values[at[keep]], sigs.min_words)


def integrity_review_frame(live: pd.DataFrame, reviews: str | Path) -> pd.DataFrame:
    """The store path's review frame from the live reviews: ``topic`` from ``items.parquet`` beside the
    reviews file (inner join, as the store's), ``text`` or ``_row`` kept when present, ordered by
    (created_at, id)."""
    items_path = Path(reviews).parent / "items.parquet"
    if not items_path.exists():
        raise FileNotFoundError(f"{items_path}: missing (the integrity engine needs each item's topic); "
                                f"write it with `truescore export items --out {items_path}`")
    items = pd.read_parquet(items_path, columns=["id", "topic"]).rename(columns={"id": "item_id"})
    cols = [*_COLUMNS, *(c for c in ("text", _ROW) if c in live.columns)]
    frame = live[cols].merge(items.drop_duplicates("item_id"), on="item_id", how="inner")
    return frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)


def _users(reviews: str | Path) -> pd.DataFrame | None:
    path = Path(reviews).parent / "users.parquet"
    return pd.read_parquet(path, columns=["id", "created_at"]) if path.exists() else None


def _fit_rows(spark: Any, reviews: str | Path, fit: str | Path | None
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
    from truescore.spark.fit import spark_fit

    result, report = spark_fit(spark, reviews)
    items, users = derived_records(result)
    now = time.time()
    return (pd.DataFrame(users).assign(model_version=report.model_version, fitted_at=now),
            pd.DataFrame(items).assign(model_version=report.model_version, fitted_at=now))


def spark_integrity(spark: Any, reviews: str | Path, live: Any, *, fit: str | Path | None = None,
                    settings: Any = None) -> IntegrityRun:
    """Suspicion of every current review and account and the rings, as ``truescore score`` computes them.

    ``live`` is :func:`~truescore.spark.fit.live_reviews` of ``reviews`` (a Spark DataFrame): the texts'
    signatures are computed on the executors (:func:`integrity_columns`) and only the metadata and the
    signatures are collected to the driver, where the rest of the engine runs.
    """
    from truescore.config import get_settings
    from truescore.integrity.runner import MODEL_VERSION, integrity_from_frame, ring_records

    started = time.perf_counter()
    cfg = settings or get_settings()
    min_words = cfg.integrity.duplicate_min_words
    meta, sigs = collect_integrity_columns(live, min_words)
    n_collected = len(meta)
    frame = integrity_review_frame(meta, reviews)
    del meta
    if frame.empty:
        raise ValueError(f"{reviews}: no current review with an item in items.parquet to score")
    if sigs is not None:
        sigs = _reorder(sigs, n_collected, frame[_ROW].to_numpy(np.int64))
    frame = frame.drop(columns=[_ROW])
    user_rows, item_rows = _fit_rows(spark, reviews, fit)
    lo = pd.Series(user_rows["reliability_lo"].to_numpy(float), index=user_rows["user_id"].to_numpy(object))
    result, snap = integrity_from_frame(frame, users=_users(reviews), reliability_lo=lo, settings=cfg,
                                        signatures=sigs)
    del frame
    rev = pd.DataFrame({"review_id": snap.review_ids.astype(str), "suspicion": result.review_suspicion,
                        "suspicion_reasons": [r or None for r in result.review_reasons()]})
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
                        seconds=time.perf_counter() - started)


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
    return paths

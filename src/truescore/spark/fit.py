r"""The reliability fit (VB, seed 000) as a Spark job: reviews Parquet in, derived tables out.

Input: the layout ``truescore export reviews --out R.parquet`` writes (columns ``id, item_id, user_id,
rating, min_rating, max_rating, created_at`` and ``supersedes``). Output: ``DIR/item_quality.parquet``
and ``DIR/user_reliability.parquet`` with the columns of the store's tables, and ``DIR/fit.json``.

Same snapshot as the store
--------------------------
Superseded reviews are dropped, the rest ordered by ``(created_at, id)``; items and raters are numbered
in order of first appearance, ratings normalised by each review's own scale and each item shown on the
most common scale of its reviews (ties: the smallest), exactly as :meth:`Store.snapshot` does.

The sweep (ALS-style)
---------------------
Items and raters are numbered by their earliest ``(created_at, id)`` (one aggregation each, no global
sort; the id maps are broadcast, so the ratings are not shuffled to join them). The ratings are then
stored twice, once partitioned by item and sorted item-major (``item, created_at, id``), once
partitioned by rater and sorted ``(rater, item)`` (one current rating per pair), and cut from their
lineage by a checkpoint.
Only per-item and per-rater vectors move: each sweep broadcasts them and runs two map-only jobs,

1. *rater job* (partitioned by rater): :math:`s_{ui}` from the broadcast :math:`m_i, v_i`, the rater
   sums :math:`S_u` (and with the bias on, the weights and step 2's sums);
2. *item job* (partitioned by item): the weights :math:`\omega_{ui}` from the broadcast
   :math:`\beta_u`, the item sums :math:`\sum_u\omega_{ui}`, :math:`\sum_u\omega_{ui}(r_{ui}-c_u)`,

and the driver finishes steps 1-4 with the kernels of :mod:`truescore.reliability.kernels`. Every
per-item sum is a ``np.add.reduceat`` over the item's whole segment and every per-rater sum an
``np.bincount`` over the rater's ratings in item-major order, as on one machine; the global sums (the
mean rating, the empirical-Bayes means) are exact. The numbers are therefore those of ``truescore fit``
(to the last bit in our tests) with the same number of sweeps, whatever the partitioning.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.reliability import kernels as K
from truescore.reliability._stats import gamma_interval
from truescore.reliability.vb import VBOptions

__all__ = ["REVIEW_COLUMNS", "SparkFitReport", "fit_frames", "live_reviews", "spark_fit"]

FloatArray = npt.NDArray[np.float64]
_log = logging.getLogger(__name__)

#: Columns a reviews Parquet must have (``supersedes`` is optional).
REVIEW_COLUMNS = ("id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at")


@dataclass(frozen=True, slots=True)
class SparkFitReport:
    """What :func:`spark_fit` did."""

    n_items: int
    n_users: int
    n_ratings: int
    n_iter: int
    converged: bool
    seconds: float
    partitions: int
    master: str
    model_version: str
    broadcast_bytes_per_sweep: int
    hyper: dict[str, float]


# --------------------------------------------------------------------------------------------- input
#: Columns that must hold numbers (cast to double) and ids (integers are cast to strings, as the store keeps them).
_NUMBER_COLUMNS = ("rating", "min_rating", "max_rating", "created_at")
_ID_COLUMNS = ("id", "item_id", "user_id", "supersedes")


def check_review_schema(path: Path) -> dict[str, str]:
    """Read the Parquet footer(s) of ``path`` with pyarrow -- no Spark job, so a bad file fails in one
    line, not in an executor -- and check the reviews columns: present, numbers where numbers belong,
    ids as strings or integers. Returns the casts to apply (column -> Spark type).

    Raises
    ------
    ValueError
        Not a readable Parquet file or folder, no rows, a missing column, or a column of the wrong type.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(str(path), format="parquet")
        schema = dataset.schema
        rows = dataset.count_rows()  # from the footers' metadata
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ValueError(f"{path}: not a readable Parquet file or folder ({reason})") from None
    missing = [c for c in REVIEW_COLUMNS if c not in schema.names]
    if missing:
        raise ValueError(f"{path}: column(s) {', '.join(missing)} missing; write the file with "
                         "`truescore export reviews --out R.parquet`")
    if rows == 0:
        raise ValueError(f"{path}: no reviews (0 rows)")
    casts: dict[str, str] = {}
    for name in REVIEW_COLUMNS:
        if pa.types.is_null(schema.field(name).type):
            raise ValueError(f"{path}: column {name} has no values (Parquet type null; an empty file?)")
    for name in _NUMBER_COLUMNS:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            raise ValueError(f"{path}: column {name} has type {kind}; expected a number")
        if not pa.types.is_float64(kind):
            casts[name] = "double"
    for name in _ID_COLUMNS:
        if name not in schema.names:
            continue
        kind = schema.field(name).type
        if pa.types.is_integer(kind) or pa.types.is_null(kind):
            casts[name] = "string"
        elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise ValueError(f"{path}: column {name} has type {kind}; expected text (or integer) ids")
    return casts


def live_reviews(spark: Any, path: str | Path) -> Any:
    """The current reviews of a reviews Parquet (file or folder), columns checked: superseded ones dropped,
    and of several by one user on one item only the latest (``created_at``, then id), as in the store."""
    from pyspark.sql import functions as F

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    casts = check_review_schema(p)
    df = spark.read.parquet(str(p))
    for column, spark_type in casts.items():
        df = df.withColumn(column, F.col(column).cast(spark_type))
    if "supersedes" in df.columns:
        newer = df.select(F.col("supersedes").alias("_sid")).where(F.col("_sid").isNotNull()).distinct()
        df = df.join(newer, df["id"] == newer["_sid"], "left_anti")
    # one current rating per (user, item), as Store.snapshot: the latest by (created_at, id); the rest is history
    from pyspark.sql import Window

    latest = Window.partitionBy("user_id", "item_id").orderBy(F.col("created_at").desc(), F.col("id").desc())
    df = df.withColumn("_rank", F.row_number().over(latest)).where(F.col("_rank") == 1).drop("_rank")
    cols = [*REVIEW_COLUMNS, *(c for c in df.columns if c not in REVIEW_COLUMNS and c != "supersedes")]
    return df.select(*cols)


def _bad_row() -> Any:
    """True for a review the fit cannot use: a missing field, a NaN rating or ``max_rating <= min_rating``."""
    from pyspark.sql import functions as F

    return (F.col("rating").isNull() | F.col("min_rating").isNull() | F.col("max_rating").isNull()
            | F.col("created_at").isNull() | F.col("item_id").isNull() | F.col("user_id").isNull()
            | ~(F.col("max_rating") > F.col("min_rating")) | F.isnan("rating"))


def _name_bad_row(df: Any, path: str | Path) -> None:
    """Raise naming the first bad review (run only once the aggregation counted one: a scan of its own)."""
    first = df.where(_bad_row()).select("id").limit(1).collect()
    if first:
        raise ValueError(f"{path}: review {first[0]['id']!r} has a missing field or max_rating <= min_rating")


def _indexed(spark: Any, live: Any) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Ratings with dense item / rater indices in first-appearance order, plus the item and rater tables.

    First appearance is the smallest ``(created_at, id)`` of an item's (a rater's) current reviews, so
    the numbering is that of the store's snapshot without a global sort: one aggregation per key
    (items together with their rating scales), the small tables sorted on the driver, and the maps
    broadcast to the rows (no shuffle of the ratings). ``live``: the current reviews, best cut from
    their lineage (the de-duplication shuffle is then not repeated by each aggregation).
    """
    from pyspark.sql import functions as F

    first = F.min(F.struct("created_at", "id")).alias("first")
    n = F.count(F.lit(1)).alias("n")
    flat = [F.col("first.created_at").alias("t"), F.col("first.id").alias("rid"), "n"]
    scales = (live.groupBy("item_id", "min_rating", "max_rating").agg(first, n)
              .select("item_id", "min_rating", "max_rating", *flat).toPandas())
    bad = F.max(_bad_row().cast("int")).alias("bad")  # the row check rides on this aggregation's scan
    users = live.groupBy("user_id").agg(first, n, bad).select("user_id", *flat, "bad").toPandas()
    # items: the earliest (created_at, id) over their scales; Spark and Python both order strings by
    # code point (UTF-8 byte order), so the driver's sort is the one Spark would make
    scales = scales.sort_values(["t", "rid"], kind="stable")
    items = scales.groupby("item_id", sort=False).agg(t=("t", "first"), rid=("rid", "first"), n=("n", "sum"))
    items = items.reset_index().sort_values(["t", "rid"], kind="stable").reset_index(drop=True)
    users = users.sort_values(["t", "rid"], kind="stable").reset_index(drop=True)
    items["item_idx"] = np.arange(len(items), dtype=np.int64)
    users["user_idx"] = np.arange(len(users), dtype=np.int64)
    # the display scale of each item: its most common (min, max), ties to the smallest, as in the store
    scales = scales.rename(columns={"n": "count"}).merge(items[["item_id", "item_idx"]], on="item_id")
    scales = scales.sort_values(["item_idx", "min_rating", "max_rating"], kind="stable")
    modal = scales.sort_values(["item_idx", "count"], ascending=[True, False], kind="stable")
    modal = modal.drop_duplicates("item_idx")
    items["item_min"] = 0.0
    items["item_max"] = 1.0
    items.loc[modal["item_idx"].to_numpy(), "item_min"] = modal["min_rating"].to_numpy(float)
    items.loc[modal["item_idx"].to_numpy(), "item_max"] = modal["max_rating"].to_numpy(float)
    item_map = F.broadcast(spark.createDataFrame(items[["item_id", "item_idx"]]))
    user_map = F.broadcast(spark.createDataFrame(users[["user_id", "user_idx"]]))
    ratings = (live.join(item_map, "item_id").join(user_map, "user_id")
               .select(F.col("item_idx").cast("int").alias("item_idx"), F.col("user_idx").cast("int").alias("user_idx"),
                       "created_at", "id",
                       ((F.col("rating") - F.col("min_rating")) / (F.col("max_rating") - F.col("min_rating")))
                       .alias("r")))
    return ratings, items, users


# ------------------------------------------------------------------------------------ rating blocks
#: Ratings per block (about 16 MB of item index, rater index and rating); a block holds whole segments.
BLOCK_ROWS = 1 << 20

#: One row per block: the item and rater indices (int32) and the normalised ratings (float64) as bytes.
_BLOCK_FIELDS = ("item", "user", "r")


@dataclass(frozen=True, slots=True)
class _Block:
    item: npt.NDArray[np.int32]
    user: npt.NDArray[np.int32]
    r: FloatArray


def _blocks(batches: Iterator[pd.DataFrame]) -> Iterator[_Block]:
    """The blocks of a partition of packed ratings (zero-copy views of the row's bytes)."""
    for batch in batches:
        for item, user, r in zip(batch["item"], batch["user"], batch["r"], strict=True):
            yield _Block(np.frombuffer(item, np.int32), np.frombuffer(user, np.int32), np.frombuffer(r, np.float64))


def _pack_job(key: str, rows: int = BLOCK_ROWS) -> Any:
    """Pack a partition's sorted ratings into blocks of about ``rows`` ratings, cut only where the
    ``key`` column (``item_idx`` or ``user_idx``) changes, so every block holds whole item (rater)
    segments, as the rating blocks of Spark MLlib's ALS. Packed once, the ratings then cross from the
    JVM to Python as a few large binary values per sweep instead of one row per rating; every segment
    is summed from the same values in the same order as before, so the numbers do not change."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        parts: list[pd.DataFrame] = []
        held = 0
        for batch in batches:
            if not len(batch):
                continue
            parts.append(batch)
            held += len(batch)
            if held < 2 * rows:
                continue
            df = pd.concat(parts, ignore_index=True)
            seg = df[key].to_numpy()
            starts = _segments(seg)
            last = starts[-1]  # the last segment may continue in the next batch: keep it
            yield from _emit(df.iloc[:last], key, rows)
            parts, held = [df.iloc[last:].reset_index(drop=True)], len(df) - int(last)
        if held:
            yield from _emit(pd.concat(parts, ignore_index=True), key, rows)
    return run


def _emit(df: pd.DataFrame, key: str, rows: int) -> Iterator[pd.DataFrame]:
    """Cut ``df`` (whole segments of ``key``) into blocks of about ``rows`` ratings at segment starts."""
    n = len(df)
    if not n:
        return
    starts = _segments(df[key].to_numpy())
    wanted = np.arange(rows, n, rows)
    cuts = np.unique(starts[np.minimum(np.searchsorted(starts, wanted), starts.size - 1)])
    bounds = [0, *(int(c) for c in cuts if c > 0), n]
    item = df["item_idx"].to_numpy(np.int32)
    user = df["user_idx"].to_numpy(np.int32)
    r = df["r"].to_numpy(np.float64)
    for a, b in pairwise(bounds):
        if b > a:
            yield pd.DataFrame({"item": [item[a:b].tobytes()], "user": [user[a:b].tobytes()],
                                "r": [r[a:b].tobytes()]})


# ------------------------------------------------------------------------------------ partition jobs
def _segments(key: npt.NDArray[np.int32] | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Start of each run of equal keys in a sorted array."""
    return np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))


def _state_frame(acc: K.ExactSum) -> pd.DataFrame:
    return pd.DataFrame({"state": [json.dumps(acc.to_state())]})


def _sum_job(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Exact partial sum of the ratings of one partition (state as a JSON string)."""
    acc = K.ExactSum()
    for block in _blocks(batches):
        acc.merge(K.ExactSum().add(block.r))
    yield _state_frame(acc)


def _var_job(mean: float) -> Any:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        acc = K.ExactSum()
        for block in _blocks(batches):
            acc.merge(K.rating_var(block.r, mean))
        yield _state_frame(acc)
    return run


def _item_sums_job(bc: Any) -> Any:
    """Item job: per-item sums over whole item segments (``reduceat``, as :meth:`RatingLayout.item_sum`).

    With no state (``bc is None``) it returns the rating sums (the starting item means); otherwise
    the weights of step 1 and the sums of step 3.
    """
    def sums(block: _Block) -> pd.DataFrame:
        item = block.item.astype(np.int64)
        r = block.r
        starts = _segments(item)
        if bc is None:
            return pd.DataFrame({"idx": item[starts], "a": np.add.reduceat(r, starts), "b": 0.0})
        st = bc.value
        user = block.user.astype(np.int64)
        use_bias = st["c_old"] is not None
        _, s = K.expected_sq_residuals(r, st["m"][item], st["v"][item], st["c_old"][user] if use_bias else None,
                                       st["w_old"][user] if use_bias else None)
        omega = K.rating_weights(s, st["num"][user], st["rate"][user], st["b0"], cavity=st["cavity"])
        del s
        target = r - st["c_new"][user] if use_bias else r
        weight_sum = np.add.reduceat(omega, starts)
        omega *= target
        return pd.DataFrame({"idx": item[starts], "a": weight_sum, "b": np.add.reduceat(omega, starts)})

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for block in _blocks(batches):
            yield sums(block)
    return run


def _rater_sums_job(bc: Any) -> Any:
    """Rater job: per-rater sums over all of a rater's ratings in item-major order (``bincount``).

    Returns :math:`S_u` and, with the bias on (``st["step2"]``), step 2's :math:`\\sum\\omega`,
    :math:`\\sum\\omega e` computed from this block's own -- complete -- :math:`S_u`.
    """
    def sums(block: _Block) -> pd.DataFrame:
        st = bc.value
        item = block.item.astype(np.int64)
        user = block.user.astype(np.int64)
        r = block.r
        starts = _segments(user)
        local = np.cumsum(np.concatenate(([0], (user[1:] != user[:-1]).astype(np.int64))))
        k = starts.size
        use_bias = st["c"] is not None
        e, s = K.expected_sq_residuals(r, st["m"][item], st["v"][item], st["c"][user] if use_bias else None,
                                       st["w"][user] if use_bias and st["with_w"] else None)
        ssum = np.bincount(local, weights=s, minlength=k)
        out = {"idx": user[starts], "a": ssum, "b": 0.0, "c": 0.0}
        if st["step2"]:
            n_u = np.bincount(local, minlength=k).astype(np.float64)
            h = K.Hyper(0.0, 0.0, st["a0"], st["b0"], 0.0, False, False, False, False, False)
            shape, rate = K.rater_precision(h, n_u, ssum)
            num = (shape - 0.5)[local] if st["cavity"] else shape[local]
            omega = K.rating_weights(s, num, rate[local], st["b0"], cavity=st["cavity"])
            out["b"] = np.bincount(local, weights=omega, minlength=k)
            out["c"] = np.bincount(local, weights=omega * e, minlength=k)
        return pd.DataFrame(out)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for block in _blocks(batches):
            yield sums(block)
    return run


def _collect(df: Any) -> pd.DataFrame:
    return df.toPandas()


def _scatter(frame: pd.DataFrame, n: int, cols: tuple[str, ...]) -> list[FloatArray]:
    idx = frame["idx"].to_numpy(np.int64)
    out = []
    for col in cols:
        arr = np.zeros(n)
        arr[idx] = frame[col].to_numpy(np.float64)
        out.append(arr)
    return out


def _nbytes(state: dict[str, Any]) -> int:
    return int(sum(v.nbytes for v in state.values() if isinstance(v, np.ndarray)))


def _merge_states(frame: pd.DataFrame) -> K.ExactSum:
    acc = K.ExactSum()
    for state in frame["state"]:
        acc.merge(K.ExactSum.from_state(json.loads(state)))
    return acc


# ------------------------------------------------------------------------------------------- the fit
def spark_fit(spark: Any, reviews: str | Path, opts: VBOptions | None = None, *,
              checkpoint: str = "local") -> tuple[Any, SparkFitReport]:
    """Fit the VB model to the reviews Parquet at ``reviews`` on ``spark``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    reviews : path of a reviews Parquet file or folder (``truescore export reviews`` layout)
    opts : VBOptions, optional
        Default: the process settings' reliability section (as ``truescore fit``).
    checkpoint : {"local", "reliable"}
        How the two partitioned copies of the ratings are cut from their lineage: executor storage
        (``localCheckpoint``) or the session's checkpoint folder (``checkpoint``, survives executor loss).

    Returns
    -------
    result : ReliabilityResult
        As :func:`truescore.reliability.fit` returns for the store's snapshot (ids in first-appearance
        order; ``elbo_history`` empty).
    report : SparkFitReport
    """
    from pyspark.sql.types import BinaryType, DoubleType, LongType, StringType, StructField, StructType

    from truescore.spark.session import partitions

    if opts is None:
        from truescore.config import get_settings

        opts = VBOptions.from_settings(get_settings().reliability)
    if opts.weighting not in ("cavity", "meanfield"):
        raise ValueError(f"weighting must be 'cavity' or 'meanfield', not {opts.weighting!r}")
    started = time.perf_counter()
    sc = spark.sparkContext
    n_parts = partitions(spark)

    def cut(frame: Any) -> Any:
        return frame.checkpoint() if checkpoint == "reliable" else frame.localCheckpoint()

    live = cut(live_reviews(spark, reviews).select(*REVIEW_COLUMNS))
    ratings, items, users = _indexed(spark, live)
    if users["bad"].fillna(0).any():
        _name_bad_row(live, reviews)
    n_items, n_users = len(items), len(users)
    _log.info("indexed %d items, %d raters at %.1f s", n_items, n_users, time.perf_counter() - started)
    # item segments in (created_at, id) order, as the store's snapshot; one rating per (rater, item)
    blocks = StructType([StructField(name, BinaryType()) for name in _BLOCK_FIELDS])
    by_item = cut(ratings.repartition(n_parts, "item_idx").sortWithinPartitions("item_idx", "created_at", "id")
                  .select("item_idx", "user_idx", "r").mapInPandas(_pack_job("item_idx"), blocks))
    by_user = cut(ratings.repartition(n_parts, "user_idx").sortWithinPartitions("user_idx", "item_idx")
                  .select("item_idx", "user_idx", "r").mapInPandas(_pack_job("user_idx"), blocks))
    live.unpersist()
    _log.info("ratings partitioned by item and by rater at %.1f s", time.perf_counter() - started)
    n_ratings = int(items["n"].sum())
    n_i = np.zeros(n_items)
    n_i[items["item_idx"].to_numpy()] = items["n"].to_numpy(np.float64)
    n_u = np.zeros(n_users)
    n_u[users["user_idx"].to_numpy()] = users["n"].to_numpy(np.float64)

    state_schema = StructType([StructField("state", StringType())])
    sums3 = StructType([StructField("idx", LongType()), StructField("a", DoubleType()), StructField("b", DoubleType())])
    sums4 = StructType([*sums3.fields, StructField("c", DoubleType())])

    # ---- hyperparameters from the exact mean (and variance) of all ratings
    mean_acc = _merge_states(_collect(by_item.mapInPandas(_sum_job, state_schema)))
    mean_rating = mean_acc.value() / n_ratings if n_ratings else 0.5
    var_rating = 0.25
    if n_ratings > 1 and (opts.tau0 is None or opts.a0 is None or opts.b0 is None):
        var_job = by_item.mapInPandas(_var_job(mean_rating), state_schema)
        var_rating = _merge_states(_collect(var_job)).value() / n_ratings
    h = K.initial_hyper(opts, n_ratings, mean_rating, var_rating)
    use_bias, cavity = opts.use_bias, opts.weighting == "cavity"

    # ---- initial state: item means (item job without state), zero biases
    prior_alpha = h.a0 / h.b0
    (sums,) = _scatter(_collect(by_item.mapInPandas(_item_sums_job(None), sums3)), n_items, ("a",))
    m = np.where(n_i > 0, sums / np.maximum(n_i, 1.0), h.mu0)
    v = 1.0 / (h.tau0 + n_i * prior_alpha)
    c = np.zeros(n_users)
    w = np.full(n_users, 1.0 / h.tau_b) if use_bias else np.zeros(n_users)
    shape = h.a0 + 0.5 * n_u
    rate = np.full(n_users, h.b0)
    weight_sum = np.zeros(n_items)
    rated_u, rated_i = n_u > 0, n_i > 0
    deltas: list[float] = []
    converged = n_ratings == 0
    bytes_per_sweep = 0
    it = 0
    for it in range(opts.max_iter if n_ratings else 0):
        # rater job: S_u (and step 2's sums) from the broadcast item posteriors
        ubc = sc.broadcast({"m": m, "v": v, "c": c if use_bias else None, "w": w, "with_w": use_bias,
                            "step2": use_bias, "a0": h.a0, "b0": h.b0, "cavity": cavity})
        fr = _collect(by_user.mapInPandas(_rater_sums_job(ubc), sums4))
        ubc.unpersist()
        s_sum, om_sum, ome_sum = _scatter(fr, n_users, ("a", "b", "c"))
        shape, rate = K.rater_precision(h, n_u, s_sum)                        # step 1
        c_new, w_new = K.rater_bias(h.tau_b, om_sum, ome_sum) if use_bias else (c, w)   # step 2
        num = (shape - 0.5) if cavity else shape
        ibc = sc.broadcast({"m": m, "v": v, "c_old": c if use_bias else None, "w_old": w, "c_new": c_new,
                            "num": num, "rate": rate, "b0": h.b0, "cavity": cavity})
        fr = _collect(by_item.mapInPandas(_item_sums_job(ibc), sums3))
        ibc.unpersist()
        bytes_per_sweep = _nbytes(ubc.value) + _nbytes(ibc.value)
        weight_sum, target_sum = _scatter(fr, n_items, ("a", "b"))
        c, w = c_new, w_new
        m_new, v = K.item_posterior(h, weight_sum, target_sum)                  # step 3
        if use_bias:
            K.bias_shift(h, m_new, c, rated_i, rated_u)
        delta = K.max_abs_change(m_new, m)
        m = m_new
        K.empirical_bayes(h, m, v, c, w, shape, rate)                           # step 4
        deltas.append(delta)
        _log.info("sweep %d: max change %.3g at %.1f s", it + 1, delta, time.perf_counter() - started)
        if delta < opts.tol:
            converged = True
            break
    n_iter = it + 1 if n_ratings else 0
    # final rater posteriors consistent with the final item posteriors (as _refresh_raters)
    if n_ratings:
        fbc = sc.broadcast({"m": m, "v": v, "c": c if use_bias else None, "w": w, "with_w": False, "step2": False,
                            "a0": h.a0, "b0": h.b0, "cavity": cavity})
        (ss,) = _scatter(_collect(by_user.mapInPandas(_rater_sums_job(fbc), sums4)), n_users, ("a",))
        fbc.unpersist()
        if use_bias:
            ss += n_u * w
        shape, rate = K.rater_precision(h, n_u, ss)
    by_item.unpersist()
    by_user.unpersist()

    from truescore.reliability._types import Hyperparameters, ReliabilityResult
    from truescore.reliability.report import ENGINE_VERSION

    item_min, item_max = items["item_min"].to_numpy(float), items["item_max"].to_numpy(float)
    span = item_max - item_min
    sd = np.sqrt(v)
    lo, hi = gamma_interval(shape, rate, opts.credible_level)
    seconds = time.perf_counter() - started
    result = ReliabilityResult(
        backend="vb", item_ids=items["item_id"].to_numpy(object), item_mean=m, item_sd=sd,
        item_quality=item_min + m * span, item_quality_sd=sd * span,
        item_n_ratings=items["n"].to_numpy(np.int64), item_effective_weight=weight_sum,
        user_ids=users["user_id"].to_numpy(object), reliability=shape / rate, reliability_lo=lo, reliability_hi=hi,
        rater_shape=shape, rater_rate=rate, bias=c, bias_sd=np.sqrt(w if use_bias else np.zeros(n_users)),
        user_n_ratings=users["n"].to_numpy(np.int64),
        hyper=Hyperparameters(mu0=h.mu0, tau0=h.tau0, a0=h.a0, b0=h.b0, tau_b=h.tau_b),
        elbo_history=np.array([]), delta_history=np.asarray(deltas), n_iter=n_iter, converged=converged,
        fit_seconds=seconds, credible_level=opts.credible_level, item_min=item_min, item_max=item_max)
    report = SparkFitReport(
        n_items=n_items, n_users=n_users, n_ratings=n_ratings, n_iter=n_iter, converged=converged,
        seconds=seconds, partitions=n_parts, master=sc.master,
        model_version=f"vb-{ENGINE_VERSION}", broadcast_bytes_per_sweep=bytes_per_sweep,
        hyper={"mu0": h.mu0, "tau0": h.tau0, "a0": h.a0, "b0": h.b0, "tau_b": h.tau_b})
    return result, report


def fit_frames(result: Any, report: SparkFitReport, out: str | Path) -> list[Path]:
    """Write a fit as ``item_quality.parquet`` / ``user_reliability.parquet`` (+ ``fit.json``) in ``out``,
    with the store's columns (rows by :func:`truescore.reliability.derived_records`)."""
    from truescore.reliability._types import derived_records

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fitted_at = time.time()
    items, users = derived_records(result)
    paths = []
    for name, rows in (("item_quality", items), ("user_reliability", users)):
        frame = pd.DataFrame(rows).assign(model_version=report.model_version, fitted_at=fitted_at)
        path = out / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    (out / "fit.json").write_text(json.dumps(asdict(report), indent=2))
    return paths

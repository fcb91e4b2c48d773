"""The public ranking (fused score and love score of every item) from Parquet (``truescore spark rank``).

The reliability fit -- the part that grows with the ratings and needs many sweeps -- runs on Spark
(:func:`truescore.spark.fit.spark_fit`, the same kernels and numbers as one machine). The fusion and the
love score then run once over the ratings with :func:`truescore.ranking.pipeline.rank_frames`, the
function behind ``truescore rank``, on the driver: one O(ratings) numpy pass (about a second per 10 M
ratings) whose global pieces (the median rater precision, reviewer counts, the trust of the public
observer) are not yet split from the per-item work; docs/scale.md says how to move it into grouped
pandas functions.

Inputs: the reviews Parquet, and the other event tables as ``items.parquet`` (required: the topics),
``votes.parquet``, ``flags.parquet``, ``trust.parquet``, ``users.parquet`` (optional) in ``tables``
(default: the folder of the reviews file) -- what ``truescore export TABLE --out`` writes. Text scores
are read from ``scores/review_scores.parquet`` when given (``truescore spark score``'s output).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from truescore.spark.fit import live_reviews, spark_fit

__all__ = ["read_tables", "spark_rank", "trust_as_of"]


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


def spark_rank(spark: Any, reviews: str | Path, out: str | Path, *, tables: str | Path | None = None,
               scores: str | Path | None = None, at: float | None = None) -> int:
    """Rank every item of the reviews Parquet (public view); writes ``out/product_rankings.parquet``.

    Returns the number of items ranked.
    """
    from truescore.ranking.pipeline import MODEL_VERSION, rank_frames

    now = time.time() if at is None else float(at)
    folder = Path(tables) if tables is not None else Path(reviews).parent
    frames = read_tables(folder, now)
    result, _ = spark_fit(spark, reviews)
    review_frame = live_reviews(spark, reviews).drop("text", "title").toPandas()
    review_frame = review_frame.merge(frames["items"][["id", "topic"]].rename(columns={"id": "item_id"}),
                                      on="item_id", how="inner")
    frames["reviews"] = review_frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)
    score_frame = None
    if scores is not None:
        path = Path(scores) / "review_scores.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (run `truescore spark score` first)")
        score_frame = pd.read_parquet(path)
    ranking = rank_frames(frames, at=now, reliability=result, scores=score_frame)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame(ranking.records()).assign(model_version=MODEL_VERSION, fitted_at=time.time())
    rows.to_parquet(out_dir / "product_rankings.parquet", index=False)
    return len(rows)

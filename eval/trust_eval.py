"""Trust engine evaluation: held-out ratings predicted by the observer's trust-weighted rating.

Run from the repository root::

    python -m eval.trust_eval            # 5 folds on filmtrust and bitcoin-otc
    python -m eval.trust_eval --quick    # 1 fold, at most 1,500 held-out ratings per data set

Writes ``docs/results/trust_eval.md``. Data come from ``../shared/data`` (``TRUESCORE_DATA_DIR``), read
with pandas and mapped exactly as the store presets map them (:mod:`truescore.store.datasets`).

Protocol
--------
For each fold, 20 % of the ratings *given by trusted observers* (users who state trust in someone
in the training data) are held out; the engine is built from the remaining ratings (and, for
bitcoin-otc, from the trust edges those remaining ratings imply, so a held-out rating never leaks
through its own edge). For a held-out rating of item ``i`` by user ``u``:

* **trust-weighted**: ``Rater.effective_rating(i, u).rating`` with the default settings (or the depth
  stated in the variant); no prediction when none of the item's reviewers carries weight for ``u``;
* **item mean**: the plain mean of the item's training ratings (the "unweighted" view);
* **hybrid**: the trust-weighted rating where it exists, else the item mean.

Coverage is the share of held-out ratings with a prediction. MAE and RMSE are on the data set's own
scale, and the trust-weighted and item-mean errors are also given on exactly the covered subset, so
the two are compared on the same ratings.

Data-set specifics
------------------
* filmtrust: ratings 0.5..4 (step 0.5) without dates (all reviews at one instant, so R = 1); trust
  statements are binary (level 1), so T is 1 for everyone within ``max_depth_t`` hops and the weights
  differ only through A (number of films the reviewer rated) and H (no votes: neutral).
* bitcoin-otc: "src rates dst" on -10..+10; the positive training ratings are the trust edges (level
  rating / 10). R is measured from the last timestamp of the data set.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import machine_line
from truescore.config import TrustSettings
from truescore.store.datasets import data_dir
from truescore.trust import Rater

__all__ = ["Fold", "load_bitcoin_otc", "load_filmtrust", "main"]

FILM_TOPIC = "reviews.public.movies"
OTC_TOPIC = "reviews.public.bitcoin-otc"


@dataclass(frozen=True, slots=True)
class Fold:
    """Predictions of one fold: one row per held-out rating."""

    truth: np.ndarray
    trust: np.ndarray  # nan where no prediction
    item_mean: np.ndarray  # nan where the item has no training rating
    contributors: np.ndarray


def load_filmtrust(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reviews and trust edges of filmtrust as store-shaped frames (see the module docstring)."""
    df = pd.read_csv(
        root / "filmtrust" / "ratings.txt",
        sep=r"\s+",
        header=None,
        names=["user", "item", "rating"],
        dtype={"user": str, "item": str},
    )
    df = df.drop_duplicates(["user", "item"], keep="first")
    reviews = pd.DataFrame(
        {
            "id": "ft:" + df["user"] + ":" + df["item"],
            "user_id": df["user"],
            "item_id": "film" + df["item"],
            "rating": df["rating"].astype(float),
            "min_rating": 0.5,
            "max_rating": 4.0,
            "created_at": 1.3e9,
            "topic": FILM_TOPIC,
        }
    )
    tr = pd.read_csv(
        root / "filmtrust" / "trust.txt", sep=r"\s+", header=None, names=["a", "b", "level"], dtype={"a": str, "b": str}
    )
    trust = pd.DataFrame(
        {
            "truster_id": tr["a"],
            "trustee_id": tr["b"],
            "domain": FILM_TOPIC,
            "level": tr["level"].astype(float).clip(0, 1),
            "created_at": 1.3e9,
        }
    )
    return reviews.reset_index(drop=True), trust


def load_bitcoin_otc(root: Path) -> pd.DataFrame:
    """Reviews of bitcoin-otc (src rates dst); trust edges are derived per fold from the training part."""
    df = pd.read_csv(root / "bitcoin-otc" / "otc_network.csv", header=None, names=["src", "dst", "rating", "time"])
    df = df.drop_duplicates(["src", "dst"], keep="first")
    return pd.DataFrame(
        {
            "id": "otc:" + df["src"].astype(str) + ">" + df["dst"].astype(str),
            "user_id": df["src"].astype(str),
            "item_id": df["dst"].astype(str),
            "rating": df["rating"].astype(float),
            "min_rating": -10.0,
            "max_rating": 10.0,
            "created_at": df["time"].astype(float),
            "topic": OTC_TOPIC,
        }
    ).reset_index(drop=True)


def _otc_trust(reviews: pd.DataFrame) -> pd.DataFrame:
    pos = reviews[reviews["rating"] > 0]
    return pd.DataFrame(
        {
            "truster_id": pos["user_id"],
            "trustee_id": pos["item_id"],
            "domain": OTC_TOPIC,
            "level": pos["rating"] / 10.0,
            "created_at": pos["created_at"],
        }
    )


def _folds(reviews: pd.DataFrame, observers: set[str], n_folds: int, seed: int) -> list[np.ndarray]:
    eligible = np.flatnonzero(reviews["user_id"].isin(observers).to_numpy())
    rng = np.random.default_rng(seed)
    order = rng.permutation(eligible)
    return [np.sort(part) for part in np.array_split(order, 5)[:n_folds]]


def run_fold(
    reviews: pd.DataFrame,
    trust: pd.DataFrame | None,
    test_rows: np.ndarray,
    settings: TrustSettings,
    clock: float,
    limit: int | None,
    seed: int,
) -> Fold:
    """Build the engine on the training part and predict every held-out rating."""
    mask = np.zeros(len(reviews), dtype=bool)
    mask[test_rows] = True
    train, test = reviews[~mask], reviews[mask]
    if limit is not None and len(test) > limit:
        test = test.sample(n=limit, random_state=seed)
    edges = _otc_trust(train) if trust is None else trust
    rater = Rater.from_frames(edges, train, settings=settings)
    item_mean = train.groupby("item_id")["rating"].mean()
    truth, pred, means, contrib = [], [], [], []
    for item, user, rating in zip(test["item_id"], test["user_id"], test["rating"], strict=True):
        truth.append(rating)
        means.append(float(item_mean.get(item, math.nan)))
        if item not in item_mean.index:
            pred.append(math.nan)
            contrib.append(0)
            continue
        res = rater.effective_rating(item, user, at=clock, include_paths=False, with_baseline=False)
        pred.append(math.nan if res.rating is None else res.rating)
        contrib.append(res.contributing_reviews)
    return Fold(np.array(truth), np.array(pred), np.array(means), np.array(contrib))


def _mae_rmse(err: np.ndarray) -> tuple[float, float]:
    if err.size == 0:
        return math.nan, math.nan
    return float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))


def summarise(folds: list[Fold]) -> dict[str, float]:
    truth = np.concatenate([f.truth for f in folds])
    trust = np.concatenate([f.trust for f in folds])
    mean = np.concatenate([f.item_mean for f in folds])
    contrib = np.concatenate([f.contributors for f in folds])
    covered = ~np.isnan(trust)
    has_mean = ~np.isnan(mean)
    both = covered & has_mean
    hybrid = np.where(covered, trust, mean)
    out = {"n": float(truth.size), "coverage": float(covered.mean()), "mean_coverage": float(has_mean.mean())}
    out["trust_mae"], out["trust_rmse"] = _mae_rmse((trust - truth)[both])
    out["mean_mae_same"], out["mean_rmse_same"] = _mae_rmse((mean - truth)[both])
    out["mean_mae"], out["mean_rmse"] = _mae_rmse((mean - truth)[has_mean])
    out["hybrid_mae"], out["hybrid_rmse"] = _mae_rmse((hybrid - truth)[has_mean])
    out["median_contributors"] = float(np.median(contrib[covered])) if covered.any() else 0.0
    # paired comparison on the covered subset: share of ratings where trust is closer than the mean
    if both.any():
        out["trust_closer"] = float((np.abs(trust - truth) < np.abs(mean - truth))[both].mean())
        out["mean_closer"] = float((np.abs(trust - truth) > np.abs(mean - truth))[both].mean())
    else:
        out["trust_closer"] = out["mean_closer"] = math.nan
    return out


def render(rows: list[tuple[str, str, dict[str, float]]], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        "# Trust engine evaluation: held-out ratings",
        "",
        f"Machine: {machine_line()}. Run time {seconds:.0f} s.",
        "",
        f"Command: `python -m eval.trust_eval{' --quick' if args.quick else ''}` (seed {args.seed}, "
        f"{args.folds} fold(s) of 20 %{'' if args.limit is None else f', at most {args.limit} held-out per fold'}). "
        "Protocol and data mapping: the module docstring of `eval/trust_eval.py`.",
        "",
        "Held-out ratings of trusted observers (users who state trust in someone). MAE / RMSE on the data "
        'set\'s scale (filmtrust 0.5..4, bitcoin-otc -10..10). "same subset" = the held-out ratings where '
        "the trust-weighted rating exists and the item has a training mean.",
        "",
        "| data set | engine variant | held out | coverage (trust) | trust MAE | item-mean MAE, same subset | "
        "trust RMSE | item-mean RMSE, same subset | trust closer / mean closer | item mean MAE (all) | "
        "hybrid MAE (all) | median contributors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for data, variant, m in rows:
        lines.append(
            f"| {data} | {variant} | {m['n']:,.0f} | {100 * m['coverage']:.1f} % | {m['trust_mae']:.3f} | "
            f"{m['mean_mae_same']:.3f} | {m['trust_rmse']:.3f} | {m['mean_rmse_same']:.3f} | "
            f"{100 * m['trust_closer']:.0f} % / {100 * m['mean_closer']:.0f} % | {m['mean_mae']:.3f} | "
            f"{m['hybrid_mae']:.3f} | {m['median_contributors']:.0f} |"
        )
    lines += [
        "",
        'Reported whatever it shows. "trust closer / mean closer": share of the same-subset ratings where '
        "the trust-weighted prediction is strictly closer to the truth than the item mean, and the reverse.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Trust-weighted rating vs item mean on held-out ratings.")
    parser.add_argument("--quick", action="store_true", help="one fold, at most 1,500 held-out ratings")
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="held-out ratings per fold (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/results/trust_eval.md"))
    args = parser.parse_args(argv)
    args.folds = args.folds or (1 if args.quick else 5)
    if args.quick and args.limit is None:
        args.limit = 1500
    root = data_dir(args.data_dir)
    if not (root / "filmtrust").exists() or not (root / "bitcoin-otc").exists():
        print(f"{root}: filmtrust / bitcoin-otc not found; set TRUESCORE_DATA_DIR", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        os.nice(10)
    started = time.perf_counter()
    rows: list[tuple[str, str, dict[str, float]]] = []
    variants = [
        ("depth 5 (default)", TrustSettings()),
        ("depth 2", TrustSettings(max_depth_t=2, max_depth_h=2)),
        ("depth 1 (direct trust only)", TrustSettings(max_depth_t=1, max_depth_h=1)),
    ]

    film, film_trust = load_filmtrust(root)
    observers = set(film_trust["truster_id"])
    folds = _folds(film, observers, args.folds, args.seed)
    for name, settings in variants:
        res = [run_fold(film, film_trust, f, settings, 1.3e9, args.limit, args.seed) for f in folds]
        rows.append(("filmtrust", name, summarise(res)))
        print(f"filmtrust {name}: {rows[-1][2]}", file=sys.stderr, flush=True)

    otc = load_bitcoin_otc(root)
    observers = set(otc.loc[otc["rating"] > 0, "user_id"])
    folds = _folds(otc, observers, args.folds, args.seed)
    clock = float(otc["created_at"].max())
    for name, settings in variants:
        res = [run_fold(otc, None, f, settings, clock, args.limit, args.seed) for f in folds]
        rows.append(("bitcoin-otc", name, summarise(res)))
        print(f"bitcoin-otc {name}: {rows[-1][2]}", file=sys.stderr, flush=True)

    text = render(rows, args, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Trust engine evaluation: held-out ratings predicted by the observer's trust-weighted rating and by
their personal estimate ``for_you`` (issue 13), beside the item mean, the public fused estimate and the
regularised baseline predictor.

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

* **item mean**: the plain mean of the item's training ratings (the "unweighted" view);
* **public fused**: the ranking layer's fused item quality (:func:`truescore.ranking.rank_frames` on
  the training events, the baseline observer's view: reliability fit, Student-t robust weights);
* **baseline predictor**: global mean + user offset + item offset, regularised, fitted by alternating
  least squares exactly as Surprise's ``BaselineOnly`` with its defaults (10 epochs, ``reg_i = 10``,
  ``reg_u = 15`` in rating units; Koren, TKDD 2010, eq. 2-3): the standard literature baseline;
* **seed rating**: ``Rater.effective_rating(i, u).rating`` (seed 003, default settings); no prediction
  when none of the item's reviewers carries weight for ``u``;
* **for_you**: ``effective_rating(i, u).for_you`` (:mod:`truescore.trust.personal`, default settings);
  **for_you without trust** is the same with ``PersonalSettings(use_trust=False)`` (public estimate and
  calibration only), so the table shows what the trusted reviewers add.

Every predictor is asked for every held-out rating whose item has a training rating; coverage is the
share it answers. "trust path" is the subset where the seed rating exists (some trusted reviewer
reviewed the item).

MAE and RMSE are on the data set's own scale.

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
from truescore.config import PersonalSettings, TrustSettings
from truescore.store.datasets import data_dir
from truescore.trust import Rater
from truescore.trust.personal import PersonalModel

__all__ = ["Fold", "baseline_predictor", "load_bitcoin_otc", "load_filmtrust", "main", "public_fused"]

FILM_TOPIC = "reviews.public.movies"
OTC_TOPIC = "reviews.public.bitcoin-otc"


PREDICTORS = ["item mean", "public fused", "baseline predictor", "seed rating", "for_you without trust",
              "for_you"]


@dataclass(frozen=True, slots=True)
class Fold:
    """Predictions of one fold: one row per held-out rating whose item has training ratings."""

    truth: np.ndarray
    preds: dict[str, np.ndarray]  # nan where no prediction
    held_out: int  # all held-out ratings, including those of items without training ratings
    new_truth: np.ndarray  # held-out ratings of items without training ratings ...
    new_for_you: np.ndarray  # ... and for_you there (the item known, with no review: global mean + calibration)


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


def baseline_predictor(train: pd.DataFrame, test: pd.DataFrame, epochs: int = 10, reg_i: float = 10.0,
                       reg_u: float = 15.0) -> np.ndarray:
    """Surprise ``BaselineOnly`` (ALS) with its default parameters: ``mu + b_u + b_i``."""
    u_idx, u_ids = pd.factorize(train["user_id"])
    i_idx, i_ids = pd.factorize(train["item_id"])
    r = train["rating"].to_numpy(float)
    mu = float(r.mean())
    bu, bi = np.zeros(len(u_ids)), np.zeros(len(i_ids))
    n_u = np.bincount(u_idx, minlength=len(u_ids))
    n_i = np.bincount(i_idx, minlength=len(i_ids))
    for _ in range(epochs):
        bi = np.bincount(i_idx, weights=r - mu - bu[u_idx], minlength=len(i_ids)) / (reg_i + n_i)
        bu = np.bincount(u_idx, weights=r - mu - bi[i_idx], minlength=len(u_ids)) / (reg_u + n_u)
    bu_s = pd.Series(bu, index=u_ids)
    bi_s = pd.Series(bi, index=i_ids)
    lo, hi = float(test["min_rating"].iloc[0]), float(test["max_rating"].iloc[0])
    pred = mu + test["user_id"].map(bu_s).fillna(0.0).to_numpy() + test["item_id"].map(bi_s).fillna(0.0).to_numpy()
    return np.clip(pred, lo, hi)


def public_fused(train: pd.DataFrame, trust: pd.DataFrame, clock: float) -> pd.Series:
    """The ranking layer's public fused estimate of every training item, on the item's scale."""
    from truescore.config import Settings
    from truescore.ranking import rank_frames

    cfg = Settings()
    ranked = rank_frames({"reviews": train, "trust": trust}, at=clock, settings=cfg)
    return pd.Series({p.item_id: p.fused_mean for p in ranked.products})


def run_fold(
    reviews: pd.DataFrame,
    trust: pd.DataFrame | None,
    test_rows: np.ndarray,
    settings: TrustSettings,
    clock: float,
    limit: int | None,
    seed: int,
) -> Fold:
    """Build the engines on the training part and predict every held-out rating."""
    mask = np.zeros(len(reviews), dtype=bool)
    mask[test_rows] = True
    train, test = reviews[~mask], reviews[mask]
    if limit is not None and len(test) > limit:
        test = test.sample(n=limit, random_state=seed)
    held_out = len(test)
    edges = _otc_trust(train) if trust is None else trust
    item_mean = train.groupby("item_id")["rating"].mean()
    seen = test["item_id"].isin(item_mean.index).to_numpy()
    new, test = test[~seen], test[seen]
    # every item is known (as in a store), so items without training reviews get for_you too
    items = reviews[["item_id", "topic"]].drop_duplicates("item_id").rename(columns={"item_id": "id"})
    rater = Rater.from_frames(edges, train, items=items, settings=settings, personal=PersonalSettings())
    plain = PersonalModel(rater.index, rater.graph, PersonalSettings(use_trust=False))
    fused = public_fused(train, edges, clock)
    preds: dict[str, list[float]] = {name: [] for name in PREDICTORS}
    preds["item mean"] = test["item_id"].map(item_mean).tolist()
    preds["public fused"] = test["item_id"].map(fused).tolist()
    preds["baseline predictor"] = baseline_predictor(train, test).tolist()
    nodes = rater.graph.nodes
    for item, user in zip(test["item_id"], test["user_id"], strict=True):
        res = rater.effective_rating(item, user, at=clock, include_paths=False, with_baseline=False)
        preds["seed rating"].append(math.nan if res.rating is None else res.rating)
        preds["for_you"].append(math.nan if res.for_you is None else res.for_you)
        span = res.scale_max - res.scale_min
        est = plain.estimate(
            rater.index.item_code(item), nodes.get(user), clock,
            np.array([nodes.get(c.reviewer) for c in res.contributions], dtype=np.int64),
            np.array([(c.rating - res.scale_min) / span for c in res.contributions]),
            np.array([c.weight for c in res.contributions]),
        )
        preds["for_you without trust"].append(est.for_you)
    new_for_you = []
    idx = rater.index
    for item, user, lo, hi in zip(new["item_id"], new["user_id"], new["min_rating"], new["max_rating"], strict=True):
        code = idx.item_code(item)
        res = rater.effective_rating(item, user, at=clock, include_paths=False, with_baseline=False)
        assert res.for_you is not None and res.contributing_reviews == 0
        z = (res.for_you - idx.item_min[code]) / (idx.item_max[code] - idx.item_min[code])  # no review: no scale
        new_for_you.append(lo + z * (hi - lo))
    return Fold(test["rating"].to_numpy(float), {k: np.asarray(v, dtype=float) for k, v in preds.items()}, held_out,
                new["rating"].to_numpy(float), np.asarray(new_for_you, dtype=float))


def _mae_rmse(err: np.ndarray) -> tuple[float, float]:
    if err.size == 0:
        return math.nan, math.nan
    return float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))


def summarise(folds: list[Fold]) -> dict[str, dict[str, float]]:
    """Per predictor: coverage, MAE and RMSE on all rows and on the trust-path subset."""
    truth = np.concatenate([f.truth for f in folds])
    preds = {k: np.concatenate([f.preds[k] for f in folds]) for k in PREDICTORS}
    path = ~np.isnan(preds["seed rating"])
    out: dict[str, dict[str, float]] = {}
    for name, p in preds.items():
        ok = ~np.isnan(p)
        m: dict[str, float] = {"coverage": float(ok.mean()) if ok.size else math.nan,
                               "coverage_path": float(ok[path].mean()) if path.any() else math.nan}
        m["mae"], m["rmse"] = _mae_rmse((p - truth)[ok])
        m["mae_path"], m["rmse_path"] = _mae_rmse((p - truth)[ok & path])
        out[name] = m
    out["_"] = {"n": float(truth.size), "held_out": float(sum(f.held_out for f in folds)),
                "n_path": float(path.sum())}
    every_truth = np.concatenate([truth, *[f.new_truth for f in folds]])
    every = np.concatenate([preds["for_you"], *[f.new_for_you for f in folds]])
    out["_"]["all_coverage"] = float((~np.isnan(every)).mean())
    out["_"]["all_mae"], out["_"]["all_rmse"] = _mae_rmse(every - every_truth)
    return out


def render(rows: list[tuple[str, dict[str, dict[str, float]]]], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        "# Trust engine evaluation: held-out ratings",
        "",
        f"Machine: {machine_line()}. Run time {seconds:.0f} s.",
        "",
        f"Command: `python -m eval.trust_eval{' --quick' if args.quick else ''}` (seed {args.seed}, "
        f"{args.folds} fold(s) of 20 %{'' if args.limit is None else f', at most {args.limit} held-out per fold'}). "
        "Protocol, predictors and data mapping: the module docstring of `eval/trust_eval.py`.",
        "",
        "Held-out ratings of trusted observers (users who state trust in someone), whose item has training "
        "ratings. MAE / RMSE on the data set's scale (filmtrust 0.5..4, bitcoin-otc -10..10). \"trust path\" = "
        "the held-out ratings where the seed's trust-weighted rating exists. Coverage = share of those ratings "
        "the predictor answers.",
        "",
    ]
    for data, res in rows:
        meta = res["_"]
        lines += [
            f"## {data}",
            "",
            f"{meta['held_out']:,.0f} held-out ratings, {meta['n']:,.0f} of items with training ratings; "
            f"{meta['n_path']:,.0f} with a trust path.",
            "",
            "| predictor | coverage | MAE | RMSE | MAE vs item mean | coverage (trust path) | MAE (trust path) | "
            "RMSE (trust path) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        base = res["item mean"]["mae"]
        for name in PREDICTORS:
            m = res[name]
            lines.append(
                f"| {name} | {100 * m['coverage']:.1f} % | {m['mae']:.3f} | {m['rmse']:.3f} | "
                f"{100 * (m['mae'] / base - 1):+.1f} % | {100 * m['coverage_path']:.1f} % | {m['mae_path']:.3f} | "
                f"{m['rmse_path']:.3f} |"
            )
        lines += [
            "",
            f"for_you on every held-out rating ({meta['held_out']:,.0f}, items without training ratings included: "
            "there it is the global mean plus the observer's calibration): coverage "
            f"{100 * meta['all_coverage']:.1f} %, MAE {meta['all_mae']:.3f}, RMSE {meta['all_rmse']:.3f}.",
            "",
        ]
    lines += [
        "Reported whatever it shows. The seed rating's errors are over the ratings it covers only; every other "
        "row covers all of them.",
        "",
    ]
    return "\n".join(lines)


def api_check(root: Path, n: int, seed: int, out: Path) -> str:
    """The served path end to end: ``GET /items/{id}/rating?observer=U&at=T`` on SQLite stores.

    Two stores of filmtrust: (A) the training ratings of fold 0 (and every trust edge), imported the way
    ``truescore load filmtrust`` imports (``import_frame``, every event at 1.3e9); (B) the whole data set
    loaded by ``truescore load filmtrust`` (the held-out ratings included: ``for_you`` must leave the
    observer's own rating out). ``n`` held-out ratings of fold 0 are asked with
    ``at=2011-03-13T07:06:40Z`` (and, on A, without ``at``, where the seed's rating has no weight left).
    """
    import tempfile

    from fastapi.testclient import TestClient

    from truescore.api import create_app
    from truescore.config import load_settings
    from truescore.store import Store
    from truescore.store.datasets import load_preset
    from truescore.store.ingest import import_frame

    film, film_trust = load_filmtrust(root)
    test_rows = _folds(film, set(film_trust["truster_id"]), 1, seed)[0]
    mask = np.zeros(len(film), dtype=bool)
    mask[test_rows] = True
    train, test = film[~mask], film[mask]
    test = test[test["item_id"].isin(set(train["item_id"]))].sample(n=min(n, int(mask.sum())), random_state=seed)
    item_mean = train.groupby("item_id")["rating"].mean()
    settings = load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        a = Store.open(f"sqlite:///{tmp}/train.db")
        import_frame(a, train, "reviews", source="filmtrust training fold")
        import_frame(a, film_trust, "trust", source="filmtrust trust")
        stores["A: training ratings only"] = a
        b = Store.open(f"sqlite:///{tmp}/all.db")
        load_preset(b, "filmtrust", root)
        stores["B: whole data set (truescore load filmtrust)"] = b
        for name, store in stores.items():
            with TestClient(create_app(store, settings)) as client:
                for at in ("2011-03-13T07:06:40Z", None):
                    if at is None and not name.startswith("A"):
                        continue
                    started = time.perf_counter()
                    pred, seed_r, codes = [], [], []
                    for item, user in zip(test["item_id"], test["user_id"], strict=True):
                        params = {"observer": user, "paths": "false", **({"at": at} if at else {})}
                        r = client.get(f"/items/{item}/rating", params=params)
                        codes.append(r.status_code)
                        body = r.json() if r.status_code == 200 else {}
                        pred.append(math.nan if body.get("for_you") is None else body["for_you"])
                        seed_r.append(math.nan if body.get("rating") is None else body["rating"])
                    secs = time.perf_counter() - started
                    truth = test["rating"].to_numpy(float)
                    p, q = np.asarray(pred), np.asarray(seed_r)
                    mean = test["item_id"].map(item_mean).to_numpy(float)
                    ok = ~np.isnan(p)
                    rows.append((name, at or "(none: now)", len(truth), float(ok.mean()),
                                 float(np.abs(p - truth)[ok].mean()) if ok.any() else math.nan,
                                 float(np.abs(mean - truth).mean()), float((~np.isnan(q)).mean()),
                                 float(np.abs(q - truth)[~np.isnan(q)].mean()) if (~np.isnan(q)).any() else math.nan,
                                 1e3 * secs / len(truth), sum(c != 200 for c in codes)))
                    print(rows[-1], file=sys.stderr, flush=True)
            store.close()
    lines = [
        "# Trust engine: for_you through the HTTP API (end-to-end held-out check)",
        "",
        f"Machine: {machine_line()}.",
        "",
        f"Command: `python -m eval.trust_eval --api-check {n}` (seed {seed}). Protocol: the docstring of "
        "`api_check` in `eval/trust_eval.py`. Held-out ratings of fold 0 (filmtrust, trusted observers, items "
        "with training ratings), asked through `GET /items/{id}/rating?observer=U&at=T` (FastAPI TestClient "
        "over a SQLite store); item mean from the training ratings.",
        "",
        "| store | at | asked | for_you coverage | for_you MAE | item mean MAE | seed rating coverage | "
        "seed rating MAE | ms per request | non-200 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:,} | {100 * r[3]:.1f} % | {r[4]:.3f} | {r[5]:.3f} | "
                     f"{100 * r[6]:.1f} % | {r[7]:.3f} | {r[8]:.1f} | {r[9]} |")
    lines += ["", "Without `at` the store's 2011 reviews are 15 years old: the seed's rating loses them (recency "
              "and activity window), for_you is still defined (its public estimate and calibration do not decay).", ""]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Trust-weighted rating vs item mean on held-out ratings.")
    parser.add_argument("--quick", action="store_true", help="one fold, at most 1,500 held-out ratings")
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="held-out ratings per fold (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/results/trust_eval.md"))
    parser.add_argument("--api-check", type=int, default=None, metavar="N",
                        help="instead: ask N held-out filmtrust ratings through the HTTP API (docs/results/"
                        "trust_eval_api.md)")
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
    if args.api_check is not None:
        print(api_check(root, args.api_check, args.seed, Path("docs/results/trust_eval_api.md")))
        return 0
    started = time.perf_counter()
    rows: list[tuple[str, dict[str, dict[str, float]]]] = []
    settings = TrustSettings()

    film, film_trust = load_filmtrust(root)
    observers = set(film_trust["truster_id"])
    folds = _folds(film, observers, args.folds, args.seed)
    res = [run_fold(film, film_trust, f, settings, 1.3e9, args.limit, args.seed) for f in folds]
    rows.append(("filmtrust", summarise(res)))
    print(f"filmtrust: {rows[-1][1]}", file=sys.stderr, flush=True)

    otc = load_bitcoin_otc(root)
    observers = set(otc.loc[otc["rating"] > 0, "user_id"])
    folds = _folds(otc, observers, args.folds, args.seed)
    clock = float(otc["created_at"].max())
    res = [run_fold(otc, None, f, settings, clock, args.limit, args.seed) for f in folds]
    rows.append(("bitcoin-otc", summarise(res)))
    print(f"bitcoin-otc: {rows[-1][1]}", file=sys.stderr, flush=True)

    text = render(rows, args, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

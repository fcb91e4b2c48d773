"""Integrity engine on real data, through exactly the path of an independent held-out check.

Each data set is reduced to metadata (review id, item, author, rating, scale, date: no text, no votes,
no trust), written to a CSV and run through the CLI in fresh processes, as an outside evaluator would:
``truescore import FILE --kind reviews``, ``truescore fit``, ``truescore score``,
``truescore export review_scores`` and ``truescore export user_reliability``. The exported
``suspicion`` columns are then scored against the labels, beside trivial baselines on the same data.

- **bitcoin-otc** (REV2 fraud labels, 316 users). Rater-side, as data/README.md asks (the labels leak
  through the ratings the labelled users *receive*): each labelled user that gave at least one rating is
  scored by its account ``suspicion``; per review, each rating given by a labelled user by the review's
  ``suspicion``. Baselines: number of ratings given, mean absolute deviation of its ratings from the
  rated users' mean, the reliability engine's ``reliability_lo`` and fairness (Kumar et al. 2016).
  Diagnostics: the same with the ring detector off, and without the independent-consensus test.
- **planted campaigns in amazon-musical-instruments** (a second labelled check we can run):
  :func:`plant_attacks` adds aged rings reused up and down, a single-target ring, sock puppets and
  singleton bombers / boosters to the real store; per-review and per-account AUC, overall and per
  campaign, beside the author's review count, the rating deviation and ``reliability_lo``.
- **amazon-musical-instruments** and **amazon-fashion**: no manipulation labels; clean references.
  Share of reviews and accounts flagged at the default threshold and rings found, beside the share of
  one-review accounts (what a count rule would flag).

Run ``python -m eval.integrity_eval``; writes ``docs/results/integrity_eval.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from bench.common import write_result

PY = sys.executable
DAY = 86400.0


def data_dir() -> Path:
    from truescore.config import get_settings

    return Path(get_settings().data_dir)


def _cli(*args: str, env: dict[str, str] | None = None) -> float:
    import os

    t = time.perf_counter()
    out = subprocess.run([PY, "-m", "truescore.cli", *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"truescore {' '.join(args)} failed: {out.stderr[-1500:]}")
    return time.perf_counter() - t


def run_cli(reviews: pd.DataFrame, tmp: Path, env: dict[str, str] | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """import -> fit -> score -> export through the CLI; returns (review_scores, user_reliability, seconds).
    ``env`` adds configuration variables (``TRUESCORE_INTEGRITY__...``) for a diagnostic run."""
    csv = tmp / "reviews.csv"
    reviews.to_csv(csv, index=False)
    db = f"sqlite:///{tmp / 'eval.db'}"
    sec = {"import": _cli("import", str(csv), "--kind", "reviews", "--db", db),
           "fit": _cli("fit", "--db", db, "--top", "0"),
           "score": _cli("score", "--db", db, env=env)}
    _cli("export", "review_scores", "--out", str(tmp / "rs.csv"), "--db", db)
    _cli("export", "user_reliability", "--out", str(tmp / "ur.csv"), "--db", db)
    return pd.read_csv(tmp / "rs.csv"), pd.read_csv(tmp / "ur.csv"), sec


def _metrics(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    return float(roc_auc_score(y, score)), float(average_precision_score(y, score))


def bitcoin_otc(tmp: Path) -> dict[str, object]:
    folder = data_dir() / "bitcoin-otc"
    net = pd.read_csv(folder / "otc_network.csv", header=None, names=["src", "dst", "rating", "time"])
    gt = pd.read_csv(folder / "otc_gt.csv", header=None, names=["user", "label"])
    reviews = pd.DataFrame({"id": [f"e{k}" for k in range(len(net))], "item_id": net["dst"].astype(str),
                            "user_id": net["src"].astype(str), "rating": net["rating"], "min_rating": -10,
                            "max_rating": 10,
                            "created_at": pd.to_datetime(net["time"], unit="s", utc=True).dt.strftime(
                                "%Y-%m-%dT%H:%M:%SZ")})
    rs, ur, sec = run_cli(reviews, tmp)
    label = dict(zip(gt["user"].astype(str), gt["label"], strict=True))
    ur["user_id"] = ur["user_id"].astype(str)
    acc = ur[ur["user_id"].isin(label.keys())].copy()
    y = np.array([label[u] == -1 for u in acc["user_id"]], dtype=int)
    # baselines from the same metadata
    r = net.assign(src=net["src"].astype(str), dst=net["dst"].astype(str), z=(net["rating"] + 10) / 20)
    cnt = r.groupby("dst")["z"].transform("count")
    tot = r.groupby("dst")["z"].transform("sum")
    loo = np.where(cnt > 1, (tot - r["z"]) / (cnt - 1).clip(lower=1), np.nan)
    r["dev"] = np.abs(r["z"] - loo)
    dev = r.groupby("src")["dev"].mean()
    from eval.reliability_eval import fairness_goodness

    ids, inv = np.unique(np.r_[r["src"].to_numpy(), r["dst"].to_numpy()], return_inverse=True)
    fair = fairness_goodness(inv[: len(r)], inv[len(r):], net["rating"].to_numpy(float) / 10.0, ids.size)
    fair_s = pd.Series(fair, index=ids)
    users = acc["user_id"].to_numpy()
    with tempfile.TemporaryDirectory() as t2:
        _, ur_nr, _ = run_cli(reviews, Path(t2), env={"TRUESCORE_INTEGRITY__RING_MIN_MEMBERS": "100000"})
    ur_nr["user_id"] = ur_nr["user_id"].astype(str)
    no_ring = ur_nr.set_index("user_id")["suspicion"].reindex(users).to_numpy(float)
    with tempfile.TemporaryDirectory() as t2:
        rs_nc, ur_nc, _ = run_cli(reviews, Path(t2), env={"TRUESCORE_INTEGRITY__CONSENSUS_Z": "0"})
    ur_nc["user_id"] = ur_nc["user_id"].astype(str)
    no_cons = ur_nc.set_index("user_id")["suspicion"].reindex(users).to_numpy(float)
    rows = [("suspicion (truescore score)", *_metrics(y, acc["suspicion"].to_numpy(float))),
            ("diagnostic: suspicion with the ring detector off", *_metrics(y, no_ring)),
            ("diagnostic: suspicion without the independent-consensus test (consensus_z = 0)",
             *_metrics(y, no_cons)),
            ("baseline: number of ratings given (fewer = worse)", *_metrics(y, -acc["n_ratings"].to_numpy(float))),
            ("baseline: mean rating deviation", *_metrics(y, dev.reindex(users).fillna(0).to_numpy())),
            ("reliability_lo (truescore fit; before issue 11)", *_metrics(y, -acc["reliability_lo"].to_numpy(float))),
            ("reference: fairness (Kumar et al. 2016)", *_metrics(y, -fair_s.reindex(users).to_numpy()))]
    # per review: ratings given by labelled users
    rs = rs.merge(reviews[["id", "user_id"]], left_on="review_id", right_on="id")
    lab_r = rs[rs["user_id"].isin(label.keys())]
    y_r = np.array([label[u] == -1 for u in lab_r["user_id"]], dtype=int)
    n_by_user = reviews.groupby("user_id").size()
    rev_nc = rs_nc.set_index("review_id")["suspicion"].reindex(lab_r["review_id"]).to_numpy(float)
    rev_rows = [("suspicion (truescore score)", *_metrics(y_r, lab_r["suspicion"].to_numpy(float))),
                ("diagnostic: without the independent-consensus test", *_metrics(y_r, rev_nc)),
                ("baseline: author's number of ratings",
                 *_metrics(y_r, -lab_r["user_id"].map(n_by_user).to_numpy(float))),
                ("baseline: rating deviation", *_metrics(
                    y_r, r.set_index(pd.Index([f"e{k}" for k in range(len(r))]))["dev"].reindex(
                        lab_r["review_id"]).fillna(0).to_numpy()))]
    return {"accounts": rows, "reviews": rev_rows, "n_accounts": len(acc), "n_fraud": int(y.sum()),
            "n_reviews": len(lab_r), "seconds": sec}


def _amazon_frame(name: str) -> pd.DataFrame:
    root = data_dir()
    if name == "amazon-musical-instruments":
        with gzip.open(root / name / "reviews_Musical_Instruments_5.json.gz", "rt") as fh:
            rows = [json.loads(line) for line in fh]
    else:
        with open(root / name / "AMAZON_FASHION_5.json") as fh:
            rows = [json.loads(line) for line in fh]
    df = pd.DataFrame(rows)
    df = df[df["overall"].notna()]
    df = df.drop_duplicates(["reviewerID", "asin"])
    return pd.DataFrame({"id": [f"a{k}" for k in range(len(df))], "item_id": df["asin"].astype(str),
                         "user_id": df["reviewerID"].astype(str), "rating": df["overall"].astype(float),
                         "min_rating": 1, "max_rating": 5,
                         "created_at": pd.to_datetime(df["unixReviewTime"], unit="s", utc=True).dt.strftime(
                             "%Y-%m-%dT%H:%M:%SZ")})




def plant_attacks(reviews: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, set[str]]:
    """Plant the campaigns review farms run into a real review frame (1..5 stars).

    Returns the frame with the planted reviews appended, a per-review fake label and the planted
    account ids. Campaigns (each on its own targets, all within the data's time span):

    - an aged ring of 40 accounts reused on 3 targets, up (5 stars on items whose mean is at most 4),
      each account with 8 organic-looking ratings (the item's mean rounded, +/- 1 star noise) spread over
      the year before; each target's campaign spread over 180 days, 45 days apart;
    - the same ring shape bombing (1 star) 3 well-rated items (mean >= 4.5);
    - a single-target aged ring of 30 accounts (5 organic ratings each), 5 stars over 180 days;
    - sock puppets: 10 people x 4 accounts, each account 2 organic ratings, all 5 stars on 3 items;
    - singleton bombers: 60 one-review accounts, 1 star on 3 well-rated items, within 60 days;
    - singleton boosters: 60 one-review accounts, 5 stars on 3 weak items, within 60 days.

    The organic ratings of planted accounts are labelled honest (per review) but their accounts are
    planted (per account). Targets need at least 10 real ratings.
    """
    rng = np.random.default_rng(seed)
    t = (pd.to_datetime(reviews["created_at"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    stats = reviews.assign(t=t).groupby("item_id").agg(n=("rating", "size"), m=("rating", "mean"))
    stats = stats[stats["n"] >= 10]
    weak = list(rng.permutation(stats.index[stats["m"] <= 4.0].to_numpy()))
    good = list(rng.permutation(stats.index[stats["m"] >= 4.5].to_numpy()))
    all_items = reviews["item_id"].to_numpy()
    item_mean = reviews.groupby("item_id")["rating"].mean()
    t_end = float(np.quantile(t, 0.98))
    rows: list[tuple[str, str, float, float, bool]] = []
    planted: set[str] = set()
    counter = iter(range(10**9))

    def account(prefix: str) -> str:
        name = f"planted-{prefix}-{next(counter)}"
        planted.add(name)
        return name

    def organic(user: str, n: int, before: float) -> None:
        for item in rng.choice(all_items, size=n, replace=False):
            r = float(np.clip(np.rint(item_mean[item] + rng.normal(0, 0.7)), 1, 5))
            rows.append((user, str(item), r, before - rng.random() * 365 * DAY, False))

    def ring(name: str, targets: list[str], k: int, rating: float, camo: int, spread: float = 180.0) -> None:
        users = [account(name) for _ in range(k)]
        starts = t_end - spread * DAY - (len(targets) - 1 - np.arange(len(targets))) * 45 * DAY
        for u in users:
            organic(u, camo, float(starts[0]))
        for s, target in zip(starts, targets, strict=True):
            for u in users:
                rows.append((u, target, rating, float(s + rng.random() * spread * DAY), True))

    ring("ring-up", [weak.pop() for _ in range(3)], 40, 5.0, 8)
    ring("ring-down", [good.pop() for _ in range(3)], 40, 1.0, 8)
    ring("ring-single", [weak.pop()], 30, 5.0, 5)
    puppet_targets = [weak.pop() for _ in range(3)]
    for _ in range(10):
        for _ in range(4):
            u = account("puppet")
            organic(u, 2, t_end - 90 * DAY)
            for target in puppet_targets:
                rows.append((u, target, 5.0, t_end - rng.random() * 60 * DAY, True))
    for name, targets, rating in (("bomber", [good.pop() for _ in range(3)], 1.0),
                                  ("booster", [weak.pop() for _ in range(3)], 5.0)):
        for k in range(60):
            rows.append((account(name), targets[k % 3], rating, t_end - rng.random() * 60 * DAY, True))
    add = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "t", "fake"])
    add = add.drop_duplicates(["user_id", "item_id"])
    start = len(reviews)
    extra = pd.DataFrame({"id": [f"p{start + k}" for k in range(len(add))], "item_id": add["item_id"],
                          "user_id": add["user_id"], "rating": add["rating"], "min_rating": 1, "max_rating": 5,
                          "created_at": pd.to_datetime(add["t"], unit="s", utc=True).dt.strftime(
                              "%Y-%m-%dT%H:%M:%SZ")})
    out = pd.concat([reviews, extra], ignore_index=True)
    fake = np.r_[np.zeros(len(reviews), dtype=bool), add["fake"].to_numpy(bool)]
    return out, fake, planted


def _loo_deviation(reviews: pd.DataFrame) -> np.ndarray:
    """``|r - mean of the item's other ratings|`` per review, normalised scale (0 when alone)."""
    z = (reviews["rating"] - reviews["min_rating"]) / (reviews["max_rating"] - reviews["min_rating"])
    cnt = z.groupby(reviews["item_id"]).transform("count")
    tot = z.groupby(reviews["item_id"]).transform("sum")
    loo = np.where(cnt > 1, (tot - z) / (cnt - 1).clip(lower=1), np.nan)
    return np.nan_to_num(np.abs(z.to_numpy() - loo))


def planted_check(tmp: Path, name: str = "amazon-musical-instruments", seed: int = 0) -> dict[str, object]:
    """Second labelled real-data check: campaigns planted into a real store (:func:`plant_attacks`),
    run through the CLI like the others; per-review and per-account AUC beside the trivial baselines,
    overall and per campaign (its planted reviews / accounts against every real one)."""
    reviews, fake, planted = plant_attacks(_amazon_frame(name), seed=seed)
    rs, ur, sec = run_cli(reviews, tmp)
    rs = rs.set_index("review_id").reindex(reviews["id"])
    susp_r = rs["suspicion"].to_numpy(float)
    n_by_user = reviews.groupby("user_id")["id"].transform("size").to_numpy(float)
    dev = _loo_deviation(reviews)
    ur["user_id"] = ur["user_id"].astype(str)
    ur = ur.set_index("user_id")
    users = ur.index.to_numpy()
    y_u = np.array([u in planted for u in users], dtype=int)
    dev_u = pd.Series(dev).groupby(reviews["user_id"].to_numpy()).mean().reindex(users).to_numpy()
    n_u = reviews.groupby("user_id").size().reindex(users).to_numpy(float)
    y_r = fake.astype(int)
    rows = [("per review: suspicion (truescore score)", *_metrics(y_r, susp_r)),
            ("per review: baseline author's review count (fewer = worse)", *_metrics(y_r, -n_by_user)),
            ("per review: baseline rating deviation", *_metrics(y_r, dev)),
            ("per account: suspicion (truescore score)", *_metrics(y_u, ur["suspicion"].to_numpy(float))),
            ("per account: baseline review count (fewer = worse)", *_metrics(y_u, -n_u)),
            ("per account: baseline mean rating deviation", *_metrics(y_u, dev_u)),
            ("per account: reliability_lo (truescore fit; before issue 11)",
             *_metrics(y_u, -ur["reliability_lo"].to_numpy(float)))]
    camp = []
    author = reviews["user_id"].to_numpy().astype(str)
    real_r = ~np.char.startswith(author, "planted-")
    real_u = ~np.char.startswith(users.astype(str), "planted-")
    for c in ("ring-up", "ring-down", "ring-single", "puppet", "bomber", "booster"):
        sel_r = np.char.startswith(author, f"planted-{c}-") & fake
        sel_u = np.char.startswith(users.astype(str), f"planted-{c}-")
        mr, mu = sel_r | real_r, sel_u | real_u
        camp.append((c, int(sel_u.sum()), int(sel_r.sum()), _metrics(sel_r[mr].astype(int), susp_r[mr])[0],
                     _metrics(sel_r[mr].astype(int), -n_by_user[mr])[0],
                     _metrics(sel_u[mu].astype(int), ur["suspicion"].to_numpy(float)[mu])[0],
                     _metrics(sel_u[mu].astype(int), -n_u[mu])[0]))
    from truescore.config import get_settings

    thr = get_settings().integrity.flag_threshold
    flagged = ur["suspicion"].to_numpy(float) >= thr
    return {"rows": rows, "campaigns": camp, "n_reviews": len(reviews), "n_fake": int(fake.sum()),
            "n_accounts": len(users), "n_planted": int(y_u.sum()), "honest_flagged": float(flagged[y_u == 0].mean()),
            "planted_flagged": float(flagged[y_u == 1].mean()), "seconds": sec}


def clean_reference(name: str, tmp: Path) -> dict[str, object]:
    reviews = _amazon_frame(name)
    rs, ur, sec = run_cli(reviews, tmp)
    n_u = reviews.groupby("user_id").size()
    from truescore.config import get_settings

    thr = get_settings().integrity.flag_threshold
    return {"data set": name, "reviews": len(reviews), "accounts": int(n_u.size),
            "reviews flagged": float((rs["suspicion"] >= thr).mean()),
            "accounts flagged": float((ur["suspicion"] >= thr).mean()),
            "baseline: one-review accounts": float((n_u == 1).mean()),
            "score seconds": sec["score"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as t:
        otc = bitcoin_otc(Path(t))
    lines += ["## bitcoin-otc, rater-side (metadata only, through the CLI)", "",
              f"{otc['n_accounts']} labelled users that gave ratings ({otc['n_fraud']} fraudulent).", "",
              "| per account | AUC | average precision |", "|---|---:|---:|"]
    lines += [f"| {name} | {auc:.3f} | {ap:.3f} |" for name, auc, ap in otc["accounts"]]  # type: ignore[attr-defined]
    lines += ["", f"Per review: the {otc['n_reviews']:,} ratings given by labelled users, labelled by their author.",
              "",
              "| per review | AUC | average precision |", "|---|---:|---:|"]
    lines += [f"| {name} | {auc:.3f} | {ap:.3f} |" for name, auc, ap in otc["reviews"]]  # type: ignore[attr-defined]
    lines += ["", "CLI seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in otc["seconds"].items()),  # type: ignore[attr-defined]
              ""]
    with tempfile.TemporaryDirectory() as t:
        pc = planted_check(Path(t))
    lines += ["## Planted campaigns in real data (amazon-musical-instruments; labelled check 2)", "",
              f"The real store ({pc['n_reviews'] - pc['n_fake']:,} reviews) with campaigns planted by "
              "`eval.integrity_eval.plant_attacks` (seed 0): an aged ring of 40 reused on 3 weak items (5 stars) "
              "and one bombing 3 good items (1 star), each account with 8 organic ratings; a single-target aged "
              "ring of 30; 10 people x 4 sock puppets on 3 items; 60 singleton bombers and 60 singleton boosters. "
              f"{pc['n_fake']:,} planted reviews, {pc['n_planted']} planted accounts of {pc['n_accounts']:,}; "
              "the planted accounts' organic ratings count as honest reviews. Through the CLI, metadata only.", "",
              "| | AUC | average precision |", "|---|---:|---:|"]
    lines += [f"| {name} | {auc:.3f} | {ap:.3f} |" for name, auc, ap in pc["rows"]]  # type: ignore[attr-defined]
    lines += ["", f"At the default threshold: {pc['planted_flagged']:.1%} of planted accounts flagged, "
              f"{pc['honest_flagged']:.2%} of real ones.", "",
              "| campaign | accounts | planted reviews | review AUC | baseline: author's review count | "
              "account AUC | baseline: review count |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {c} | {na} | {nr} | {a:.3f} | {b:.3f} | {au:.3f} | {bu:.3f} |"
              for c, na, nr, a, b, au, bu in pc["campaigns"]]  # type: ignore[attr-defined]
    lines += [""]
    refs = []
    for name in ("amazon-musical-instruments", "amazon-fashion"):
        with tempfile.TemporaryDirectory() as t:
            refs.append(clean_reference(name, Path(t)))
    lines += ["## Clean references (no manipulation labels)", "",
              "| data set | reviews | accounts | reviews flagged | accounts flagged | one-review accounts "
              "(what a count rule flags) | `truescore score` s |", "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['data set']} | {r['reviews']:,} | {r['accounts']:,} | {r['reviews flagged']:.2%} | "
              f"{r['accounts flagged']:.2%} | {r['baseline: one-review accounts']:.2%} | {r['score seconds']:.1f} |"
              for r in refs]
    path = write_result("integrity_eval", "Integrity engine on real data (metadata only, through the CLI)",
                        "python -m eval.integrity_eval", "\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()
